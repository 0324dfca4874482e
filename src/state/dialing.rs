//! Dialing: which contacts are due, the durable intent written before a request leaves
//! (`begin_attempt`), what the provider answered (`record_dial`), and recovery of the intents a
//! killed run left behind. Every state change goes through `machine`.

use rusqlite::{OptionalExtension, params};

use crate::errors::{Error, Result};
use crate::fnv::fnv1a;
use crate::provider::answer::Dial;
use crate::state::machine::{CallState, DIALLABLE, Move, NOT_SENT, Queue};

use super::do_not_call;
use super::results::Awaiting;
use super::results::insert_answer;
use super::store::Store;
use super::store::now;

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
        let (to, from) = Move::Interrupt.sql("state");
        let dialing = CallState::Dialing.quoted();
        let tx = self.conn.savepoint().map_err(db())?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE contacts SET state = {to}, reason = ?1, updated_at = ?2
                     WHERE {from} AND id IN (SELECT contact_id FROM attempts
                         WHERE outcome = {dialing} AND run_id IS NOT ?3)"
                ),
                params![reason, stamp, me],
            )
            .map_err(db())?;
        // The attempt keeps the outcome its contact took.
        tx.execute(
            &format!(
                "UPDATE attempts SET outcome = {to}, error = ?1, updated_at = ?2
                 WHERE outcome = {dialing} AND run_id IS NOT ?3"
            ),
            params![reason, stamp, me],
        )
        .map_err(db())?;
        // A contact `dialing` without any intent (never written by stepcall) is not dialled
        // either.
        let orphans = tx
            .execute(
                &format!(
                    "UPDATE contacts SET state = {to}, reason = ?1, updated_at = ?2
                     WHERE {from} AND NOT EXISTS (SELECT 1 FROM attempts a
                         WHERE a.contact_id = contacts.id AND a.outcome = {dialing})"
                ),
                params![reason, stamp],
            )
            .map_err(db())?;
        tx.commit().map_err(db())?;
        Ok((n + orphans) as u64)
    }

    /// `run --redial-uncertain`: uncertain contacts become pending again.
    pub fn requeue_uncertain(&mut self) -> Result<u64> {
        let (to, from) = Move::Requeue.sql("state");
        let n = self
            .conn
            .execute(
                &format!(
                    "UPDATE contacts SET state = {to}, reason = 'requeued by --redial-uncertain', updated_at = ?1
                     WHERE {from}"
                ),
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
                .prepare_cached(&format!(
                    "SELECT c.id, c.phone, c.requirement FROM contacts c
                     WHERE c.state = {} AND c.id > ?1 AND c.in_list = 1
                       AND coalesce(c.not_before, 0) <= ?3
                     ORDER BY c.id LIMIT ?2",
                    CallState::Pending.quoted()
                ))
                .map_err(self.err())?;
            stmt.query_map(params![after, limit as i64, now], dialable)
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(Error::state(&self.path))?
        };
        if !queue.when.is_empty() && queue.max_attempts > 1 {
            let sql = format!(
                "SELECT c.id, c.phone, c.requirement FROM contacts c
                 WHERE c.state != {} AND c.state IN (SELECT value FROM json_each(:when))
                   AND c.id > :after_id AND {DIALLABLE} ORDER BY c.id LIMIT :limit",
                CallState::Pending.quoted()
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
        let suppressed = do_not_call::source_of(&tx, &phone).map_err(db())?;
        if let Some(source) = suppressed {
            let (to, from) = Move::SuppressDue.sql("state");
            tx.execute(
                &format!(
                    "UPDATE contacts SET state = {to}, reason = ?2, updated_at = ?3 WHERE id = ?1 AND {from}"
                ),
                params![contact_id, do_not_call::because(&source), stamp],
            )
            .map_err(db())?;
            tx.commit().map_err(db())?;
            return Ok(None);
        }
        // A redial of an uncertain attempt keeps its number, and so its idempotency key: a
        // provider that honours the key can then refuse the duplicate for us.
        let number: i64 = tx
            .query_row(
                "SELECT count(*) + 1 FROM attempts WHERE contact_id = ?1 AND outcome NOT IN (?2, ?3)",
                params![contact_id, NOT_SENT, CallState::Uncertain.as_str()],
                |r| r.get(0),
            )
            .map_err(db())?;
        let idempotency_key = format!("stepcall-{:016x}-{phone}-{number}", fnv1a(campaign.bytes()));
        let (to, from) = Move::Intend.sql("state");
        tx.execute(
            &format!(
                "INSERT INTO attempts (contact_id, number, started_at, started_unix, request, idempotency_key, outcome, updated_at, run_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, {to}, ?3, ?7)"
            ),
            params![contact_id, number, stamp, now_unix, request, idempotency_key, run_id],
        )
        .map_err(db())?;
        let attempt_id = tx.last_insert_rowid();
        tx.execute(
            &format!(
                "UPDATE contacts SET state = {to}, not_before = NULL, updated_at = ?2 WHERE id = ?1 AND {from}"
            ),
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
        for phone in phones {
            added += u64::from(do_not_call::add(&tx, phone, source, &stamp).map_err(db())?);
        }
        let (to, from) = Move::Suppress.sql("c.state");
        let listed: Vec<(i64, String)> = {
            let mut stmt = tx
                .prepare(&format!(
                    "SELECT c.id, s.source FROM contacts c JOIN suppressed s ON s.phone = c.phone WHERE {from}"
                ))
                .map_err(db())?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<rusqlite::Result<_>>())
                .map_err(db())?
        };
        {
            let mut mark = tx
                .prepare(&format!(
                    "UPDATE contacts SET state = {to}, reason = ?2, updated_at = ?3 WHERE id = ?1"
                ))
                .map_err(db())?;
            for (id, source) in listed {
                mark.execute(params![id, do_not_call::because(&source), stamp])
                    .map_err(db())?;
            }
        }
        tx.commit().map_err(db())?;
        Ok(added)
    }

    /// Records how a dial attempt ended, with the raw answer, in one transaction. Returns the
    /// calls it placed, for the poller: one per call id, the first on the attempt itself and
    /// every further one (several calls for one request) as an attempt of its own.
    ///
    /// The answer moves the contact (`Move::Answer`): a call id makes it `dialed`; an answer
    /// that provably placed nothing (not sent, throttled, fatal) leaves it `pending`, a
    /// throttled one not before `not_before`; the others end where their name says.
    pub fn record_dial(
        &mut self,
        attempt_id: i64,
        dial: &Dial,
        not_before: Option<i64>,
    ) -> Result<Vec<Awaiting>> {
        let stamp = now();
        let several: Option<String>;
        let fatal: String;
        let (to, call_id, reason, answer) = match dial {
            Dial::Accepted {
                call_ids, answer, ..
            } => {
                several = (call_ids.len() > 1).then(|| {
                    format!(
                        "the provider placed {} calls for one request ({}): this person may have been rung {} times",
                        call_ids.len(),
                        call_ids.join(", "),
                        call_ids.len()
                    )
                });
                (
                    CallState::Dialed,
                    call_ids.first().map(String::as_str),
                    several.as_deref(),
                    Some(answer),
                )
            }
            Dial::NotSent { reason, answer, .. } => (
                CallState::Pending,
                None,
                Some(reason.as_str()),
                answer.as_ref(),
            ),
            Dial::Throttled { reason, answer } => (
                CallState::Pending,
                None,
                Some(reason.as_str()),
                Some(answer),
            ),
            Dial::Fatal { error, answer } => {
                fatal = error.to_string();
                (
                    CallState::Pending,
                    None,
                    Some(fatal.as_str()),
                    answer.as_ref(),
                )
            }
            Dial::Uncertain { reason, answer, .. } => (
                CallState::Uncertain,
                None,
                Some(reason.as_str()),
                answer.as_ref(),
            ),
            Dial::Rejected { reason, answer } => (
                CallState::Rejected,
                None,
                Some(reason.as_str()),
                Some(answer),
            ),
        };
        let step = Move::Answer(to);
        let (to, from) = step.sql("state");
        let outcome = match step.to() {
            CallState::Pending => NOT_SENT,
            state => state.as_str(),
        };
        if let Dial::Accepted { call_ids, .. } = dial
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
            &format!(
                "UPDATE contacts SET state = {to}, reason = ?2, not_before = ?4, updated_at = ?3
                 WHERE id = (SELECT contact_id FROM attempts WHERE id = ?1) AND {from}"
            ),
            params![attempt_id, reason, stamp, not_before],
        )
        .map_err(db())?;
        let mut placed = Vec::new();
        if let Dial::Accepted { call_ids, .. } = dial {
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
                        &format!(
                            "INSERT INTO attempts (contact_id, number, started_at, started_unix, request, idempotency_key,
                                 outcome, call_id, error, updated_at, run_id, placed_with)
                             SELECT contact_id, number, started_at, started_unix, request, idempotency_key,
                                 {to}, ?2, ?3, ?4, run_id, id
                             FROM attempts WHERE id = ?1"
                        ),
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
