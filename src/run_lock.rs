//! `RunLock`: at most one `run` per campaign database at a time.
//!
//! Two runs of one campaign would both see the same pending contacts, so cron firing again
//! while the last batch still runs must be refused, not raced. The lock is an OS file lock
//! (`flock`) on `<database>.lock`, so the kernel releases it when its process dies, even by
//! SIGKILL: a stale lock file never blocks the next run. The file holds the holder's pid and
//! start time, for the message the second run prints.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};

/// Held for the whole run; dropping it (or the process dying) releases the lock.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    pub fn acquire(database: &Path) -> Result<RunLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let write_err = |source| Error::WriteFile {
            path: path.clone(),
            cause: source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(write_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "a process that just started".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::Locked { lock: path, holder });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::WriteFile {
                    path,
                    cause: source,
                });
            }
        }
        let holder = format!(
            "pid {}, started {}",
            std::process::id(),
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(write_err)?;
        Ok(RunLock { _file: file })
    }
}
