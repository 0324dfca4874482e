//! `RunLock`: at most one `run` per campaign database at a time, keyed by the database itself.
//!
//! Two runs of one campaign would both see the same pending contacts, and the second would
//! take the first one's calls in flight for a crash's leftovers. So the lock is an OS file lock
//! (`flock`) on the database file: it follows the file (its inode), not the name it was reached
//! by, so a symlinked `state:` or a deleted lock file cannot let a second run in, and the
//! kernel releases it when its process dies, even by SIGKILL. (SQLite locks with `fcntl`,
//! which on Linux never meets `flock`.) The lock file beside the real database,
//! `<database>.lock`, is locked too, for older builds that only knew it, and holds what a
//! second run prints (the holder's pid and start time) and the highest dial intent committed
//! so far: written after every commit (no fsync: it only has to survive the process), it is
//! how the next run notices a database rolled back behind its own commits, as a `-wal` file
//! deleted after a crash does silently.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};

/// Held for the whole run; dropping it (or the process dying) releases the lock.
pub struct RunLock {
    _database: File,
    file: File,
    path: PathBuf,
    holder: String,
    recorded: Option<i64>,
    run_id: String,
}

/// Where the highest committed intent is noted, for the next run to compare.
pub struct IntentLog {
    file: File,
    holder: String,
}

const INTENT: &str = "highest committed intent: ";

impl IntentLog {
    /// Notes `highest` as the highest intent committed. Never fails the run: a note that could
    /// not be written only weakens the next run's check.
    pub fn record(&self, highest: i64) {
        let text = contents(&self.holder, Some(highest));
        let written = self
            .file
            .write_all_at(text.as_bytes(), 0)
            .and_then(|()| self.file.set_len(text.len() as u64));
        if let Err(e) = written {
            tracing::debug!("could not note the highest intent in the lock file: {e}");
        }
    }
}

fn contents(holder: &str, intent: Option<i64>) -> String {
    match intent {
        Some(n) => format!("{holder}\n{INTENT}{n}\n"),
        None => format!("{holder}\n"),
    }
}

impl RunLock {
    /// Locks `database` (creating it, mode 0600, if it is not there yet).
    pub fn acquire(database: &Path) -> Result<RunLock> {
        let write_err = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| Error::WriteFile { path, cause }
        };
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(database)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_err(database)(e)),
        }
        let real = std::fs::canonicalize(database).map_err(write_err(database))?;
        let mut name = real.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(write_err(&path))?;
        let db = File::open(&real).map_err(write_err(&real))?;
        let locked = db.try_lock().and_then(|()| file.try_lock());
        // Read once the lock is held (or refused): a run ending meanwhile has written its last
        // note by then.
        let mut previous = String::new();
        let _ = file.read_to_string(&mut previous);
        match locked {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = previous.lines().next().unwrap_or("").trim();
                let holder = if holder.is_empty() {
                    "a process that just started".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::Locked { lock: path, holder });
            }
            Err(std::fs::TryLockError::Error(cause)) => {
                return Err(Error::WriteFile { path, cause });
            }
        }
        let recorded = previous
            .lines()
            .find_map(|l| l.strip_prefix(INTENT))
            .and_then(|n| n.trim().parse().ok());
        let started = jiff::Timestamp::now();
        let holder = format!(
            "pid {}, started {}",
            std::process::id(),
            started.strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        let text = contents(&holder, recorded);
        file.write_all_at(text.as_bytes(), 0)
            .and_then(|()| file.set_len(text.len() as u64))
            .map_err(write_err(&path))?;
        Ok(RunLock {
            _database: db,
            file,
            path,
            holder,
            recorded,
            run_id: format!("{}-{}", std::process::id(), started.as_nanosecond()),
        })
    }

    /// The highest intent an earlier run noted as committed, if any.
    pub fn recorded_intent(&self) -> Option<i64> {
        self.recorded
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This run's id, unique among the runs of one database.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// A handle that notes committed intents in the lock file.
    pub fn intent_log(&self) -> Result<IntentLog> {
        let file = self.file.try_clone().map_err(|cause| Error::WriteFile {
            path: self.path.clone(),
            cause,
        })?;
        Ok(IntentLog {
            file,
            holder: self.holder.clone(),
        })
    }
}
