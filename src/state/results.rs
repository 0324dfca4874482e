//! Results: the calls awaiting one, each polled answer recorded with its tags, and the
//! opt-outs those tags put on the do-not-call list in the same transaction.

use rusqlite::{OptionalExtension, params};

use crate::errors::{Error, Result};
use crate::provider::answer::Answer;
use crate::provider::wire::CallResult;
use crate::state::machine::{CallState, Move};

use super::do_not_call;
use super::outbox::owe;
use super::store::Store;
use super::store::now;

/// A call that has an id and no result yet.
#[derive(Debug, Clone)]
pub struct Awaiting {
    pub attempt_id: i64,
    pub call_id: String,
    /// The number it was placed to, to tell a record about another call from its own.
    pub phone: String,
}

/// Stores a call's tags; an `opt_out` puts its number on the do-not-call list in the same
/// transaction, so no redial can slip in between.
pub(super) fn set_tags(
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
        let phone: Option<Option<String>> = tx
            .query_row(
                "SELECT c.phone FROM contacts c JOIN attempts a ON a.contact_id = c.id WHERE a.id = ?1",
                [attempt_id],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(phone) = phone.flatten() {
            do_not_call::add(tx, &phone, do_not_call::OPT_OUT_SOURCE, stamp)?;
        }
    }
    Ok(())
}

pub(super) fn insert_answer(
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
impl Store {
    /// Calls that have an id and no result.
    pub fn awaiting(&self) -> Result<Vec<Awaiting>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT a.id, a.call_id, c.phone FROM attempts a JOIN contacts c ON c.id = a.contact_id
                 WHERE a.outcome = {} ORDER BY a.id",
                CallState::Dialed.quoted()
            ))
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
                &format!(
                    "UPDATE attempts SET outcome = ?2, status_raw = ?3, duration_seconds = ?4, cost = ?5, transcript = ?6,
                         finished_unix = ?7
                     WHERE id = ?1 AND outcome = {}",
                    CallState::Dialed.quoted()
                ),
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
                let (to, from) = Move::Result(state).sql("state");
                tx.execute(
                    &format!(
                        "UPDATE contacts SET state = {to}, updated_at = ?2,
                             reason = CASE WHEN EXISTS (SELECT 1 FROM attempts WHERE placed_with IS NOT NULL
                                 AND contact_id = contacts.id) THEN reason END
                         WHERE id = (SELECT contact_id FROM attempts WHERE id = ?1) AND {from}"
                    ),
                    params![attempt_id, stamp],
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
}
