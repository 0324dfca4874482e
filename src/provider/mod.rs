//! The Stepone AI call API: its HTTP and JSON (`wire`), the client that speaks it with
//! stepcall's retry rules (`client`), and the simulator that answers like it (`sim`).
//!
//! `wire` is the one home of paths, field names and answer shapes, shared by the client and the
//! simulator so the two cannot drift apart. May import `config` and `input::phone`; never
//! `state` or `engine`.

pub(crate) mod answer;
pub(crate) mod client;
pub(crate) mod sim;
pub(crate) mod wire;
