//! The state database: one SQLite file per campaign, the only memory stepcall has.
//!
//! Everything that must survive a crash is here: the contacts as imported, each contact's state,
//! every dial attempt with the request sent, the call id and every raw answer. The write that
//! matters most is `begin_attempt`: it commits `dialing` durably (WAL with `synchronous=FULL`)
//! *before* the request leaves, and only for a contact that is still due (pending, or waiting
//! for a redial whose time has come) and not on a do-not-call list, so no code path can dial a
//! contact twice by accident, and a crash at any instant leaves either a contact that was never
//! sent or a dialing one (maybe sent, so `uncertain` on resume). Schema changes are migrations
//! keyed on `PRAGMA user_version`. The file is created with mode 0600: it holds personal data and
//! transcripts. The API key is never written here.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use crate::errors::{Error, Result};
use crate::input::plan::{Judgement, Plan, fnv1a};
use crate::provider::client::Answer;
use crate::provider::wire::CallResult;
use crate::state::machine::CallState;

/// The schema version this build writes; see `migrate`.
pub const SCHEMA_VERSION: i64 = 6;

const SCHEMA_V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL UNIQUE,  -- the row's content and occurrence: known rows are skipped
    line        INTEGER NOT NULL,         -- where the row was in the contact list when imported
    cells       TEXT NOT NULL,            -- every column as imported, a JSON object
    phone       TEXT,                     -- normalised number; NULL when invalid
    requirement TEXT,                     -- the rendered user_requirement
    state       TEXT NOT NULL,
    reason      TEXT,                     -- why invalid, duplicate, uncertain or waiting
    imported_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone) WHERE state NOT IN ('invalid', 'duplicate');
CREATE INDEX contacts_by_state ON contacts(state, id);
CREATE TABLE attempts (
    id               INTEGER PRIMARY KEY,
    contact_id       INTEGER NOT NULL REFERENCES contacts(id),
    number           INTEGER NOT NULL,    -- 1 for a contact's first call; a not_sent try keeps its number
    started_at       TEXT NOT NULL,
    request          TEXT NOT NULL,       -- the JSON body sent (the key is a header, never stored)
    idempotency_key  TEXT NOT NULL,
    outcome          TEXT NOT NULL,       -- a contact state, or not_sent
    call_id          TEXT,
    status_raw       TEXT,
    duration_seconds INTEGER,
    cost             REAL,
    transcript       TEXT,
    error            TEXT,
    polls            INTEGER NOT NULL DEFAULT 0,
    updated_at       TEXT NOT NULL
);
CREATE INDEX attempts_by_contact ON attempts(contact_id);
CREATE INDEX attempts_awaiting ON attempts(outcome) WHERE outcome = 'dialed';
CREATE TABLE answers (
    id          INTEGER PRIMARY KEY,
    attempt_id  INTEGER NOT NULL REFERENCES attempts(id),
    kind        TEXT NOT NULL,            -- initiate or search
    received_at TEXT NOT NULL,
    http_status INTEGER,
    body        TEXT NOT NULL
);
CREATE INDEX answers_by_attempt ON answers(attempt_id);
";

/// Version 2: times as Unix seconds for calling-hours arithmetic (redial spacing, daily caps),
/// and the do-not-call numbers.
const SCHEMA_V2: &str = "
ALTER TABLE attempts ADD COLUMN started_unix INTEGER;   -- when the intent was committed
ALTER TABLE attempts ADD COLUMN finished_unix INTEGER;  -- when its result arrived
UPDATE attempts SET started_unix = unixepoch(started_at);
UPDATE attempts SET finished_unix = unixepoch(updated_at) WHERE status_raw IS NOT NULL;
CREATE INDEX attempts_by_start ON attempts(started_unix);
CREATE TABLE suppressed (
    phone    TEXT PRIMARY KEY,                      -- normalised, like contacts.phone
    source   TEXT NOT NULL,                         -- the list file, or `stepcall suppress`
    added_at TEXT NOT NULL
) WITHOUT ROWID;
-- Whether the contact's row is still in the list: a row deleted (or corrected) in the CSV is
-- never dialled again, and a contact not dialled yet becomes `removed`.
ALTER TABLE contacts ADD COLUMN in_list INTEGER NOT NULL DEFAULT 1;
DROP INDEX contacts_by_phone;
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone) WHERE state NOT IN ('invalid', 'duplicate', 'removed');
";

/// Version 3: outcome tags of each call (comma-separated).
const SCHEMA_V3: &str = "ALTER TABLE attempts ADD COLUMN tags TEXT;";

/// Version 4: the outbox of results owed to the CRM webhook, written in the same transaction
/// as the result, so a result is never recorded without its delivery being owed.
const SCHEMA_V4: &str = "
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    event        TEXT NOT NULL,             -- the JSON body to POST
    created_at   TEXT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    next_unix    INTEGER NOT NULL DEFAULT 0, -- not before this time (backoff)
    delivered_at TEXT,
    last_error   TEXT
);
CREATE INDEX outbox_owed ON outbox(next_unix) WHERE delivered_at IS NULL;
";

/// Version 5: `contacts.fingerprint` loses its UNIQUE index. Fingerprints are hashes, so every
/// insert into that index landed on a random page: most of the time of importing a large list.
/// An import now reads the known fingerprints into memory once instead. (SQLite cannot drop a
/// column constraint, so the table is rebuilt, with foreign keys off around it.) The phone
/// index's condition is spelled with `!=`: SQLite evaluated `NOT IN (...)` through a temporary
/// table on every insert. Queries that use the index repeat the condition exactly, as SQLite
/// requires.
const SCHEMA_V5: &str = "
CREATE TABLE contacts_v5 (
    id          INTEGER PRIMARY KEY,
    fingerprint INTEGER NOT NULL,         -- the row's content and occurrence: known rows are skipped
    line        INTEGER NOT NULL,         -- where the row was in the contact list when imported
    cells       TEXT NOT NULL,            -- every column as imported, a JSON object
    phone       TEXT,                     -- normalised number; NULL when invalid
    requirement TEXT,                     -- the rendered user_requirement
    state       TEXT NOT NULL,
    reason      TEXT,                     -- why invalid, duplicate, uncertain or waiting
    imported_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    in_list     INTEGER NOT NULL DEFAULT 1 -- 0: the row left the contact list
);
INSERT INTO contacts_v5 (id, fingerprint, line, cells, phone, requirement, state, reason, imported_at, updated_at, in_list)
    SELECT id, fingerprint, line, cells, phone, requirement, state, reason, imported_at, updated_at, in_list FROM contacts;
DROP TABLE contacts;
ALTER TABLE contacts_v5 RENAME TO contacts;
CREATE UNIQUE INDEX contacts_by_phone ON contacts(phone)
    WHERE state != 'invalid' AND state != 'duplicate' AND state != 'removed';
CREATE INDEX contacts_by_state ON contacts(state, id);
";

/// Version 6: what real providers and machines do that our own simulator did not.
/// - `attempts.placed_with`: the provider placed several calls for one request (`call_ids` with
///   more than one id); every call after the first is an attempt of its own, pointing at the
///   first, so each is polled and kept.
/// - `attempts.run_id`: the run that committed a `dialing` intent, so recovery only touches
///   the intents of runs that are gone.
/// - `contacts.not_before`: the provider asked to call this number less often; it waits until
///   then (Unix seconds).
/// - `contacts.template_invalid`: the row is invalid only because of the template, so it is
///   judged again when the template changes.
/// - `meta.database_id`: a random identity, for webhook ids unique across databases.
///
/// Partial indexes keep the new lookups off full scans: the calls placed with another, the
/// contacts held back, and the intents still `dialing` (what recovery reads).
const SCHEMA_V6: &str = "
ALTER TABLE attempts ADD COLUMN placed_with INTEGER REFERENCES attempts(id);
CREATE INDEX attempts_placed_with ON attempts(placed_with) WHERE placed_with IS NOT NULL;
ALTER TABLE attempts ADD COLUMN run_id TEXT;
ALTER TABLE contacts ADD COLUMN not_before INTEGER;
CREATE INDEX contacts_held_back ON contacts(not_before) WHERE not_before IS NOT NULL;
CREATE INDEX attempts_dialing ON attempts(contact_id) WHERE outcome = 'dialing';
ALTER TABLE contacts ADD COLUMN template_invalid INTEGER NOT NULL DEFAULT 0;
INSERT OR IGNORE INTO meta (key, value) VALUES ('database_id', lower(hex(randomblob(16))));
";

/// The page cache during an import (negative: KiB), and after it (SQLite's default).
const IMPORT_CACHE_KIB: i64 = -32768;
const DEFAULT_CACHE_KIB: i64 = -2000;

/// Which lookups an import needs: of contacts already imported, of do-not-call numbers.
struct Lookups {
    had_contacts: bool,
    has_suppressed: bool,
}

/// New contacts are inserted this many to a statement: at one row each, SQLite's work per
/// statement (opening and closing cursors on the table and both indexes) was a tenth of a
/// large import.
const ROWS_PER_INSERT: usize = 64;

/// A contact the import adds, borrowing from the judged row.
struct NewContact<'a> {
    fingerprint: i64,
    line: i64,
    cells: &'a str,
    phone: Option<&'a str>,
    requirement: Option<&'a str>,
    state: &'static str,
    reason: Option<Cow<'a, str>>,
    template_invalid: bool,
}

fn insert_contacts_sql(rows: usize) -> String {
    let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows].join(", ");
    format!(
        "INSERT INTO contacts (fingerprint, line, cells, phone, requirement, state, reason, template_invalid, imported_at, updated_at)
         VALUES {values}"
    )
}

impl NewContact<'_> {
    fn values<'s>(&'s self, stamp: &'s &'s str) -> [&'s dyn rusqlite::ToSql; 10] {
        [
            &self.fingerprint,
            &self.line,
            &self.cells,
            &self.phone,
            &self.requirement,
            &self.state,
            &self.reason,
            &self.template_invalid,
            stamp,
            stamp,
        ]
    }
}

/// Inserts `rows` in order, `ROWS_PER_INSERT` at a time through `many`, the rest through `one`.
fn insert_contacts(
    one: &mut rusqlite::Statement,
    many: &mut rusqlite::Statement,
    rows: &[NewContact],
    stamp: &str,
) -> rusqlite::Result<()> {
    let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
    for chunk in &mut chunks {
        let params: Vec<&dyn rusqlite::ToSql> =
            chunk.iter().flat_map(|c| c.values(&stamp)).collect();
        many.execute(params.as_slice())?;
    }
    for row in chunks.remainder() {
        one.execute(row.values(&stamp).as_slice())?;
    }
    Ok(())
}

/// Which contacts may be dialled now, besides the pending ones: those whose last outcome is
/// in `when`, with fewer than `max_attempts` attempts, whose last result is `after_secs` old.
#[derive(Debug, Clone)]
pub struct Queue {
    pub when: Vec<CallState>,
    pub max_attempts: u32,
    pub after_secs: i64,
}

/// The SQL condition for "may be dialled now" over `contacts c`, with the `Queue` and the
/// current Unix time bound as :when (a JSON array), :max, :after and :now. A contact held back
/// by the provider waits for its `not_before`; one with a call still awaiting its result (the
/// provider placed several calls for one request) is not redialled.
const DIALLABLE: &str = "c.in_list = 1 AND coalesce(c.not_before, 0) <= :now AND (c.state = 'pending' OR (
    c.state IN (SELECT value FROM json_each(:when))
    AND (SELECT count(*) FROM attempts a WHERE a.contact_id = c.id AND a.outcome != 'not_sent') < :max
    AND coalesce((SELECT max(finished_unix) FROM attempts a WHERE a.contact_id = c.id), 0) + :after <= :now
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.contact_id = c.id AND a.outcome IN ('dialing', 'dialed'))))";

impl From<&crate::config::campaign::Redial> for Queue {
    fn from(r: &crate::config::campaign::Redial) -> Queue {
        Queue {
            when: r.when.clone(),
            max_attempts: r.max_attempts,
            after_secs: r.after.as_secs() as i64,
        }
    }
}

impl Queue {
    fn when_json(&self) -> String {
        serde_json::to_string(&self.when.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .expect("strings serialise")
    }
}

/// The SQL condition over `contacts` for a row that a changed template judges again: not
/// dialled yet, or invalid only because of the template.
const REJUDGED: &str = "(state = 'pending' OR (state = 'invalid' AND template_invalid = 1))";

/// `attempts.outcome` of a try that provably never reached the provider.
const NOT_SENT: &str = "not_sent";

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
    conn: Connection,
    path: PathBuf,
    /// Whether results are owed to a webhook (see `outbox`).
    outbox: bool,
    /// The file found at `path` when it was opened (device, inode): every intent first checks
    /// that the database is still the file at the state path, so a database deleted or
    /// replaced mid-run stops the dialing instead of taking intents nobody will ever read.
    identity: Option<(u64, u64)>,
    /// The run dialing through this store: its intents are marked with it (see `recover_interrupted`).
    run: Option<Run>,
}

/// What a dialing run adds to the store: its id, and where the highest committed intent is
/// noted outside the database (`RunLock`'s file), so a database rolled back behind it (a
/// `-wal` deleted after a crash) is noticed by the next run.
pub struct Run {
    pub id: String,
    pub intents: crate::engine::run_lock::IntentLog,
    /// The highest intent begun since the last commit.
    uncommitted: Option<i64>,
}

impl Run {
    pub fn new(id: String, intents: crate::engine::run_lock::IntentLog) -> Run {
        Run {
            id,
            intents,
            uncommitted: None,
        }
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub new_rows: u64,
    pub known_rows: u64,
    pub new_pending: u64,
    /// Contacts not dialled yet whose row left the list.
    pub removed: u64,
}

/// A contact ready to be dialled.
#[derive(Debug, Clone)]
pub struct Dialable {
    pub contact_id: i64,
    pub phone: String,
    pub requirement: String,
}

/// A committed intent to dial: the request may go out once this exists on disk.
#[derive(Debug, Clone)]
pub struct Intent {
    pub attempt_id: i64,
    pub number: i64,
    pub idempotency_key: String,
}

/// A call that has an id and no result yet.
#[derive(Debug, Clone)]
pub struct Awaiting {
    pub attempt_id: i64,
    pub call_id: String,
    /// The number it was placed to, to tell a record about another call from its own.
    pub phone: String,
}

/// How a dial attempt ended, as the database records it.
#[derive(Debug)]
pub enum DialRecord {
    /// Placed: every call id the provider gave (at least one).
    Accepted {
        call_ids: Vec<String>,
        answer: Answer,
    },
    /// Provably never reached the provider: the contact is pending again.
    NotSent {
        reason: String,
        answer: Option<Answer>,
    },
    /// Nothing placed, and this number must wait: pending again, not before `until` (Unix
    /// seconds).
    Throttled {
        reason: String,
        answer: Option<Answer>,
        until: i64,
    },
    Uncertain {
        reason: String,
        answer: Option<Answer>,
    },
    Rejected {
        reason: String,
        answer: Answer,
    },
}

/// One line of the export.
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub contact_id: i64,
    /// The normalised number (none for an invalid row).
    pub phone: Option<String>,
    /// The last call's outcome tags, comma-separated.
    pub tags: Option<String>,
    pub cells: Map<String, Value>,
    pub state: String,
    pub call_id: Option<String>,
    pub attempts: i64,
    pub status_raw: Option<String>,
    pub duration_seconds: Option<i64>,
    pub cost: Option<f64>,
    pub transcript: Option<String>,
    pub error: Option<String>,
    pub first_dialed_at: Option<String>,
    pub updated_at: String,
}

fn now() -> String {
    crate::clock::now().to_string()
}

/// The (device, inode) of the file at `path`, symlinks followed.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
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

    fn configure(&self) -> rusqlite::Result<()> {
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
    fn wait_for_writer(&self) -> rusqlite::Result<()> {
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

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let db = || Error::state(&path);
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db())?;
        if version > SCHEMA_VERSION {
            return Err(Error::StateTooNew {
                path: self.path.clone(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        for (to, sql) in [
            (1, SCHEMA_V1),
            (2, SCHEMA_V2),
            (3, SCHEMA_V3),
            (4, SCHEMA_V4),
            (5, SCHEMA_V5),
            (6, SCHEMA_V6),
        ] {
            if version >= to {
                continue;
            }
            // Rebuilding `contacts` (v5) must not trip the attempts' references to it; the
            // pragma is a no-op inside a transaction, so it is set around it.
            self.conn
                .execute_batch("PRAGMA foreign_keys = OFF")
                .map_err(db())?;
            // The write lock first, then the version again: a `status` opening the database
            // that `run` is creating must not create the tables a second time.
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(db())?;
            let now: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(db())?;
            if now < to {
                tx.execute_batch(sql).map_err(db())?;
                tx.pragma_update(None, "user_version", to).map_err(db())?;
            }
            tx.commit().map_err(db())?;
            self.conn
                .execute_batch("PRAGMA foreign_keys = ON")
                .map_err(db())?;
        }
        Ok(())
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

    fn note_committed_intents(&mut self) {
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
    fn still_at_path(&self) -> Result<()> {
        let now = file_identity(&self.path);
        if self.identity.is_some() && now == self.identity {
            return Ok(());
        }
        Err(Error::StateMoved {
            path: self.path.clone(),
            found: if now.is_some() { "replaced" } else { "deleted" },
        })
    }

    fn err(&self) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
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

    /// The column names of every import so far, in first-seen order.
    pub fn columns(&self) -> Result<Vec<String>> {
        Ok(self
            .meta("columns")?
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default())
    }

    /// Imports the rows `plan` judges, in one transaction: rows already imported (same content)
    /// are left alone, new rows are added, and a new row whose number is already a contact is a
    /// duplicate. With `refresh_pending` (the campaign's template or phone column changed and
    /// the user accepted it), contacts not dialled yet are judged again with the new settings.
    /// The rows are judged on a thread of their own while this one writes them.
    pub fn import(
        &mut self,
        plan: Plan,
        listed: &[i64],
        refresh_pending: bool,
    ) -> Result<ImportSummary> {
        let mut columns = self.columns()?;
        for h in plan.headers() {
            if !columns.contains(h) {
                columns.push(h.clone());
            }
        }
        let path = self.path.clone();
        let db = || Error::state(&path);
        // Into an empty database no row is known and no number taken, and without a
        // do-not-call list no number is listed: the lookups for those are skipped.
        let had_contacts = self.contact_count()? > 0;
        let has_suppressed: bool = self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM suppressed)", [], |r| r.get(0))
            .map_err(db())?;
        // The phone index takes numbers in list order, which is random order: with SQLite's
        // default 2 MB page cache a large import spent most of its time evicting and reading
        // back index pages. 32 MiB holds the phone index of a million contacts.
        self.conn
            .pragma_update(None, "cache_size", IMPORT_CACHE_KIB)
            .map_err(db())?;
        // A first import writes the whole table: through the WAL it would be written twice
        // (log, then checkpoint) and read back once, a fifth of the import's time. With a
        // rollback journal, pages new to the file need no journal at all, and a crash still
        // rolls back to the empty database. Meanwhile the import holds the write lock, so a
        // `status` or `export` waits for it (see `configure`). WAL comes back when the import
        // ends, committed or not.
        let journal_switched = !had_contacts && self.rollback_journal();
        let imported = self.import_rows(
            plan,
            listed,
            refresh_pending,
            Lookups {
                had_contacts,
                has_suppressed,
            },
            &columns,
        );
        if journal_switched {
            match self
                .conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))
            {
                Ok(mode) if mode.eq_ignore_ascii_case("wal") => {}
                // Still durable, only slower; the next start tries again.
                Ok(mode) => tracing::warn!("{}: the journal stayed `{mode}`", path.display()),
                Err(e) => tracing::warn!(
                    "{}: the journal stayed a rollback journal ({e})",
                    path.display()
                ),
            }
        }
        let reset = self
            .conn
            .pragma_update(None, "cache_size", DEFAULT_CACHE_KIB);
        // The import's own error, if any, is the one to report.
        let summary = imported?;
        reset.map_err(db())?;
        Ok(summary)
    }

    /// `import`'s transaction: everything it writes, or nothing.
    fn import_rows(
        &mut self,
        plan: Plan,
        listed: &[i64],
        refresh_pending: bool,
        Lookups {
            had_contacts,
            has_suppressed,
        }: Lookups,
        columns: &[String],
    ) -> Result<ImportSummary> {
        let path = self.path.clone();
        let db = || Error::state(&path);
        let mut summary = ImportSummary::default();
        let tx = self.conn.savepoint().map_err(db())?;
        // First the rows that left the list, so a corrected row is not a duplicate of its
        // old self and a deleted one is never dialled.
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS listed (fingerprint INTEGER PRIMARY KEY); DELETE FROM temp.listed;")
            .map_err(db())?;
        {
            let mut add = tx
                .prepare("INSERT OR IGNORE INTO temp.listed (fingerprint) VALUES (?1)")
                .map_err(db())?;
            for fp in listed {
                add.execute([fp]).map_err(db())?;
            }
        }
        let stamp = now();
        tx.execute(
            "UPDATE contacts SET in_list = (fingerprint IN (SELECT fingerprint FROM temp.listed))
             WHERE in_list != (fingerprint IN (SELECT fingerprint FROM temp.listed))",
            [],
        )
        .map_err(db())?;
        summary.removed = tx
            .execute(
                "UPDATE contacts SET state = 'removed', reason = 'no longer in the contact list', updated_at = ?1
                 WHERE state = 'pending' AND in_list = 0",
                [&stamp],
            )
            .map_err(db())? as u64;
        tx.execute(
            "UPDATE contacts SET state = 'pending', reason = NULL, updated_at = ?1
             WHERE state = 'removed' AND in_list = 1 AND NOT EXISTS (
                 SELECT 1 FROM contacts o WHERE o.phone = contacts.phone AND o.id != contacts.id
                     AND o.state != 'invalid' AND o.state != 'duplicate' AND o.state != 'removed')",
            [&stamp],
        )
        .map_err(db())?;
        if refresh_pending {
            // Every row not dialled yet is judged again, in list order, so which of two rows
            // with one number gets it is the plan's to say: none of them holds the number
            // meanwhile (a row invalid only by the old template may come first).
            tx.execute(
                "UPDATE contacts SET state = 'invalid', template_invalid = 1
                 WHERE state = 'pending' AND in_list = 1",
                [],
            )
            .map_err(db())?;
        }
        // Every known row by fingerprint: its id, and whether it may be judged again (pending,
        // or invalid only because of the template; read after the updates above, so a row that
        // came back to the list is judged again when it must be).
        let mut known: HashMap<i64, (i64, bool)> = HashMap::new();
        if had_contacts {
            let mut stmt = tx
                .prepare(&format!("SELECT fingerprint, id, {REJUDGED} FROM contacts"))
                .map_err(db())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
                .map_err(db())?;
            for row in rows {
                let (fingerprint, entry) = row.map_err(db())?;
                known.insert(fingerprint, entry);
            }
        }
        {
            let mut dnc = tx
                .prepare("SELECT source FROM suppressed WHERE phone = ?1")
                .map_err(db())?;
            let mut same_phone = tx
                .prepare(
                    "SELECT line FROM contacts
                     WHERE phone = ?1 AND state != 'invalid' AND state != 'duplicate' AND state != 'removed'
                       AND fingerprint != ?2",
                )
                .map_err(db())?;
            let mut insert_one = tx.prepare(&insert_contacts_sql(1)).map_err(db())?;
            let mut insert_many = tx
                .prepare(&insert_contacts_sql(ROWS_PER_INSERT))
                .map_err(db())?;
            let mut refresh = tx
                .prepare(&format!(
                    "UPDATE contacts SET phone = ?2, requirement = ?3, state = ?4, reason = ?5, template_invalid = ?7,
                         updated_at = ?6
                     WHERE id = ?1 AND {REJUDGED}"
                ))
                .map_err(db())?;
            let stamp = now();
            let rows = crate::input::plan::judge_in_background(plan);
            let mut complete = false;
            while let Some(batch) = rows.next_batch() {
                complete |= batch.last;
                let mut new_contacts = Vec::with_capacity(batch.rows.len());
                for row in &batch.rows {
                    let state_now = known.get(&row.fingerprint).copied();
                    let rejudged = state_now.is_some_and(|(_, rejudged)| rejudged);
                    if state_now.is_some() && !(refresh_pending && rejudged) {
                        summary.known_rows += 1;
                        continue;
                    }
                    let template_invalid =
                        matches!(row.verdict, Judgement::Invalid { template: true, .. });
                    let (phone, requirement, state, reason): (_, _, _, Option<Cow<str>>) =
                        match &row.verdict {
                            Judgement::Invalid { reason, .. } => (
                                None,
                                None,
                                CallState::Invalid,
                                Some(batch.text(reason).into()),
                            ),
                            Judgement::Duplicate { phone, first_line } => (
                                Some(batch.text(phone)),
                                None,
                                CallState::Duplicate,
                                Some(format!("same number as line {first_line}").into()),
                            ),
                            Judgement::Valid { phone, requirement } => {
                                let (phone, requirement) =
                                    (batch.text(phone), batch.text(requirement));
                                let earlier: Option<i64> = if had_contacts {
                                    // The rows before this one are in the table first.
                                    insert_contacts(
                                        &mut insert_one,
                                        &mut insert_many,
                                        &new_contacts,
                                        &stamp,
                                    )
                                    .map_err(db())?;
                                    new_contacts.clear();
                                    same_phone
                                        .query_row(params![phone, row.fingerprint], |r| r.get(0))
                                        .optional()
                                        .map_err(db())?
                                } else {
                                    None
                                };
                                let listed: Option<String> = if earlier.is_none() && has_suppressed
                                {
                                    dnc.query_row([phone], |r| r.get(0))
                                        .optional()
                                        .map_err(db())?
                                } else {
                                    None
                                };
                                match (earlier, listed) {
                                    (Some(line), _) => (
                                        Some(phone),
                                        None,
                                        CallState::Duplicate,
                                        Some(
                                            format!(
                                                "same number as an already imported contact (line {line})"
                                            )
                                            .into(),
                                        ),
                                    ),
                                    (None, Some(source)) => (
                                        Some(phone),
                                        Some(requirement),
                                        CallState::Suppressed,
                                        Some(format!("on the do-not-call list ({source})").into()),
                                    ),
                                    (None, None) => {
                                        (Some(phone), Some(requirement), CallState::Pending, None)
                                    }
                                }
                            }
                        };
                    if let Some((id, _)) = state_now {
                        refresh
                            .execute(params![
                                id,
                                phone,
                                requirement,
                                state.as_str(),
                                reason,
                                stamp,
                                template_invalid
                            ])
                            .map_err(db())?;
                        summary.known_rows += 1;
                        continue;
                    }
                    if state == CallState::Pending {
                        summary.new_pending += 1;
                    }
                    summary.new_rows += 1;
                    new_contacts.push(NewContact {
                        fingerprint: row.fingerprint,
                        line: row.line as i64,
                        cells: batch.text(&row.cells),
                        phone,
                        requirement,
                        state: state.as_str(),
                        reason,
                        template_invalid,
                    });
                }
                insert_contacts(&mut insert_one, &mut insert_many, &new_contacts, &stamp)
                    .map_err(db())?;
                drop(new_contacts);
                let error = {
                    let mut batch = batch;
                    let error = batch.error.take();
                    rows.done_with(batch);
                    error
                };
                if let Some(e) = error {
                    return Err(e);
                }
            }
            if !complete {
                // Nothing is committed: the savepoint rolls the partial import back.
                return Err(Error::Internal {
                    message: "the thread judging the contact list stopped before its end".into(),
                });
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('columns', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1",
            [serde_json::to_string(&columns).expect("strings serialise")],
        )
        .map_err(db())?;
        tx.commit().map_err(db())?;
        Ok(summary)
    }

    /// Switches to a rollback journal; false (still WAL) when another connection prevents it.
    fn rollback_journal(&self) -> bool {
        self.conn
            .query_row("PRAGMA journal_mode = DELETE", [], |r| {
                r.get::<_, String>(0)
            })
            .is_ok_and(|mode| mode.eq_ignore_ascii_case("delete"))
    }

    /// How many contacts the database holds, in any state.
    pub fn contact_count(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM contacts", [])
    }

    /// Compares what calls depend on (`settings`, a JSON object) with what the last run
    /// recorded: a description of each changed key, and whether anyone was dialled yet.
    pub fn settings_changes(&self, settings: &Value) -> Result<(Vec<String>, bool)> {
        let stored: Option<Value> = self
            .meta("settings")?
            .and_then(|s| serde_json::from_str(&s).ok());
        let dialled: bool = self
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM attempts WHERE outcome != 'not_sent')",
                [],
                |r| r.get(0),
            )
            .map_err(self.err())?;
        let changes = match (&stored, settings) {
            (Some(Value::Object(old)), Value::Object(new)) => new
                .iter()
                .filter(|(k, v)| old.get(*k) != Some(v))
                .map(|(k, v)| {
                    let was = old.get(k).map_or_else(|| "(not set)".to_string(), show);
                    format!("{k} was {was}, now {}", show(v))
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok((changes, dialled))
    }

    pub fn save_settings(&self, settings: &Value) -> Result<()> {
        self.set_meta("settings", &settings.to_string())
    }

    /// After a crash: every contact left `dialing` by a run that is gone may have been rung, so
    /// it becomes `uncertain`. The intents of the run using this store (see `start_run`) are
    /// left alone: that run holds the lock, so every other run is gone.
    pub fn recover_interrupted(&mut self) -> Result<u64> {
        let stamp = now();
        let reason = "stepcall stopped before the provider's answer was recorded; the call may have been placed";
        let me = self.run.as_ref().map(|r| r.id.clone());
        let path = self.path.clone();
        let db = || Error::state(&path);
        let tx = self.conn.savepoint().map_err(db())?;
        let n = tx
            .execute(
                "UPDATE contacts SET state = 'uncertain', reason = ?1, updated_at = ?2
                 WHERE state = 'dialing' AND id IN (SELECT contact_id FROM attempts
                     WHERE outcome = 'dialing' AND run_id IS NOT ?3)",
                params![reason, stamp, me],
            )
            .map_err(db())?;
        tx.execute(
            "UPDATE attempts SET outcome = 'uncertain', error = ?1, updated_at = ?2
             WHERE outcome = 'dialing' AND run_id IS NOT ?3",
            params![reason, stamp, me],
        )
        .map_err(db())?;
        // A contact `dialing` without any intent (never written by stepcall) is not dialled
        // either.
        let orphans = tx
            .execute(
                "UPDATE contacts SET state = 'uncertain', reason = ?1, updated_at = ?2
                 WHERE state = 'dialing' AND NOT EXISTS (SELECT 1 FROM attempts a
                     WHERE a.contact_id = contacts.id AND a.outcome = 'dialing')",
                params![reason, stamp],
            )
            .map_err(db())?;
        tx.commit().map_err(db())?;
        Ok((n + orphans) as u64)
    }

    /// `run --redial-uncertain`: uncertain contacts become pending again.
    pub fn requeue_uncertain(&mut self) -> Result<u64> {
        let n = self
            .conn
            .execute(
                "UPDATE contacts SET state = 'pending', reason = 'requeued by --redial-uncertain', updated_at = ?1 WHERE state = 'uncertain'",
                [now()],
            )
            .map_err(self.err())?;
        Ok(n as u64)
    }

    /// Up to `limit` contacts that may be dialled now (pending, or due for a redial) with an
    /// id above `after`, in list order.
    ///
    /// Pending contacts and redials are found apart and merged: pending ones straight from the
    /// (state, id) index, so a run resuming a list that is mostly done starts dialling at once
    /// instead of first reading every finished contact.
    pub fn dialable_after(
        &self,
        after: i64,
        limit: usize,
        queue: &Queue,
        now: i64,
    ) -> Result<Vec<Dialable>> {
        let dialable = |r: &rusqlite::Row<'_>| {
            Ok(Dialable {
                contact_id: r.get(0)?,
                phone: r.get(1)?,
                requirement: r.get(2)?,
            })
        };
        let mut found: Vec<Dialable> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT c.id, c.phone, c.requirement FROM contacts c
                     WHERE c.state = 'pending' AND c.id > ?1 AND c.in_list = 1
                       AND coalesce(c.not_before, 0) <= ?3
                     ORDER BY c.id LIMIT ?2",
                )
                .map_err(self.err())?;
            stmt.query_map(params![after, limit as i64, now], dialable)
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(Error::state(&self.path))?
        };
        if !queue.when.is_empty() && queue.max_attempts > 1 {
            let sql = format!(
                "SELECT c.id, c.phone, c.requirement FROM contacts c
                 WHERE c.state != 'pending' AND c.state IN (SELECT value FROM json_each(:when))
                   AND c.id > :after_id AND {DIALLABLE} ORDER BY c.id LIMIT :limit"
            );
            let mut stmt = self.conn.prepare_cached(&sql).map_err(self.err())?;
            let redials = stmt
                .query_map(
                    rusqlite::named_params! {
                        ":after_id": after, ":limit": limit as i64, ":when": queue.when_json(),
                        ":max": queue.max_attempts, ":after": queue.after_secs, ":now": now,
                    },
                    dialable,
                )
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(Error::state(&self.path))?;
            found.extend(redials);
            found.sort_by_key(|d| d.contact_id);
            found.truncate(limit);
        }
        Ok(found)
    }

    /// Commits the intent to dial `contact_id`, durably, if it may still be dialled and is not
    /// on a do-not-call list. `None` means it must not be dialled.
    pub fn begin_attempt(
        &mut self,
        contact_id: i64,
        campaign: &str,
        request: &str,
        queue: &Queue,
        now_unix: i64,
    ) -> Result<Option<Intent>> {
        self.still_at_path()?;
        let stamp = now();
        let path = self.path.clone();
        let db = || Error::state(&path);
        let run_id = self.run.as_ref().map(|r| r.id.clone());
        let tx = self.conn.savepoint().map_err(db())?;
        let phone: Option<String> = tx
            .query_row(
                &format!("SELECT c.phone FROM contacts c WHERE c.id = :id AND {DIALLABLE}"),
                rusqlite::named_params! {
                    ":id": contact_id, ":when": queue.when_json(), ":max": queue.max_attempts,
                    ":after": queue.after_secs, ":now": now_unix,
                },
                |r| r.get(0),
            )
            .optional()
            .map_err(db())?;
        let Some(phone) = phone else { return Ok(None) };
        let suppressed: Option<String> = tx
            .query_row(
                "SELECT source FROM suppressed WHERE phone = ?1",
                [&phone],
                |r| r.get(0),
            )
            .optional()
            .map_err(db())?;
        if let Some(source) = suppressed {
            tx.execute(
                "UPDATE contacts SET state = 'suppressed', reason = ?2, updated_at = ?3 WHERE id = ?1",
                params![contact_id, format!("on the do-not-call list ({source})"), stamp],
            )
            .map_err(db())?;
            tx.commit().map_err(db())?;
            return Ok(None);
        }
        // A redial of an uncertain attempt keeps its number, and so its idempotency key: a
        // provider that honours the key can then refuse the duplicate for us.
        let number: i64 = tx
            .query_row(
                "SELECT count(*) + 1 FROM attempts WHERE contact_id = ?1 AND outcome NOT IN (?2, 'uncertain')",
                params![contact_id, NOT_SENT],
                |r| r.get(0),
            )
            .map_err(db())?;
        let idempotency_key = format!("stepcall-{:016x}-{phone}-{number}", fnv1a(campaign.bytes()));
        tx.execute(
            "INSERT INTO attempts (contact_id, number, started_at, started_unix, request, idempotency_key, outcome, updated_at, run_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'dialing', ?3, ?7)",
            params![contact_id, number, stamp, now_unix, request, idempotency_key, run_id],
        )
        .map_err(db())?;
        let attempt_id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE contacts SET state = 'dialing', not_before = NULL, updated_at = ?2 WHERE id = ?1",
            params![contact_id, stamp],
        )
        .map_err(db())?;
        tx.commit().map_err(db())?;
        if let Some(run) = &mut self.run {
            run.uncommitted = Some(run.uncommitted.map_or(attempt_id, |n| n.max(attempt_id)));
        }
        if self.conn.is_autocommit() {
            // Not inside a group: the savepoint was the commit.
            self.note_committed_intents();
        }
        Ok(Some(Intent {
            attempt_id,
            number,
            idempotency_key,
        }))
    }

    /// Adds numbers to the do-not-call list (`source` says which list), and marks contacts not
    /// dialled yet with those numbers `suppressed`. Returns how many numbers were new.
    pub fn suppress(&mut self, phones: &[String], source: &str) -> Result<u64> {
        let stamp = now();
        let path = self.path.clone();
        let db = || Error::state(&path);
        let tx = self.conn.savepoint().map_err(db())?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare("INSERT OR IGNORE INTO suppressed (phone, source, added_at) VALUES (?1, ?2, ?3)")
                .map_err(db())?;
            for phone in phones {
                added += insert
                    .execute(params![phone, source, stamp])
                    .map_err(db())? as u64;
            }
        }
        tx.execute(
            "UPDATE contacts SET state = 'suppressed',
                 reason = 'on the do-not-call list (' || (SELECT source FROM suppressed s WHERE s.phone = contacts.phone) || ')',
                 updated_at = ?1
             WHERE state = 'pending' AND phone IN (SELECT phone FROM suppressed)",
            [&stamp],
        )
        .map_err(db())?;
        tx.commit().map_err(db())?;
        Ok(added)
    }

    /// Attempts started in `[from, to)` (Unix seconds) that may have rung someone.
    pub fn calls_started_between(&self, from: i64, to: i64) -> Result<u64> {
        self.count(
            "SELECT count(*) FROM attempts WHERE outcome != 'not_sent' AND started_unix >= ?1 AND started_unix < ?2",
            [from, to],
        )
    }

    /// Contacts waiting for a redial, and when the first of them is due (Unix seconds).
    pub fn redials_waiting(&self, queue: &Queue) -> Result<(u64, Option<i64>)> {
        if queue.when.is_empty() || queue.max_attempts <= 1 {
            return Ok((0, None));
        }
        self.conn
            .query_row(
                "SELECT count(*), min(due) FROM (
                     SELECT coalesce((SELECT max(finished_unix) FROM attempts a WHERE a.contact_id = c.id), 0) + :after AS due
                     FROM contacts c
                     WHERE c.in_list = 1 AND c.state IN (SELECT value FROM json_each(:when))
                       AND c.phone NOT IN (SELECT phone FROM suppressed)
                       AND (SELECT count(*) FROM attempts a WHERE a.contact_id = c.id AND a.outcome != 'not_sent') < :max)",
                rusqlite::named_params! { ":when": queue.when_json(), ":max": queue.max_attempts, ":after": queue.after_secs },
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(self.err())
    }

    /// Pending contacts the provider asked to call less often, and when the first may be
    /// dialled again (Unix seconds).
    pub fn held_back(&self, now_unix: i64) -> Result<(u64, Option<i64>)> {
        self.conn
            .query_row(
                "SELECT count(*), min(not_before) FROM contacts INDEXED BY contacts_held_back
                 WHERE not_before > ?1 AND state = 'pending' AND in_list = 1",
                [now_unix],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)),
            )
            .map_err(self.err())
    }

    /// Contacts for whom the provider placed several calls for one request.
    pub fn several_calls(&self) -> Result<u64> {
        self.count(
            "SELECT count(DISTINCT contact_id) FROM attempts WHERE placed_with IS NOT NULL",
            [],
        )
    }

    /// The one number a counting query gives.
    fn count(&self, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
        self.conn
            .query_row(sql, params, |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// Records how a dial attempt ended, with the raw answer, in one transaction. Returns the
    /// calls it placed, for the poller: one per call id, the first on the attempt itself and
    /// every further one (several calls for one request) as an attempt of its own.
    pub fn record_dial(&mut self, attempt_id: i64, record: &DialRecord) -> Result<Vec<Awaiting>> {
        let stamp = now();
        let several: Option<String>;
        let (outcome, contact_state, call_id, reason, answer) = match record {
            DialRecord::Accepted { call_ids, answer } => {
                several = (call_ids.len() > 1).then(|| {
                    format!(
                        "the provider placed {} calls for one request ({}): this person may have been rung {} times",
                        call_ids.len(),
                        call_ids.join(", "),
                        call_ids.len()
                    )
                });
                (
                    "dialed",
                    "dialed",
                    call_ids.first().map(String::as_str),
                    several.as_deref(),
                    Some(answer),
                )
            }
            DialRecord::NotSent { reason, answer }
            | DialRecord::Throttled { reason, answer, .. } => (
                NOT_SENT,
                "pending",
                None,
                Some(reason.as_str()),
                answer.as_ref(),
            ),
            DialRecord::Uncertain { reason, answer } => (
                "uncertain",
                "uncertain",
                None,
                Some(reason.as_str()),
                answer.as_ref(),
            ),
            DialRecord::Rejected { reason, answer } => (
                "rejected",
                "rejected",
                None,
                Some(reason.as_str()),
                Some(answer),
            ),
        };
        let not_before = match record {
            DialRecord::Throttled { until, .. } => Some(*until),
            _ => None,
        };
        if let DialRecord::Accepted { call_ids, .. } = record
            && let Err(moved) = self.still_at_path()
        {
            // Written all the same, into the file this store has open; the log is the only
            // place the user will find these ids.
            tracing::error!(
                "call {} was placed, but {moved}: it is recorded only in the file that was there",
                call_ids.join(", ")
            );
        }
        let path = self.path.clone();
        let db = || Error::state(&path);
        let tx = self.conn.savepoint().map_err(db())?;
        if let Some(answer) = answer {
            insert_answer(&tx, attempt_id, "initiate", answer, &stamp).map_err(db())?;
        }
        tx.execute(
            "UPDATE attempts SET outcome = ?2, call_id = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
            params![attempt_id, outcome, call_id, reason, stamp],
        )
        .map_err(db())?;
        tx.execute(
            "UPDATE contacts SET state = ?2, reason = ?3, not_before = ?5, updated_at = ?4
             WHERE id = (SELECT contact_id FROM attempts WHERE id = ?1)",
            params![attempt_id, contact_state, reason, stamp, not_before],
        )
        .map_err(db())?;
        let mut placed = Vec::new();
        if let DialRecord::Accepted { call_ids, .. } = record {
            let phone: String = tx
                .query_row(
                    "SELECT c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE a.id = ?1",
                    [attempt_id],
                    |r| r.get(0),
                )
                .map_err(db())?;
            for (n, call_id) in call_ids.iter().enumerate() {
                let id = if n == 0 {
                    attempt_id
                } else {
                    tx.execute(
                        "INSERT INTO attempts (contact_id, number, started_at, started_unix, request, idempotency_key,
                             outcome, call_id, error, updated_at, run_id, placed_with)
                         SELECT contact_id, number, started_at, started_unix, request, idempotency_key,
                             'dialed', ?2, ?3, ?4, run_id, id
                         FROM attempts WHERE id = ?1",
                        params![attempt_id, call_id, reason, stamp],
                    )
                    .map_err(db())?;
                    tx.last_insert_rowid()
                };
                placed.push(Awaiting {
                    attempt_id: id,
                    call_id: call_id.clone(),
                    phone: phone.clone(),
                });
            }
        }
        tx.commit().map_err(db())?;
        Ok(placed)
    }

    /// Calls that have an id and no result.
    pub fn awaiting(&self) -> Result<Vec<Awaiting>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT a.id, a.call_id, c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id
                 WHERE a.outcome = 'dialed' ORDER BY a.id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Awaiting {
                    attempt_id: r.get(0)?,
                    call_id: r.get(1)?,
                    phone: r.get(2)?,
                })
            })
            .map_err(Error::state(&self.path))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::state(&self.path))
    }

    /// Records one poll: its raw answer, and the result when there is one.
    pub fn record_poll(
        &mut self,
        attempt_id: i64,
        answer: Option<&Answer>,
        result: Option<&CallResult>,
        tags: &[String],
    ) -> Result<()> {
        let stamp = now();
        let path = self.path.clone();
        let tx = self.conn.savepoint().map_err(Error::state(&path))?;
        if let Some(answer) = answer {
            insert_answer(&tx, attempt_id, "search", answer, &stamp)
                .map_err(Error::state(&path))?;
        }
        tx.execute(
            "UPDATE attempts SET polls = polls + 1, updated_at = ?2 WHERE id = ?1",
            params![attempt_id, stamp],
        )
        .map_err(Error::state(&path))?;
        if let Some(r) = result {
            tx.execute(
                "UPDATE attempts SET outcome = ?2, status_raw = ?3, duration_seconds = ?4, cost = ?5, transcript = ?6,
                     finished_unix = ?7
                 WHERE id = ?1 AND outcome = 'dialed'",
                params![attempt_id, r.state.as_str(), r.status_raw, r.duration_seconds, r.cost, r.transcript, crate::clock::now().as_second()],
            )
            .map_err(Error::state(&path))?;
            // The contact takes its result once none of its calls awaits one: with several
            // calls for one request, the one that got furthest (an answered call is never
            // redialled because its twin went unanswered).
            let outcomes: Vec<String> = {
                // The request's first call, and the calls placed with it (two index lookups).
                let mut stmt = tx
                    .prepare_cached(
                        "SELECT outcome FROM attempts
                         WHERE id = (SELECT coalesce(placed_with, id) FROM attempts WHERE id = ?1)
                         UNION ALL
                         SELECT outcome FROM attempts
                         WHERE placed_with = (SELECT coalesce(placed_with, id) FROM attempts WHERE id = ?1)",
                    )
                    .map_err(Error::state(&path))?;
                let rows = stmt
                    .query_map([attempt_id], |r| r.get(0))
                    .map_err(Error::state(&path))?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(Error::state(&path))?
            };
            let states: Vec<CallState> = outcomes
                .iter()
                .filter_map(|o| CallState::parse(o))
                .collect();
            if !states.contains(&CallState::Dialed) {
                let state = CallState::furthest(&states).unwrap_or(r.state);
                tx.execute(
                    "UPDATE contacts SET state = ?2, updated_at = ?3,
                         reason = CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE placed_with IS NOT NULL
                             AND contact_id = contacts.id) THEN reason END
                     WHERE id = (SELECT contact_id FROM attempts WHERE id = ?1) AND state = 'dialed'",
                    params![attempt_id, state.as_str(), stamp],
                )
                .map_err(Error::state(&path))?;
            }
            set_tags(&tx, attempt_id, tags, &stamp).map_err(Error::state(&path))?;
            if self.outbox {
                owe(&tx, attempt_id, "call.result", &stamp).map_err(Error::state(&path))?;
            }
        }
        tx.commit().map_err(Error::state(&path))
    }

    /// From now on, record every result and tag change as owed to the webhook.
    pub fn enable_outbox(&mut self) {
        self.outbox = true;
    }

    /// Up to `limit` events owed to the webhook and due at `now_unix`: (id, JSON body).
    pub fn owed(&self, now_unix: i64, limit: usize) -> Result<Vec<(i64, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, event FROM outbox WHERE delivered_at IS NULL AND next_unix <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![now_unix, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::state(&self.path))
    }

    /// Records one delivery try: delivered, or failed and due again at `retry_at` (the CRM's
    /// Retry-After), else after a backoff that doubles with every try (one second up to five
    /// minutes) from `now_unix`.
    pub fn delivered(
        &mut self,
        id: i64,
        error: Option<&str>,
        now_unix: i64,
        retry_at: Option<i64>,
    ) -> Result<()> {
        match error {
            None => self.conn.execute(
                "UPDATE outbox SET tries = tries + 1, delivered_at = ?2, last_error = NULL WHERE id = ?1",
                params![id, now()],
            ),
            Some(error) => self.conn.execute(
                "UPDATE outbox SET tries = tries + 1,
                     next_unix = coalesce(?4, ?2 + min(300, 1 << min(tries, 9))), last_error = ?3
                 WHERE id = ?1",
                params![id, now_unix, error, retry_at],
            ),
        }
        .map(drop)
        .map_err(self.err())
    }

    /// How many events the webhook is still owed.
    pub fn outbox_backlog(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL", [])
    }

    /// Computes the tags of every call with a transcript again (`stepcall retag`). Returns how
    /// many calls changed tags.
    pub fn retag(&mut self, tags_of: impl Fn(&str) -> Vec<String>) -> Result<u64> {
        let stamp = now();
        let path = self.path.clone();
        let db = || Error::state(&path);
        let tx = self.conn.savepoint().map_err(db())?;
        let calls: Vec<(i64, String, Option<String>)> = {
            let mut stmt = tx
                .prepare("SELECT id, transcript, tags FROM attempts WHERE transcript IS NOT NULL ORDER BY id")
                .map_err(db())?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db())?;
            rows.collect::<rusqlite::Result<_>>().map_err(db())?
        };
        let mut changed = 0;
        for (attempt_id, transcript, old) in calls {
            let tags = tags_of(&transcript);
            set_tags(&tx, attempt_id, &tags, &stamp).map_err(db())?;
            if old.unwrap_or_default() != tags.join(",") {
                changed += 1;
                if self.outbox {
                    owe(&tx, attempt_id, "call.tags", &stamp).map_err(db())?;
                }
            }
        }
        tx.commit().map_err(db())?;
        Ok(changed)
    }

    /// How many contacts are in each state (states with none are left out).
    pub fn counts(&self) -> Result<Vec<(CallState, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM contacts GROUP BY state")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(Error::state(&self.path))?;
        let mut counts: Vec<(CallState, u64)> = Vec::new();
        for row in rows {
            let (state, n) = row.map_err(Error::state(&self.path))?;
            counts.push((
                CallState::parse(&state).unwrap_or(CallState::Unknown),
                n as u64,
            ));
        }
        counts.sort();
        Ok(counts)
    }

    /// Calls `each` with every contact, in list order, without holding them all in memory.
    ///
    /// Contacts and their attempts are read as two streams, both in contact order, and merged
    /// here: a million contacts export in one pass over each table instead of three lookups per
    /// contact.
    pub fn for_each_export_row(&self, mut each: impl FnMut(ExportRow) -> Result<()>) -> Result<()> {
        let db = || Error::state(&self.path);
        let mut contacts = self
            .conn
            .prepare("SELECT id, cells, state, reason, updated_at, phone FROM contacts ORDER BY id")
            .map_err(db())?;
        let mut attempts = self
            .conn
            .prepare(
                "SELECT contact_id, started_at, call_id, status_raw, duration_seconds, cost,
                        transcript, error, tags
                 FROM attempts WHERE outcome != 'not_sent' ORDER BY contact_id, id",
            )
            .map_err(db())?;
        let mut contacts = contacts.query([]).map_err(db())?;
        let mut attempts = attempts.query([]).map_err(db())?;
        let mut attempt = attempts.next().map_err(db())?;
        while let Some(c) = contacts.next().map_err(db())? {
            let contact_id: i64 = c.get(0).map_err(db())?;
            let cells: String = c.get(1).map_err(db())?;
            let reason: Option<String> = c.get(3).map_err(db())?;
            let mut row = ExportRow {
                contact_id,
                phone: c.get(5).map_err(db())?,
                tags: None,
                cells: match serde_json::from_str(&cells) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                },
                state: c.get(2).map_err(db())?,
                call_id: None,
                attempts: 0,
                status_raw: None,
                duration_seconds: None,
                cost: None,
                transcript: None,
                error: None,
                first_dialed_at: None,
                updated_at: c.get(4).map_err(db())?,
            };
            let mut attempt_error = None;
            // Attempts of contacts that are gone (never, but never fatal) are passed over.
            while let Some(a) = attempt {
                let of: i64 = a.get(0).map_err(db())?;
                if of > contact_id {
                    break;
                }
                if of == contact_id {
                    row.attempts += 1;
                    let started: Option<String> = a.get(1).map_err(db())?;
                    if row.first_dialed_at.is_none() || started < row.first_dialed_at {
                        row.first_dialed_at = started;
                    }
                    // The last attempt (highest id) is the one the row reports.
                    row.call_id = a.get(2).map_err(db())?;
                    row.status_raw = a.get(3).map_err(db())?;
                    row.duration_seconds = a.get(4).map_err(db())?;
                    row.cost = a.get(5).map_err(db())?;
                    row.transcript = a.get(6).map_err(db())?;
                    attempt_error = a.get(7).map_err(db())?;
                    row.tags = a.get(8).map_err(db())?;
                }
                attempt = attempts.next().map_err(db())?;
            }
            row.error = attempt_error.or(reason);
            each(row)?;
        }
        Ok(())
    }
}

/// A setting as the change message shows it: text as-is (shortened), anything else as JSON.
fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let short: String = text.chars().take(200).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("«{short}{ellipsis}»")
}

/// One dial attempt, for the JSON-lines export.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRecord {
    pub number: i64,
    pub started_at: String,
    pub outcome: String,
    pub call_id: Option<String>,
    pub status_raw: Option<String>,
    pub duration_seconds: Option<i64>,
    pub cost: Option<f64>,
    pub transcript: Option<String>,
    pub error: Option<String>,
}

impl Store {
    /// Every attempt that may have rung the contact, oldest first.
    pub fn attempts_of(&self, contact_id: i64) -> Result<Vec<AttemptRecord>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT number, started_at, outcome, call_id, status_raw, duration_seconds, cost, transcript, error
                 FROM attempts WHERE contact_id = ?1 AND outcome != 'not_sent' ORDER BY id",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map([contact_id], |r| {
                Ok(AttemptRecord {
                    number: r.get(0)?,
                    started_at: r.get(1)?,
                    outcome: r.get(2)?,
                    call_id: r.get(3)?,
                    status_raw: r.get(4)?,
                    duration_seconds: r.get(5)?,
                    cost: r.get(6)?,
                    transcript: r.get(7)?,
                    error: r.get(8)?,
                })
            })
            .map_err(Error::state(&self.path))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::state(&self.path))
    }
}

/// Stores a call's tags; an `opt_out` puts its number on the do-not-call list in the same
/// transaction, so no redial can slip in between.
fn set_tags(
    tx: &rusqlite::Connection,
    attempt_id: i64,
    tags: &[String],
    stamp: &str,
) -> rusqlite::Result<()> {
    let joined = (!tags.is_empty()).then(|| tags.join(","));
    tx.execute(
        "UPDATE attempts SET tags = ?2 WHERE id = ?1",
        params![attempt_id, joined],
    )?;
    if tags.iter().any(|t| t == crate::config::tags::OPT_OUT) {
        tx.execute(
            "INSERT OR IGNORE INTO suppressed (phone, source, added_at)
             SELECT c.phone, 'opt_out tag', ?2 FROM contacts c JOIN attempts a ON a.contact_id = c.id
             WHERE a.id = ?1 AND c.phone IS NOT NULL",
            params![attempt_id, stamp],
        )?;
    }
    Ok(())
}

/// Queues the webhook event for an attempt's result, built from what was just committed.
fn owe(
    tx: &rusqlite::Connection,
    attempt_id: i64,
    kind: &str,
    stamp: &str,
) -> rusqlite::Result<()> {
    let event: String = tx.query_row(
        "SELECT json_object(
             'event', ?2, 'at', ?3, 'campaign', (SELECT value FROM meta WHERE key = 'campaign'),
             'phone', c.phone, 'row', json(c.cells), 'call_state', c.state, 'call_id', a.call_id,
             'attempt', a.number, 'call_status_raw', a.status_raw, 'duration_seconds', a.duration_seconds,
             'cost', a.cost, 'transcript', a.transcript, 'tags', a.tags)
         FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE a.id = ?1",
        params![attempt_id, kind, stamp],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO outbox (event, created_at) VALUES (?1, ?2)",
        params![event, stamp],
    )
    .map(drop)
}

fn insert_answer(
    tx: &rusqlite::Connection,
    attempt_id: i64,
    kind: &str,
    answer: &Answer,
    stamp: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO answers (attempt_id, kind, received_at, http_status, body) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![attempt_id, kind, stamp, answer.http_status, answer.body],
    )
    .map(drop)
}

/// How long a reader waits for a first import that holds the write lock.
const IMPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recovery relabels the intents of runs that are gone, never the running one's own; and
    /// each commit notes the highest intent in the lock file, for the next run to compare.
    #[test]
    fn recovery_leaves_the_running_runs_intents_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let lock = crate::engine::run_lock::RunLock::acquire(&path).unwrap();
        let mut store = Store::open(&path, false).unwrap();
        store.start_run(Run::new("run-a".into(), lock.intent_log().unwrap()));
        store
            .conn
            .execute_batch(
                "INSERT INTO contacts (id, fingerprint, line, cells, phone, requirement, state, imported_at, updated_at)
                 VALUES (1, 1, 2, '{}', '13800138000', 'hi', 'pending', 't', 't')",
            )
            .unwrap();
        let queue = Queue {
            when: Vec::new(),
            max_attempts: 1,
            after_secs: 0,
        };
        let intent = store
            .begin_attempt(1, "c", "{}", &queue, 0)
            .unwrap()
            .unwrap();
        assert_eq!(store.recover_interrupted().unwrap(), 0);
        let noted = std::fs::read_to_string(lock.path()).unwrap();
        assert!(
            noted.contains(&format!("highest committed intent: {}", intent.attempt_id)),
            "{noted}"
        );
        drop(store);
        let mut later = Store::open(&path, false).unwrap();
        later.start_run(Run::new("run-b".into(), lock.intent_log().unwrap()));
        assert_eq!(later.recover_interrupted().unwrap(), 1);
    }

    /// A database written by a build before schema v5 (UNIQUE fingerprints, `NOT IN` phone
    /// index) keeps its contacts and attempts, and the references between them, when opened.
    #[test]
    fn a_version_4_database_is_rebuilt_without_losing_anything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            for sql in [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "INSERT INTO contacts (id, fingerprint, line, cells, phone, requirement, state, imported_at, updated_at)
                     VALUES (7, 42, 2, '{\"phone\":\"13800138000\"}', '13800138000', 'hi', 'answered', 't', 't'),
                            (8, 43, 3, '{\"phone\":\"13900139000\"}', '13900139000', 'hi', 'pending', 't', 't');
                 INSERT INTO attempts (contact_id, number, started_at, request, idempotency_key, outcome, call_id, updated_at)
                     VALUES (7, 1, 't', '{}', 'k', 'answered', 'call-7', 't');
                 PRAGMA user_version = 4;",
            )
            .unwrap();
        }
        let store = Store::open(&path, false).unwrap();
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(store.contact_count().unwrap(), 2);
        let call_id: String = store
            .conn
            .query_row(
                "SELECT a.call_id FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE c.phone = '13800138000'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(call_id, "call-7");
        let broken: Vec<String> = store
            .conn
            .prepare("PRAGMA foreign_key_check")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(broken.is_empty(), "{broken:?}");
        // The phone index still refuses a second active contact with the same number.
        let duplicate = store.conn.execute(
            "INSERT INTO contacts (fingerprint, line, cells, phone, state, imported_at, updated_at)
             VALUES (44, 4, '{}', '13900139000', 'pending', 't', 't')",
            [],
        );
        assert!(duplicate.is_err());
        let plan: String = store
            .conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT line FROM contacts
                 WHERE phone = '1' AND state != 'invalid' AND state != 'duplicate' AND state != 'removed'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("contacts_by_phone"), "{plan}");
    }
}
