//! The command line: what was typed, and what it means.
//!
//! `lowargs` holds clap's derive structs and nothing else: paths are not opened, URLs not
//! checked, keys not loaded. `hiargs` turns them, and the environment, into validated settings
//! for the engine, so every rule about what a flag or an environment variable means lives in
//! one place and the engine never reads either. `logging` sets up stderr once.
//!
//! May import: `config`, the settings types of `engine`, `output` and `provider::sim`, and
//! `state::machine`'s state names. Imported only by `commands`.

pub(crate) mod hiargs;
pub(crate) mod logging;
pub(crate) mod lowargs;
