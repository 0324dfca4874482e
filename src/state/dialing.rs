//! Dialing: which contacts are due, the durable intent written before a request leaves
//! (`begin_attempt`), what the provider answered (`record_dial`), and recovery of the intents a
//! killed run left behind. Every state change goes through `machine`.

use rusqlite::{OptionalExtension, params};

use crate::errors::{Error, Result};
use crate::input::plan::fnv1a;
use crate::provider::client::Answer;
use crate::state::machine::CallState;

use super::*;

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
pub(super) const DIALLABLE: &str = "c.in_list = 1 AND coalesce(c.not_before, 0) <= :now AND (c.state = 'pending' OR (
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
    pub(super) fn when_json(&self) -> String {
        serde_json::to_string(&self.when.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .expect("strings serialise")
    }
}

/// `attempts.outcome` of a try that provably never reached the provider.
pub(super) const NOT_SENT: &str = "not_sent";

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
impl Store {
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
}
