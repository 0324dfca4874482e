//! The store's own tests: recovery of a killed run's intents, and migrations that keep every
//! row of an older database.

use super::machine::Queue;
use super::schema::{MIGRATIONS, SCHEMA_VERSION};
use super::*;
use rusqlite::Connection;

/// Recovery relabels the intents of runs that are gone, never the running one's own; and
/// each commit notes the highest intent in the lock file, for the next run to compare.
#[test]
fn recovery_leaves_the_running_runs_intents_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let lock = crate::state::run_lock::RunLock::acquire(&path).unwrap();
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
        for sql in &MIGRATIONS[..4] {
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
