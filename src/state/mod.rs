//! The campaign's SQLite database: every contact's state, every call id, every result, the
//! webhook outbox, and the one writer thread that commits them.
//!
//! The contact state machine (`machine`) is the only place that names states and moves a
//! contact between them; the SQL here takes its state names and conditions from it. Each file
//! holds one stage's `impl Store` block with its transactions whole. May import `config` and
//! `machine`; it is handed judged rows, never a `Plan`, and knows nothing of HTTP.

pub(crate) mod machine;
mod store;
pub(crate) mod writer;

pub use store::*;
