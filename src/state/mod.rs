//! The campaign's SQLite database: every contact's state, every call id, every result, the
//! do-not-call list, the webhook outbox, and the one writer thread that commits them.
//!
//! The contact state machine (`machine`) is the only place that names states and moves a
//! contact between them; the SQL here takes its state names and conditions from it. Each file
//! holds one stage's `impl Store` block with its transactions whole: `schema` (migrations),
//! `import`, `dialing`, `results`, `outbox` and `reads`, around the connection in `store`;
//! `do_not_call` decides who is not called, `run_lock` keeps one run per database.
//!
//! May import: `config`, `clock`, `fnv`, `input::plan`'s judged rows (never a `Plan`), and
//! `provider::answer` and `provider::wire::CallResult` (what is recorded). Never HTTP, never
//! `engine`.

mod dialing;
mod do_not_call;
mod import;
pub(crate) mod machine;
mod outbox;
mod reads;
mod results;
pub(crate) mod run_lock;
mod schema;
mod store;
#[cfg(test)]
mod tests;
pub(crate) mod writer;

pub use dialing::*;
pub use do_not_call::numbers;
pub use import::*;
pub use reads::*;
pub use results::*;
pub use schema::SCHEMA_VERSION;
pub use store::*;
