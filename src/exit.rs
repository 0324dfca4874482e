//! The process exit codes, named in one place.
//!
//! Scripts and cron jobs branch on these numbers, so they are part of stepcall's interface: each
//! constant is documented in the README's "Exit codes" table, and nothing else in the crate uses
//! a bare number. Where a BSD `sysexits.h` code fits, it is used, so the values mean something to
//! people who have seen them elsewhere.

/// Everything asked for was done (a run may still have results to collect later).
pub const SUCCESS: u8 = 0;
/// Something unexpected went wrong (an I/O error outside the state database, a bug).
pub const FAILURE: u8 = 1;
/// The command line, the campaign file, the contact list or the template is wrong. Nothing was
/// dialled.
pub const INVALID_INPUT: u8 = 2;
/// `callinfo` (or `call --wait`) gave up before the provider had a result for the call.
pub const RESULT_PENDING: u8 = 3;
/// `validate`: the campaign can run, but some rows are invalid and will not be dialled.
pub const SOME_ROWS_INVALID: u8 = 4;
/// The provider says the account has no credit left.
pub const NO_BALANCE: u8 = 69;
/// The provider kept refusing (429) or could not be reached; try again later.
pub const PROVIDER_UNAVAILABLE: u8 = 70;
/// The state database could not be opened, read or written.
pub const STATE_ERROR: u8 = 74;
/// Another `run` of the same campaign holds the state database.
pub const LOCKED: u8 = 75;
/// The provider rejected the client's protocol version (HTTP 426).
pub const VERSION_REJECTED: u8 = 76;
/// The provider rejected the API key (HTTP 401 or 403).
pub const AUTH_REJECTED: u8 = 77;
/// The configuration cannot work: no API key was found, or the base URL does not lead to the
/// API (HTTP 404, 405 or a redirect).
pub const CONFIG: u8 = 78;
/// Stopped by Ctrl-C (SIGINT); run the same command again to resume.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM; run the same command again to resume.
pub const TERMINATED: u8 = 143;
