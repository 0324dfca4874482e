//! `CallState`: where a contact stands, as stored in the database and shown in exports.
//!
//! The names are the user-facing vocabulary (`call_state` column, `status` output), so they are
//! spelled once here and parsed back from the database through the same table. Which states are
//! final, and which may be dialled, is decided here and nowhere else.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CallState {
    /// Valid and not dialled yet.
    Pending,
    /// The phone cell is not a number stepcall will dial (the reason is kept).
    Invalid,
    /// An earlier row has the same normalised number.
    Duplicate,
    /// The number is on a do-not-call list.
    Suppressed,
    /// The row left the contact list before it was dialled.
    Removed,
    /// An attempt is committed and its request may be on the wire.
    Dialing,
    /// The request may have reached the provider but no call id came back: never redialled
    /// unless the user asks for it.
    Uncertain,
    /// The provider accepted the call and gave a call id; its result is not in yet.
    Dialed,
    Answered,
    NoAnswer,
    Busy,
    Failed,
    /// The provider refused the request (for example a number it will not call).
    Rejected,
    /// A result arrived whose status could not be mapped; the raw value is kept.
    Unknown,
}

impl CallState {
    pub const ALL: [CallState; 14] = [
        CallState::Pending,
        CallState::Invalid,
        CallState::Duplicate,
        CallState::Suppressed,
        CallState::Removed,
        CallState::Dialing,
        CallState::Uncertain,
        CallState::Dialed,
        CallState::Answered,
        CallState::NoAnswer,
        CallState::Busy,
        CallState::Failed,
        CallState::Rejected,
        CallState::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::Invalid => "invalid",
            CallState::Duplicate => "duplicate",
            CallState::Suppressed => "suppressed",
            CallState::Removed => "removed",
            CallState::Dialing => "dialing",
            CallState::Uncertain => "uncertain",
            CallState::Dialed => "dialed",
            CallState::Answered => "answered",
            CallState::NoAnswer => "no_answer",
            CallState::Busy => "busy",
            CallState::Failed => "failed",
            CallState::Rejected => "rejected",
            CallState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<CallState> {
        CallState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// A final state needs nothing more from this run: no dial, no poll.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            CallState::Pending | CallState::Dialing | CallState::Dialed
        )
    }
}

impl CallState {
    /// Of the results of several calls placed for one request, the one that got furthest: an
    /// answer over everything, then what may have been one, then busy, no answer, failure,
    /// refusal. `None` when none of them is a result.
    pub fn furthest(states: &[CallState]) -> Option<CallState> {
        const ORDER: [CallState; 6] = [
            CallState::Answered,
            CallState::Unknown,
            CallState::Busy,
            CallState::NoAnswer,
            CallState::Failed,
            CallState::Rejected,
        ];
        ORDER.into_iter().find(|s| states.contains(s))
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::CallState;

    #[test]
    fn names_round_trip() {
        for state in CallState::ALL {
            assert_eq!(CallState::parse(state.as_str()), Some(state));
        }
        assert_eq!(CallState::parse("ringing"), None);
    }
}
