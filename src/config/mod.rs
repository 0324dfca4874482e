//! The campaign file and the values it holds: calling hours, durations, tags, secrets.
//!
//! Everything here is checked when the campaign is loaded, before any list is read or any
//! number dialled, so a typo in the YAML is an exit 2 with the line and column, never a
//! surprise at the thousandth call. May import `input::files` (bounded reads) and nothing
//! stateful: config is plain data.

pub(crate) mod campaign;
pub(crate) mod duration;
pub(crate) mod hours;
pub(crate) mod secrets;
pub(crate) mod tags;
