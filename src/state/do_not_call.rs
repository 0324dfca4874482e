//! The campaign's do-not-call list (table `suppressed`): how a number gets on it, how a
//! number is looked up, and the reason a contact shows for it.
//!
//! A number is checked at every step that could lead to a call: when a row is imported, when a
//! list is added (contacts not dialled yet), when redials are counted, and once more in the
//! intent's own transaction, so an opt-out recorded a moment ago stops the next call. All of
//! those ask through here.

use rusqlite::{Connection, OptionalExtension, params};

/// `1 number` or `3 numbers`: how the messages about this list count what was added.
pub fn numbers(n: u64) -> String {
    match n {
        1 => "1 number".into(),
        n => format!("{n} numbers"),
    }
}

/// Where an opt-out recorded from a call's tags comes from.
pub(super) const OPT_OUT_SOURCE: &str = "opt_out tag";

/// The condition over `contacts c` for a contact whose number is not on the list.
pub(super) const NOT_LISTED: &str = "c.phone NOT IN (SELECT phone FROM suppressed)";

/// The list `phone` is on, if it is on one.
pub(super) fn source_of(conn: &Connection, phone: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT source FROM suppressed WHERE phone = ?1")?
        .query_row([phone], |r| r.get(0))
        .optional()
}

/// Puts `phone` on the list, as coming from `source`; false if it was already on it.
pub(super) fn add(
    conn: &Connection,
    phone: &str,
    source: &str,
    stamp: &str,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO suppressed (phone, source, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![phone, source, stamp])
    .map(|n| n > 0)
}

/// Whether the list holds any number at all (an import into a campaign without one skips the
/// lookups).
pub(super) fn any(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM suppressed)", [], |r| r.get(0))
}

/// Why a contact is not called: its number is on the do-not-call list `source`.
pub(super) fn because(source: &str) -> String {
    format!("on the do-not-call list ({source})")
}
