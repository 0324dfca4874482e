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

/// How this program was started, for the hints that name a command: `target/debug/stepcall`
/// for someone who followed the README's `cargo run` (which puts nothing on PATH), `stepcall`
/// for an installed one. A hint must work where it is printed.
pub fn program() -> &'static str {
    static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(|| {
        std::env::args_os()
            .next()
            .and_then(|a| a.into_string().ok())
            .filter(|a| a.contains('/') && !a.contains(char::is_whitespace))
            .unwrap_or_else(|| "stepcall".to_string())
    })
}
