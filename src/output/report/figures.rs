//! What the report counts and lists, gathered in one pass over the contacts and one over the
//! calls, so a campaign of a million contacts is reported without holding it in memory: the
//! lists of people keep at most `MAX_LISTED` rows each and count the rest.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::state::{CallPoint, ExportRow, Store};

/// Tags whose calls need a person to follow up, in the order the report lists them.
pub(super) const HUMAN_TAGS: [&str; 2] = ["reschedule", "opt_out"];

/// States of a contact whose call needs a person whatever its tags: stepcall could not tell
/// whether the person was rung, or the call did not go through.
const HUMAN_STATES: [&str; 3] = ["uncertain", "failed", "unknown"];

/// The most rows one list of people shows: a report stays small enough to mail; the export
/// has everyone.
pub(super) const MAX_LISTED: usize = 500;

/// How calls ended, as the charts colour them; the last, `other`, gathers the rest (declined,
/// uncertain, unknown, no result yet).
pub(super) const OUTCOMES: [&str; 5] = ["answered", "no_answer", "busy", "failed", "other"];

/// Calls per outcome, in `OUTCOMES` order.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally(pub [u64; OUTCOMES.len()]);

impl Tally {
    fn add(&mut self, outcome: &str) {
        let i = OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .unwrap_or(OUTCOMES.len() - 1);
        self.0[i] += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// Some people, at most `MAX_LISTED` of them kept, and how many more there are.
#[derive(Debug, Default)]
pub(super) struct People {
    pub rows: Vec<ExportRow>,
    pub more: u64,
}

impl People {
    fn push(&mut self, row: ExportRow) {
        self.push_with(|| row);
    }

    /// Makes the row only when it is kept: a tag a million people share copies 500 of them.
    fn push_with(&mut self, row: impl FnOnce() -> ExportRow) {
        if self.rows.len() < MAX_LISTED {
            self.rows.push(row());
        } else {
            self.more += 1;
        }
    }
}

pub(super) const DURATION_BUCKETS: [&str; 5] =
    ["< 30 s", "30–60 s", "1–2 min", "2–5 min", "≥ 5 min"];

#[derive(Debug, Default)]
pub(super) struct Figures {
    pub contacts: u64,
    pub valid: u64,
    /// Contacts with at least one call.
    pub dialled: u64,
    pub answered: u64,
    pub tagged: u64,
    /// Rows that are not contacts to call, by state (invalid, duplicate).
    pub not_valid: BTreeMap<String, u64>,
    /// Valid contacts without a call, by state (suppressed, removed, pending).
    pub not_dialled: BTreeMap<String, u64>,
    /// Every call that may have rung someone, redials included.
    pub calls: u64,
    pub answered_calls: u64,
    pub answered_seconds: i64,
    pub cost: f64,
    pub first_call: Option<Timestamp>,
    pub last_call: Option<Timestamp>,
    /// Calls by the hour of day they started, in the campaign's zone.
    pub by_hour: [Tally; 24],
    /// Calls by the date they started, in the campaign's zone.
    pub by_day: BTreeMap<Date, Tally>,
    /// Answered calls by length, in `DURATION_BUCKETS`.
    pub durations: [u64; 5],
    /// Contacts by the tags of their last call.
    pub tags: BTreeMap<String, People>,
    /// Failed, uncertain and unknown calls, and the `HUMAN_TAGS`.
    pub needs_person: People,
    /// No-answers and busies that stepcall will not try again: a person may.
    pub call_back: People,
}

impl Figures {
    pub fn gather(store: &Store, campaign: &Campaign) -> Result<Figures> {
        let mut f = Figures::default();
        store.for_each_export_row(|row| {
            f.contact(campaign, row);
            Ok(())
        })?;
        store.for_each_call(|call| f.call(campaign, &call))?;
        Ok(f)
    }

    fn contact(&mut self, campaign: &Campaign, row: ExportRow) {
        self.contacts += 1;
        if matches!(row.state.as_str(), "invalid" | "duplicate") {
            *self.not_valid.entry(row.state.clone()).or_default() += 1;
            return;
        }
        self.valid += 1;
        if row.attempts == 0 {
            *self.not_dialled.entry(row.state.clone()).or_default() += 1;
            return;
        }
        self.dialled += 1;
        if row.state == "answered" {
            self.answered += 1;
        }
        let tags: Vec<String> = tags_of(&row).map(str::to_string).collect();
        if !tags.is_empty() {
            self.tagged += 1;
        }
        for tag in &tags {
            self.tags
                .entry(tag.clone())
                .or_default()
                .push_with(|| row.clone());
        }
        if HUMAN_STATES.contains(&row.state.as_str())
            || tags.iter().any(|t| HUMAN_TAGS.contains(&t.as_str()))
        {
            self.needs_person.push(row);
        } else if calls_back(campaign, &row) {
            self.call_back.push(row);
        }
    }

    fn call(&mut self, campaign: &Campaign, call: &CallPoint) {
        self.calls += 1;
        self.cost += call.cost.unwrap_or(0.0);
        if call.outcome == "answered" {
            let d = call.duration_seconds.unwrap_or(0);
            self.answered_calls += 1;
            self.answered_seconds += d;
            let bucket = match d {
                ..30 => 0,
                30..60 => 1,
                60..120 => 2,
                120..300 => 3,
                _ => 4,
            };
            self.durations[bucket] += 1;
        }
        let Ok(at) = Timestamp::from_second(call.started_unix) else {
            return;
        };
        // The calls come oldest first.
        self.first_call.get_or_insert(at);
        self.last_call = Some(at);
        let local = campaign.hours.local(at);
        self.by_hour[local.hour() as usize].add(&call.outcome);
        self.by_day
            .entry(local.date())
            .or_default()
            .add(&call.outcome);
    }
}

/// The tags of a contact's last call.
fn tags_of(row: &ExportRow) -> impl Iterator<Item = &str> {
    row.tags
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|t| !t.is_empty())
}

/// A no-answer or busy after its last attempt: stepcall will not ring them again (no redial
/// left, or none for that outcome), and their number is not on the do-not-call list.
fn calls_back(campaign: &Campaign, row: &ExportRow) -> bool {
    let redial = &campaign.redial;
    let redials = redial.when.iter().any(|s| s.as_str() == row.state)
        && row.attempts < i64::from(redial.max_attempts);
    matches!(row.state.as_str(), "no_answer" | "busy") && !redials && !row.do_not_call
}
