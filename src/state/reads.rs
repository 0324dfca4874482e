//! Reads for `status`, `export` and the run summary: counts by state, what is waiting and
//! until when, and the export's rows streamed in contact order.

use serde_json::{Map, Value};

use crate::errors::{Error, Result};
use crate::state::machine::{CallState, Counts, Queue, SENT};

use super::do_not_call::NOT_LISTED;
use super::store::Store;

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
    /// When the last attempt started.
    pub last_dialed_at: Option<String>,
    pub updated_at: String,
    /// The number is on the do-not-call list (whatever the state says: an opt-out after an
    /// answered call keeps the call's state).
    pub do_not_call: bool,
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
            .prepare_cached(&format!(
                "SELECT number, started_at, outcome, call_id, status_raw, duration_seconds, cost, transcript, error
                 FROM attempts a WHERE contact_id = ?1 AND {SENT} ORDER BY id"
            ))
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
impl Store {
    /// Attempts started in `[from, to)` (Unix seconds) that may have rung someone.
    pub fn calls_started_between(&self, from: i64, to: i64) -> Result<u64> {
        self.count(
            &format!(
                "SELECT count(*) FROM attempts a WHERE {SENT} AND started_unix >= ?1 AND started_unix < ?2"
            ),
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
                &format!(
                    "SELECT count(*), min(due) FROM (
                         SELECT coalesce((SELECT max(finished_unix) FROM attempts a WHERE a.contact_id = c.id), 0) + :after AS due
                         FROM contacts c
                         WHERE c.in_list = 1 AND c.state IN (SELECT value FROM json_each(:when))
                           AND {NOT_LISTED}
                           AND (SELECT count(*) FROM attempts a WHERE a.contact_id = c.id AND {SENT}) < :max)"
                ),
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
                &format!(
                    "SELECT count(*), min(not_before) FROM contacts INDEXED BY contacts_held_back
                     WHERE not_before > ?1 AND state = {} AND in_list = 1",
                    CallState::Pending.quoted()
                ),
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
    pub(super) fn count(&self, sql: &str, params: impl rusqlite::Params) -> Result<u64> {
        self.conn
            .query_row(sql, params, |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(self.err())
    }

    /// How many contacts are in each state.
    pub fn counts(&self) -> Result<Counts> {
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM contacts GROUP BY state")
            .map_err(self.err())?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(Error::state(&self.path))?;
        let mut counts = Counts::default();
        for row in rows {
            let (state, n) = row.map_err(Error::state(&self.path))?;
            counts.add(
                CallState::parse(&state).unwrap_or(CallState::Unknown),
                n as u64,
            );
        }
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
            .prepare(&format!(
                "SELECT id, cells, state, reason, updated_at, phone, NOT ({NOT_LISTED})
                 FROM contacts c ORDER BY id"
            ))
            .map_err(db())?;
        let mut attempts = self
            .conn
            .prepare(&format!(
                "SELECT contact_id, started_at, call_id, status_raw, duration_seconds, cost,
                        transcript, error, tags
                 FROM attempts a WHERE {SENT} ORDER BY contact_id, id"
            ))
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
                last_dialed_at: None,
                updated_at: c.get(4).map_err(db())?,
                do_not_call: c.get::<_, Option<bool>>(6).map_err(db())?.unwrap_or(false),
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
                        row.first_dialed_at.clone_from(&started);
                    }
                    row.last_dialed_at = started;
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

/// One call that may have rung someone, for the report's figures by hour and by day.
#[derive(Debug, Clone)]
pub struct CallPoint {
    /// When it started (Unix seconds).
    pub started_unix: i64,
    /// The attempt's outcome: a contact state.
    pub outcome: String,
    pub duration_seconds: Option<i64>,
    pub cost: Option<f64>,
}

impl Store {
    /// Calls `each` with every call that may have rung someone, oldest first, one at a time.
    pub fn for_each_call(&self, mut each: impl FnMut(CallPoint)) -> Result<()> {
        let db = || Error::state(&self.path);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT started_unix, outcome, duration_seconds, cost FROM attempts a
                 WHERE {SENT} AND started_unix IS NOT NULL ORDER BY started_unix, id"
            ))
            .map_err(db())?;
        let mut rows = stmt.query([]).map_err(db())?;
        while let Some(r) = rows.next().map_err(db())? {
            each(CallPoint {
                started_unix: r.get(0).map_err(db())?,
                outcome: r.get(1).map_err(db())?,
                duration_seconds: r.get(2).map_err(db())?,
                cost: r.get(3).map_err(db())?,
            });
        }
        Ok(())
    }
}
