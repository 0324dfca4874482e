//! The connection: opening (mode 0600: the file holds personal data and transcripts), the
//! pragmas (WAL with `synchronous=FULL`, so a committed intent survives a power cut), group
//! commits for the writer thread, the campaign's meta and the live/simulated claim.
//!
//! The database is the only memory stepcall has. The write that matters most is
//! `begin_attempt` (in `dialing`): it commits `dialing` durably *before* the request leaves, so
//! a crash at any instant leaves either a contact never sent or a dialing one (maybe sent, so
//! `uncertain` on resume). The API key is never written here.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::errors::{Error, Result};

/// Whether a database holds real or simulated calls; the two never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Simulated,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Simulated => "simulated",
        }
    }
}

pub struct Store {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    /// Whether results are owed to a webhook (see `outbox`).
    pub(super) outbox: bool,
    /// The file found at `path` when it was opened (device, inode): every intent first checks
    /// that the database is still the file at the state path, so a database deleted or
    /// replaced mid-run stops the dialing instead of taking intents nobody will ever read.
    pub(super) identity: Option<(u64, u64)>,
    /// The run dialing through this store: its intents are marked with it (see `recover_interrupted`).
    pub(super) run: Option<Run>,
}

/// What a dialing run adds to the store: its id, and where the highest committed intent is
/// noted outside the database (`RunLock`'s file), so a database rolled back behind it (a
/// `-wal` deleted after a crash) is noticed by the next run.
pub struct Run {
    pub id: String,
    pub intents: crate::state::run_lock::IntentLog,
    /// The highest intent begun since the last commit.
    pub(super) uncommitted: Option<i64>,
}

impl Run {
    pub fn new(id: String, intents: crate::state::run_lock::IntentLog) -> Run {
        Run {
            id,
            intents,
            uncommitted: None,
        }
    }
}

pub(super) fn now() -> String {
    crate::clock::now().to_string()
}

/// The (device, inode) of the file at `path`, symlinks followed.
pub(super) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Process-wide SQLite settings, applied before SQLite starts (the first connection starts
/// it), while only one thread exists.
///
/// SQLite counts every allocation for `sqlite3_status` under a global mutex; nothing here reads
/// the counts, and the lock around each string bound to a statement was a tenth of the time of
/// importing a large list.
///
/// # Safety
///
/// No other thread may be using SQLite: `sqlite3_config` is not thread-safe. Call it first
/// thing in `main`. (Were SQLite already started, it would refuse and change nothing.)
pub unsafe fn before_any_connection() {
    // SAFETY: the caller guarantees that no other thread uses SQLite meanwhile.
    let status =
        unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0) };
    debug_assert_eq!(status, rusqlite::ffi::SQLITE_OK);
}

/// How long a reader waits for a first import that holds the write lock.
pub(super) const IMPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

pub(super) fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}
impl Store {
    /// Opens the database at `path`, creating it (mode 0600) when `create` is set.
    pub fn open(path: &Path, create: bool) -> Result<Store> {
        if !path.exists() {
            if !create {
                return Err(Error::NoState {
                    path: path.to_path_buf(),
                });
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|source| Error::WriteFile {
                    path: path.to_path_buf(),
                    cause: source,
                })?;
        }
        let conn = Connection::open(path).map_err(Error::state(path))?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            outbox: false,
            identity: file_identity(path),
            run: None,
        };
        store.configure().map_err(Error::state(path))?;
        store.migrate()?;
        Ok(store)
    }

    pub(super) fn configure(&self) -> rusqlite::Result<()> {
        self.conn.busy_timeout(std::time::Duration::from_secs(5))?;
        match self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
        {
            Ok(_) => {}
            // A first import runs with a rollback journal and holds the write lock (see
            // `import`), and SQLite refuses the switch at once rather than waiting. Under a
            // rollback journal a reader still sees the file as it was before the import, an
            // empty campaign, so this connection waits for the import to end first.
            Err(e) if is_busy(&e) => self.wait_for_writer()?,
            Err(e) => return Err(e),
        }
        // FULL: every commit is on disk before it returns, so an intent to dial survives a
        // power cut, not only a crash of this process.
        self.conn
            .execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
    }

    /// Waits until no other connection holds the write lock, for at most [`IMPORT_WAIT`]:
    /// the busy timeout bounds each try, and a first import of the largest list takes
    /// minutes at most.
    pub(super) fn wait_for_writer(&self) -> rusqlite::Result<()> {
        let deadline = std::time::Instant::now() + IMPORT_WAIT;
        loop {
            match self.conn.execute_batch("BEGIN IMMEDIATE; ROLLBACK;") {
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    // A BEGIN refused for a lock opens no transaction; should one be open,
                    // the next try must not find it.
                    if !self.conn.is_autocommit() {
                        let _ = self.conn.execute_batch("ROLLBACK");
                    }
                }
                done => return done,
            }
        }
    }

    /// Starts a transaction that the next calls share (group commit; see `Writer`). Each
    /// method keeps its own savepoint inside it.
    pub fn begin_group(&mut self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(Error::state(&self.path))
    }

    /// Whether the group's transaction is still open (SQLite ends it on some errors).
    pub fn in_group(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// The error for a group whose transaction SQLite rolled back; its intents never were.
    pub fn group_lost(&mut self) -> Error {
        if let Some(run) = &mut self.run {
            run.uncommitted = None;
        }
        Error::State {
            path: self.path.clone(),
            cause: rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
                Some("a write failed and SQLite rolled back the writes made with it".into()),
            ),
        }
    }

    /// Commits the group durably, or rolls it back and says why.
    pub fn commit_group(&mut self) -> Result<()> {
        let committed = self.conn.execute_batch("COMMIT");
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if committed.is_ok() {
            self.note_committed_intents();
        } else if let Some(run) = &mut self.run {
            run.uncommitted = None;
        }
        committed.map_err(Error::state(&self.path))
    }

    /// From now on, intents are `run`'s, and each commit notes the highest one in its log.
    pub fn start_run(&mut self, run: Run) {
        self.run = Some(run);
    }

    pub(super) fn note_committed_intents(&mut self) {
        if let Some(run) = &mut self.run
            && let Some(highest) = run.uncommitted.take()
        {
            run.intents.record(highest);
        }
    }

    /// The highest attempt id in the database (0 for none): never lower than an intent that was
    /// committed, unless commits were lost.
    pub fn highest_attempt(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT coalesce(max(id), 0) FROM attempts", [], |r| {
                r.get(0)
            })
            .map_err(self.err())
    }

    /// Fails if the file at the state path is no longer the database this store has open.
    pub(super) fn still_at_path(&self) -> Result<()> {
        let now = file_identity(&self.path);
        if self.identity.is_some() && now == self.identity {
            return Ok(());
        }
        Err(Error::StateMoved {
            path: self.path.clone(),
            found: if now.is_some() { "replaced" } else { "deleted" },
        })
    }

    pub(super) fn err(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
        Error::state(&self.path)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.err())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute("INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2", [key, value])
            .map(drop)
            .map_err(self.err())
    }

    pub fn clear_meta(&self, key: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM meta WHERE key = ?1", [key])
            .map(drop)
            .map_err(self.err())
    }

    /// Claims the database for `campaign` in `mode`, or refuses if it belongs to another
    /// campaign or holds calls of the other mode.
    pub fn claim(&self, campaign: &str, mode: Mode) -> Result<()> {
        match self.meta("campaign")? {
            Some(found) if found != campaign => {
                return Err(Error::StateOfOtherCampaign {
                    path: self.path.clone(),
                    expected: campaign.into(),
                    found,
                });
            }
            Some(_) => {}
            None => self.set_meta("campaign", campaign)?,
        }
        match self.meta("mode")?.as_deref() {
            Some(found) if found != mode.as_str() => {
                let found = if found == Mode::Simulated.as_str() {
                    Mode::Simulated
                } else {
                    Mode::Live
                };
                Err(Error::StateModeMismatch {
                    path: self.path.clone(),
                    found: found.as_str(),
                    wanted: mode.as_str(),
                })
            }
            Some(_) => Ok(()),
            None => self.set_meta("mode", mode.as_str()),
        }
    }

    pub fn mode(&self) -> Result<Option<Mode>> {
        Ok(self.meta("mode")?.map(|m| {
            if m == Mode::Simulated.as_str() {
                Mode::Simulated
            } else {
                Mode::Live
            }
        }))
    }
}
