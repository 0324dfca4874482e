//! The contact list judged row by row: reading CSV and spreadsheets, decoding, phone numbers,
//! row identities, the template, the do-not-call lists, and the `Plan` that `validate` and
//! `run` both walk.
//!
//! Nothing here touches the network or the state database: what `validate` accepts is what
//! `run` imports, because both take the same judged rows from `plan`.
//!
//! May import: `config`, `fnv`, and `state::machine` (the result columns a list may not use).

pub(crate) mod contacts;
pub(crate) mod decoding;
pub(crate) mod files;
pub(crate) mod identity;
pub(crate) mod phone;
pub(crate) mod plan;
pub(crate) mod suppress;
pub(crate) mod template;
pub(crate) mod validate;
