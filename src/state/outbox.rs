//! The webhook outbox: an event owed for every result, written in the result's transaction,
//! and marked delivered or retried later by `output::webhook`.

use rusqlite::params;

use crate::errors::{Error, Result};

use super::store::now;
use super::store::{Mode, Store};

/// Queues the webhook event for an attempt's result, built from what was just committed.
pub(super) fn owe(
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
             'cost', a.cost, 'transcript', a.transcript, 'tags', a.tags,
             'simulated', json(CASE WHEN (SELECT value FROM meta WHERE key = 'mode') = ?4
                                   THEN 'true' ELSE 'false' END))
         FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE a.id = ?1",
        params![attempt_id, kind, stamp, Mode::Simulated.as_str()],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO outbox (event, created_at) VALUES (?1, ?2)",
        params![event, stamp],
    )
    .map(drop)
}
impl Store {
    /// From now on, record every result and tag change as owed to the webhook.
    pub fn enable_outbox(&mut self) {
        self.outbox = true;
    }

    /// Up to `limit` events owed to the webhook and due at `now_unix`: (id, tries so far, JSON
    /// body).
    pub fn owed(&self, now_unix: i64, limit: usize) -> Result<Vec<(i64, u32, String)>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, tries, event FROM outbox WHERE delivered_at IS NULL AND next_unix <= ?1 ORDER BY id LIMIT ?2",
            )
            .map_err(self.err())?;
        let rows = stmt
            .query_map(params![now_unix, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(self.err())?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(Error::state(&self.path))
    }

    /// Records one delivery try: delivered, or failed and due again at `retry_at` (Unix
    /// seconds).
    pub fn delivered(&mut self, id: i64, error: Option<&str>, retry_at: i64) -> Result<()> {
        match error {
            None => self.conn.execute(
                "UPDATE outbox SET tries = tries + 1, delivered_at = ?2, last_error = NULL WHERE id = ?1",
                params![id, now()],
            ),
            Some(error) => self.conn.execute(
                "UPDATE outbox SET tries = tries + 1,
                     next_unix = ?2, last_error = ?3
                 WHERE id = ?1",
                params![id, retry_at, error],
            ),
        }
        .map(drop)
        .map_err(self.err())
    }

    /// How many events the webhook is still owed.
    pub fn outbox_backlog(&self) -> Result<u64> {
        self.count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL", [])
    }
}
