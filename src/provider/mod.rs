//! The Stepone AI call API: its HTTP and JSON (`wire`), what an answer means (`answer`), the
//! client that speaks it with stepcall's retry rules (`client`), and the simulator that
//! answers like it (`sim`).
//!
//! `wire` is the one home of paths, field names and answer shapes, shared by the client and the
//! simulator so the two cannot drift apart.
//!
//! May import: `config`, `input::phone`, `state::machine` (the states a status word maps to),
//! `clock` and `fnv`. Never `state`'s store or `engine`.

pub(crate) mod answer;
pub(crate) mod client;
pub(crate) mod sim;
pub(crate) mod wire;
