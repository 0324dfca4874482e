//! The import: judged rows in, contacts out, in one transaction, so a list that breaks at
//! row 9,000 leaves nothing half-imported. A row already known keeps its state; one that left
//! the list before it was dialled is `removed`; a changed template judges the undialled again.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use serde_json::Value;

use crate::errors::{Error, Result};
use crate::input::plan::{JudgedRows, Judgement};
use crate::state::machine::{CallState, HOLDS_NUMBER, Move, REJUDGED, SENT};

use super::do_not_call;
use super::store::Store;
use super::store::now;

/// The page cache during an import (negative: KiB), and after it (SQLite's default).
pub(super) const IMPORT_CACHE_KIB: i64 = -32768;
pub(super) const DEFAULT_CACHE_KIB: i64 = -2000;

/// Which lookups an import needs: of contacts already imported, of do-not-call numbers.
pub(super) struct Lookups {
    had_contacts: bool,
    has_suppressed: bool,
}

/// New contacts are inserted this many to a statement: at one row each, SQLite's work per
/// statement (opening and closing cursors on the table and both indexes) was a tenth of a
/// large import.
pub(super) const ROWS_PER_INSERT: usize = 64;

/// A contact the import adds, borrowing from the judged row.
pub(super) struct NewContact<'a> {
    fingerprint: i64,
    line: i64,
    cells: &'a str,
    phone: Option<&'a str>,
    requirement: Option<&'a str>,
    state: &'static str,
    reason: Option<Cow<'a, str>>,
    template_invalid: bool,
}

pub(super) fn insert_contacts_sql(rows: usize) -> String {
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
pub(super) fn insert_contacts(
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

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub new_rows: u64,
    pub known_rows: u64,
    pub new_pending: u64,
    /// Contacts not dialled yet whose row left the list.
    pub removed: u64,
}

/// A setting as the change message shows it: text as-is (shortened), anything else as JSON.
pub(super) fn show(v: &Value) -> String {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let short: String = text.chars().take(200).collect();
    let ellipsis = if short.len() < text.len() { "…" } else { "" };
    format!("«{short}{ellipsis}»")
}
impl Store {
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
        headers: &[String],
        rows: JudgedRows,
        listed: &[i64],
        refresh_pending: bool,
    ) -> Result<ImportSummary> {
        let mut columns = self.columns()?;
        for h in headers {
            if !columns.contains(h) {
                columns.push(h.clone());
            }
        }
        let path = self.path.clone();
        let db = || Error::state(&path);
        // Into an empty database no row is known and no number taken, and without a
        // do-not-call list no number is listed: the lookups for those are skipped.
        let had_contacts = self.contact_count()? > 0;
        let has_suppressed = do_not_call::any(&self.conn).map_err(db())?;
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
            rows,
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
    pub(super) fn import_rows(
        &mut self,
        rows: JudgedRows,
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
        let (to, from) = Move::Remove.sql("state");
        summary.removed = tx
            .execute(
                &format!(
                    "UPDATE contacts SET state = {to}, reason = 'no longer in the contact list', updated_at = ?1
                     WHERE {from} AND in_list = 0"
                ),
                [&stamp],
            )
            .map_err(db())? as u64;
        let (to, from) = Move::Restore.sql("state");
        let other_holds_number = HOLDS_NUMBER.replace("state", "o.state");
        tx.execute(
            &format!(
                "UPDATE contacts SET state = {to}, reason = NULL, updated_at = ?1
                 WHERE {from} AND in_list = 1 AND NOT EXISTS (
                     SELECT 1 FROM contacts o WHERE o.phone = contacts.phone AND o.id != contacts.id
                         AND {other_holds_number})"
            ),
            [&stamp],
        )
        .map_err(db())?;
        if refresh_pending {
            // Every row not dialled yet is judged again, in list order, so which of two rows
            // with one number gets it is the plan's to say: none of them holds the number
            // meanwhile (a row invalid only by the old template may come first).
            let (to, from) = Move::TemplateFails.sql("state");
            tx.execute(
                &format!(
                    "UPDATE contacts SET state = {to}, template_invalid = 1 WHERE {from} AND in_list = 1"
                ),
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
            let mut same_phone = tx
                .prepare(&format!(
                    "SELECT line FROM contacts WHERE phone = ?1 AND {HOLDS_NUMBER} AND fingerprint != ?2"
                ))
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
                                    do_not_call::source_of(&tx, phone).map_err(db())?
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
                                        Some(do_not_call::because(&source).into()),
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
    pub(super) fn rollback_journal(&self) -> bool {
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
                &format!("SELECT EXISTS (SELECT 1 FROM attempts a WHERE {SENT})"),
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
}
