//! stepcall: outbound AI phone-call campaigns through the Stepone AI call API.
//!
//! A campaign file and a contact list go in; one personalised call per valid contact goes out,
//! under a rate limit, with every step checkpointed in SQLite so a run killed at any instant
//! resumes without ringing anyone twice or losing a call id. `main.rs` only calls `app::main`;
//! each module below owns one concern and says why it is shaped the way it is.

// Errors are the cold path and carry the campaign file's text for miette's snippets; boxing them
// would buy nothing measurable and cost readability at every `?`.
#![allow(clippy::result_large_err)]

pub mod app;
pub mod call_state;
pub mod campaign;
pub mod cell_text;
pub mod cli;
pub mod client;
pub mod clock;
pub mod contacts;
pub mod decoding;
pub mod dialer;
pub mod duration;
pub mod errors;
pub mod exit;
pub mod export;
pub mod files;
pub mod gate;
pub mod hours;
pub mod logging;
pub mod ods;
pub mod oneoff;
pub mod pacer;
pub mod phone;
pub mod plan;
pub mod poller;
pub mod progress;
pub mod report;
pub mod run;
pub mod run_lock;
pub mod secrets;
pub mod sim;
pub mod status;
pub mod stop;
pub mod store;
pub mod suppress;
pub mod tags;
pub mod template;
pub mod validate;
pub mod webhook;
pub mod wire;
pub mod writer;
pub mod xls;
