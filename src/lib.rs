//! stepcall: outbound AI phone-call campaigns through the Stepone AI call API.
//!
//! A campaign file and a contact list go in; one personalised call per valid contact goes out,
//! under a rate limit, with every step checkpointed in SQLite so a run killed at any instant
//! resumes without ringing anyone twice or losing a call id. The folders follow the data path:
//! `cli` reads the command line, `commands` runs one command each, `config` reads the campaign
//! file, `input` judges the list, `state` keeps every step durable, `engine` dials and polls,
//! `provider` speaks the API (and simulates it), `output` writes what people and CRMs read.
//! `main.rs` only calls [`main`].
//!
//! Every module is private to the crate so the compiler reports dead code. The few items
//! re-exported below are what the integration tests drive directly: the provider client and its
//! wire format, the phone rule, the list reader, the error type and the schema version.

// Errors are the cold path and carry the campaign file's text for miette's snippets; boxing them
// would buy nothing measurable and cost readability at every `?`.
#![allow(clippy::result_large_err)]

mod cli;
mod clock;
mod commands;
mod config;
mod engine;
mod errors;
mod exit;
mod fnv;
mod input;
mod output;
mod provider;
mod state;

pub use commands::main;
pub use config::secrets::ApiKey;
pub use errors::Error;
pub use input::contacts::{ContactReader, ReadOptions};
pub use input::phone::{METADATA_VERSION, normalize as normalize_phone};
pub use provider::answer::Dial;
pub use provider::client::Client;
pub use provider::wire::{INITIATE_PATH, InitiateRequest, SEARCH_PATH, SKILL_VERSION_PATH};
pub use state::SCHEMA_VERSION;
