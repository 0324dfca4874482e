//! What an answer from the provider means: the one classification of a dial's answer (`Dial`)
//! and of a poll's (`Poll`), each with the raw `Answer` kept for the database.
//!
//! The client produces these; the dialer acts on them (stop, slow down, hold back, retry); the
//! store records them, moving the contact through `state::machine`. One enum per question, so
//! the three cannot disagree about what an answer was.

use std::time::Duration;

use crate::errors::Error;
use crate::provider::wire::Record;

/// The provider's answer as received, for the database.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http_status: Option<u16>,
    pub body: String,
}

#[derive(Debug)]
pub enum Dial {
    /// The call was placed: every call id the answer holds (at least one; more than one means
    /// the provider placed several calls for this one request).
    Accepted {
        call_ids: Vec<String>,
        answer: Answer,
        /// A 429 that placed the call anyway: no call may start before this long.
        slow_down: Option<Duration>,
        /// The answer's status also says no further call can succeed (a 401 with a call id).
        stop: Option<Error>,
    },
    /// Provably never reached the provider (a 429 without a call id, no connection): the
    /// request may be sent again.
    NotSent {
        reason: String,
        retry_after: Option<Duration>,
        answer: Option<Answer>,
    },
    /// The provider refused this number for now (called too often) and placed nothing: hold
    /// this contact back, dial the others.
    Throttled {
        reason: String,
        answer: Answer,
    },
    /// The request may have reached the provider, and no call id came back.
    Uncertain {
        reason: String,
        answer: Option<Answer>,
        /// What the answer also says about the account, when it means no further call can
        /// succeed (an empty balance behind a 200 or a 5xx).
        stop: Option<Error>,
    },
    Rejected {
        reason: String,
        answer: Answer,
    },
    /// Refused for a reason no further call can get past (key, version, balance, base URL);
    /// nothing was placed.
    Fatal {
        error: Error,
        answer: Option<Answer>,
    },
}

#[derive(Debug)]
pub enum Poll {
    Record {
        record: Record,
        answer: Answer,
    },
    /// The answer is about another call: it must not be applied to this one.
    OtherCall {
        reason: String,
        answer: Answer,
    },
    /// This poll failed; the call is not lost, ask again later.
    Failed {
        reason: String,
        answer: Option<Answer>,
    },
    Fatal {
        error: Error,
        answer: Answer,
    },
}
