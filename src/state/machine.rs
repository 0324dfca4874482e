//! The contact state machine: where a contact stands (`CallState`), every move it can make
//! (`Move`), and the SQL conditions that pick contacts by state.
//!
//! The names are the user-facing vocabulary (`call_state` column, `status` output), spelled once
//! here and parsed back from the database through the same table. Every UPDATE of
//! `contacts.state` in the store is one `Move`, taking both ends from `Move::rule`; the
//! conditions that select by state (a number held, a row judged again, a contact diallable now)
//! are the constants below, so no other file names a state in SQL. A test checks each constant
//! against the rule it spells.

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

    /// A call's result, as a poll reports it: the states a call ends in.
    pub fn is_result(self) -> bool {
        matches!(
            self,
            CallState::Answered
                | CallState::NoAnswer
                | CallState::Busy
                | CallState::Failed
                | CallState::Rejected
                | CallState::Unknown
        )
    }

    /// A contact in this state holds its number: a new row with the same number is a
    /// duplicate of it. Invalid rows have no number; duplicates and removed rows gave theirs up.
    pub fn holds_number(self) -> bool {
        !matches!(
            self,
            CallState::Invalid | CallState::Duplicate | CallState::Removed
        )
    }

    /// A call ending in this state may be tried again (`redial.when`).
    pub fn may_redial(self) -> bool {
        matches!(
            self,
            CallState::NoAnswer | CallState::Busy | CallState::Failed | CallState::Unknown
        )
    }

    /// The quoted SQL literal of this state's name, for the SQL that names one (an attempt's
    /// outcome, a state written): a literal, not a parameter, so partial indexes apply.
    pub fn quoted(self) -> String {
        format!("'{}'", self.as_str())
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

/// How many contacts are in each state: the one tally `run`, `status` and their JSON read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts([u64; CallState::ALL.len()]);

impl Counts {
    pub fn add(&mut self, state: CallState, n: u64) {
        self.0[state as usize] += n;
    }

    pub fn get(&self, state: CallState) -> u64 {
        self.0[state as usize]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Contacts the campaign calls: those dialled already and those still to dial, but not
    /// rows it will never ring (invalid, duplicate, suppressed, removed).
    pub fn to_call(&self) -> u64 {
        self.total()
            - [
                CallState::Invalid,
                CallState::Duplicate,
                CallState::Suppressed,
                CallState::Removed,
            ]
            .into_iter()
            .map(|s| self.get(s))
            .sum::<u64>()
    }

    /// Contacts this campaign still owes something: a first call, or a call's answer or
    /// result. Redials waiting for their time are counted apart.
    pub fn unfinished(&self) -> u64 {
        self.get(CallState::Pending) + self.get(CallState::Dialing) + self.get(CallState::Dialed)
    }

    /// Every state with its count, zeros included, in `CallState::ALL` order.
    pub fn iter(&self) -> impl Iterator<Item = (CallState, u64)> + '_ {
        CallState::ALL.into_iter().map(|s| (s, self.get(s)))
    }

    /// `answered 11 · no_answer 3 · ...`, states with zero left out.
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        if parts.is_empty() {
            "no contacts".to_string()
        } else {
            parts.join(" · ")
        }
    }
}

/// The columns the export adds after the list's own, each a contact's state or its calls'. A
/// list may not have a column of these names (`Plan::open` refuses it), so no export is
/// ambiguous.
pub const RESULT_COLUMNS: [&str; 12] = [
    // The number dialled (or that would be), normalised; empty for an invalid row.
    "call_phone",
    "call_state",
    "call_id",
    "call_attempts",
    "call_status_raw",
    "call_duration_seconds",
    "call_cost",
    "call_transcript",
    "call_error",
    "call_first_dialed_at",
    "call_updated_at",
    "call_tags",
];

/// Every way a contact's state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// A pending row left the contact list before it was dialled.
    Remove,
    /// A removed row is back in the list, and nobody took its number meanwhile.
    Restore,
    /// A changed template fails on a row not dialled yet.
    TemplateFails,
    /// A run that is gone left this contact mid-dial: the call may have been placed.
    Interrupt,
    /// `run --redial-uncertain`: the user vouches that the uncertain calls were not placed.
    Requeue,
    /// A do-not-call list added to the campaign holds the number of a contact not dialled yet.
    Suppress,
    /// At the intent, the number of a contact due for a call is on a do-not-call list (an
    /// opt-out since its last call, a list added meanwhile).
    SuppressDue,
    /// The durable intent, committed before the request leaves.
    Intend,
    /// The provider's answer to the request: `Dialed` (a call id), `Pending` (provably not
    /// sent), `Uncertain` or `Rejected`.
    Answer(CallState),
    /// The call's result (`CallState::is_result`).
    Result(CallState),
}

/// Where a contact may be dialled from: not dialled yet, or a call that may be tried again.
const DUE: [CallState; 5] = [
    CallState::Pending,
    CallState::NoAnswer,
    CallState::Busy,
    CallState::Failed,
    CallState::Unknown,
];

impl Move {
    /// The one rule of the machine: the states a move may start from, and where it ends.
    pub fn rule(self) -> (&'static [CallState], CallState) {
        use CallState::*;
        match self {
            Move::Remove => (&[Pending], Removed),
            Move::Restore => (&[Removed], Pending),
            Move::TemplateFails => (&[Pending], Invalid),
            Move::Interrupt => (&[Dialing], Uncertain),
            Move::Requeue => (&[Uncertain], Pending),
            Move::Suppress => (&[Pending], Suppressed),
            Move::SuppressDue => (&DUE, Suppressed),
            Move::Intend => (&DUE, Dialing),
            Move::Answer(to) => {
                debug_assert!(
                    matches!(to, Dialed | Pending | Uncertain | Rejected),
                    "{to} is not an answer to a dial"
                );
                (&[Dialing], to)
            }
            Move::Result(to) => {
                debug_assert!(to.is_result(), "{to} is not a result");
                (&[Dialed], to)
            }
        }
    }

    /// Where the move ends.
    pub fn to(self) -> CallState {
        self.rule().1
    }

    /// The SQL condition that `column` (a contact's state) may make this move.
    pub fn starts_sql(self, column: &str) -> String {
        match self.rule().0 {
            [one] => format!("{column} = {}", one.quoted()),
            many => format!(
                "{column} IN ({})",
                many.iter()
                    .map(|s| s.quoted())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// `SET state = …, … WHERE <from>` for `column`: the two halves of the move's UPDATE.
    pub fn sql(self, column: &str) -> (String, String) {
        (self.to().quoted(), self.starts_sql(column))
    }
}

/// `attempts.outcome` of a try that provably never reached the provider. Every other outcome
/// is the state the attempt left its contact in (`dialing`, `dialed`, `uncertain`, a result).
pub const NOT_SENT: &str = "not_sent";

/// An attempt that may have reached the provider, over `attempts a`: it counts toward the
/// contact's attempts and the day's calls. Only a try provably never sent does not.
pub const SENT: &str = "a.outcome != 'not_sent'";

/// The condition over `contacts` for a contact holding its number (`CallState::holds_number`).
/// Spelled with `!=`, and repeated exactly by every query that should use the partial index
/// `contacts_by_phone` (migration 5), as SQLite requires: it evaluated `NOT IN (...)` through a
/// temporary table on every insert.
pub const HOLDS_NUMBER: &str = "state != 'invalid' AND state != 'duplicate' AND state != 'removed'";

/// The condition over `contacts` for a row that a changed template judges again: not dialled
/// yet, or invalid only because of the template.
pub const REJUDGED: &str = "(state = 'pending' OR (state = 'invalid' AND template_invalid = 1))";

/// The SQL condition for "may be dialled now" over `contacts c`, with the `Queue` and the
/// current Unix time bound as :when (a JSON array), :max, :after and :now. A contact held back
/// by the provider waits for its `not_before`; one with a call still awaiting its result (the
/// provider placed several calls for one request) is not redialled.
pub const DIALLABLE: &str = "c.in_list = 1 AND coalesce(c.not_before, 0) <= :now AND (c.state = 'pending' OR (
    c.state IN (SELECT value FROM json_each(:when))
    AND (SELECT count(*) FROM attempts a WHERE a.contact_id = c.id AND a.outcome != 'not_sent') < :max
    AND coalesce((SELECT max(finished_unix) FROM attempts a WHERE a.contact_id = c.id), 0) + :after <= :now
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.contact_id = c.id AND a.outcome IN ('dialing', 'dialed'))))";

/// Which contacts may be dialled now, besides the pending ones: those whose last outcome is
/// in `when`, with fewer than `max_attempts` attempts, whose last result is `after_secs` old.
#[derive(Debug, Clone)]
pub struct Queue {
    pub when: Vec<CallState>,
    pub max_attempts: u32,
    pub after_secs: i64,
}

impl From<&crate::config::campaign::Redial> for Queue {
    fn from(r: &crate::config::campaign::Redial) -> Queue {
        Queue {
            when: r.when.clone(),
            max_attempts: r.max_attempts,
            after_secs: r.after.as_secs() as i64,
        }
    }
}

impl Queue {
    /// `when` as the JSON array bound to `:when`.
    pub fn when_json(&self) -> String {
        serde_json::to_string(&self.when.iter().map(|s| s.as_str()).collect::<Vec<_>>())
            .expect("strings serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (i, state) in CallState::ALL.into_iter().enumerate() {
            assert_eq!(
                state as usize, i,
                "ALL is in declaration order, as Counts indexes it"
            );
            assert_eq!(CallState::parse(state.as_str()), Some(state));
        }
        assert_eq!(CallState::parse("ringing"), None);
    }

    /// The SQL constants say what the rules say: a change to one without the other fails here.
    #[test]
    fn the_sql_conditions_spell_the_rules() {
        let released: Vec<String> = CallState::ALL
            .into_iter()
            .filter(|s| !s.holds_number())
            .map(|s| format!("state != '{s}'"))
            .collect();
        assert_eq!(HOLDS_NUMBER, released.join(" AND "));
        assert!(
            super::super::schema::MIGRATIONS[4].contains(&format!("WHERE {HOLDS_NUMBER};")),
            "the phone index's condition is HOLDS_NUMBER"
        );
        assert!(REJUDGED.contains(&format!("state = '{}'", CallState::Pending)));
        assert_eq!(SENT, format!("a.outcome != '{NOT_SENT}'"));
        assert!(DIALLABLE.contains(SENT));
        assert!(DIALLABLE.contains(&format!(
            "IN ('{}', '{}')",
            CallState::Dialing,
            CallState::Dialed
        )));
        for state in DUE {
            assert!(state == CallState::Pending || state.may_redial());
        }
    }

    /// Every move ends where its rule says, and none starts from a final result except a
    /// redial's intent or a suppression before one.
    #[test]
    fn moves_start_where_they_may() {
        assert_eq!(
            Move::Intend.starts_sql("c.state"),
            "c.state IN ('pending', 'no_answer', 'busy', 'failed', 'unknown')"
        );
        assert_eq!(
            Move::Remove.sql("state"),
            ("'removed'".into(), "state = 'pending'".into())
        );
        assert_eq!(Move::Answer(CallState::Pending).to(), CallState::Pending);
        assert!(std::panic::catch_unwind(|| Move::Answer(CallState::Answered).rule()).is_err());
        assert!(std::panic::catch_unwind(|| Move::Result(CallState::Dialing).rule()).is_err());
        for result in CallState::ALL.into_iter().filter(|s| s.is_result()) {
            assert_eq!(Move::Result(result).rule().0, &[CallState::Dialed]);
        }
    }
}
