//! The schema, as numbered migrations in `migrations/`, applied in order and keyed on
//! `PRAGMA user_version`. Each file says why its version exists; a database written by a newer
//! build is refused rather than guessed at, and one written by an older build is brought up to
//! date in place, never rebuilt from the list.

use crate::errors::{Error, Result};

use super::Store;

/// Every migration, in order: version N is `MIGRATIONS[N - 1]`.
pub(super) const MIGRATIONS: [&str; 6] = [
    include_str!("migrations/0001_contacts_and_attempts.sql"),
    include_str!("migrations/0002_unix_times_and_do_not_call.sql"),
    include_str!("migrations/0003_tags.sql"),
    include_str!("migrations/0004_outbox.sql"),
    include_str!("migrations/0005_fingerprints_not_unique.sql"),
    include_str!("migrations/0006_what_real_providers_do.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl Store {
    /// Brings the database up to `SCHEMA_VERSION`, one migration per transaction.
    pub(super) fn migrate(&mut self) -> Result<()> {
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
        for (to, sql) in (1..).zip(MIGRATIONS) {
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
}
