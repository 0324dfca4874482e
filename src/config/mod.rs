//! The campaign file and the values it holds: calling hours, durations, tags, secrets.
//!
//! Everything here is checked when the campaign is loaded, before any list is read or any
//! number dialled, so a typo in the YAML is an exit 2 with the line and column, never a
//! surprise at the thousandth call. Config is plain data: nothing here opens the database or
//! the network.
//!
//! May import: `input::files` (bounded reads) and `input::contacts::ReadOptions`,
//! `provider::wire` (the status words a campaign may map) and `state::machine` (state names).

pub(crate) mod campaign;
pub(crate) mod duration;
pub(crate) mod hours;
pub(crate) mod secrets;
pub(crate) mod tags;
