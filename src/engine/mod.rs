//! A run: prepare, import, recover, then dial and poll under the rate limit and calling hours,
//! until the work is done or a stop is asked for.
//!
//! The engine is handed validated settings (`run::RunSettings`) and never reads a flag or the
//! environment. It writes state through `state::writer` before every side effect, and speaks
//! to the provider only through `provider::client`.
//!
//! May import: `config`, `input`, `state`, `provider`, `output::webhook` (deliveries run
//! alongside the dialer). Imported by `commands`, and by `cli::hiargs` for its settings types.

pub(crate) mod dialer;
pub(crate) mod gate;
pub(crate) mod pacer;
pub(crate) mod poller;
pub(crate) mod progress;
pub(crate) mod run;
pub(crate) mod stop;
pub(crate) mod streak;
