//! `status`: how far a campaign has got, read from its database while a run may be going on.
//!
//! The database is opened, never created: asking about a campaign that never ran must not leave
//! an empty database behind. The JSON form lists every state, zeros included, so scripts can
//! index it without checking for missing keys.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::state::machine::{CallState, Counts, Queue};
use crate::state::{Mode, Store};

/// What every line a person reads about a rehearsal's campaign carries after its name: the
/// run's summary, `status` and the export's summary line.
pub fn rehearsal_mark(simulated: bool) -> &'static str {
    if simulated {
        " (simulated: no real call was made)"
    } else {
        ""
    }
}

#[derive(Debug, Clone)]
pub struct Status {
    pub campaign: String,
    pub database: PathBuf,
    pub started: bool,
    pub simulated: bool,
    pub counts: Counts,
    /// Contacts whose last outcome will be tried again, and when the first is due.
    pub redials_waiting: u64,
    pub next_redial_at: Option<jiff::Zoned>,
    /// Results not yet accepted by the CRM webhook.
    pub webhook_backlog: u64,
    /// Pending contacts the provider asked to call less often, and when the first may go.
    pub held_back: u64,
    pub held_back_until: Option<jiff::Zoned>,
    /// Contacts the provider placed several calls to for one request.
    pub several_calls: u64,
    /// When the next call could start (a window, a redial, a held-back number, tomorrow's
    /// quota), if any is owed.
    pub next_due: Option<jiff::Zoned>,
}

impl Status {
    /// A campaign without a database: it never ran.
    fn nothing_yet(campaign: &Campaign) -> Status {
        Status {
            campaign: campaign.name.clone(),
            database: campaign.state_path.clone(),
            started: false,
            simulated: false,
            counts: Counts::default(),
            redials_waiting: 0,
            next_redial_at: None,
            webhook_backlog: 0,
            held_back: 0,
            held_back_until: None,
            several_calls: 0,
            next_due: None,
        }
    }

    pub fn read(campaign: &Campaign) -> Result<Status> {
        if !campaign.state_path.exists() {
            return Ok(Status::nothing_yet(campaign));
        }
        Status::of(&Store::open(&campaign.state_path, false)?, campaign)
    }

    /// The status of `campaign` in its open `store` (the report reads it from the store it
    /// already holds).
    pub fn of(store: &Store, campaign: &Campaign) -> Result<Status> {
        let mut status = Status {
            started: true,
            ..Status::nothing_yet(campaign)
        };
        status.simulated = store.mode()? == Some(Mode::Simulated);
        status.counts = store.counts()?;
        status.webhook_backlog = store.outbox_backlog()?;
        let (waiting, due) = store.redials_waiting(&Queue::from(&campaign.redial))?;
        status.redials_waiting = waiting;
        status.next_redial_at = due
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(|t| campaign.hours.local(t));
        let (held, until) = store.held_back(crate::clock::now().as_second())?;
        status.held_back = held;
        status.held_back_until = until
            .and_then(|t| jiff::Timestamp::from_second(t).ok())
            .map(|t| campaign.hours.local(t));
        status.several_calls = store.several_calls()?;
        status.next_due = next_due(campaign, store, &status, due, until)?;
        Ok(status)
    }

    /// Why work is still owed, in the words `run --json` puts under `stopped` when nothing
    /// stopped it early; `None` when the campaign is complete.
    pub fn owed(&self) -> Option<&'static str> {
        let pending = self.counts.get(CallState::Pending);
        if pending > self.held_back {
            Some("contacts not dialled yet")
        } else if self.counts.get(CallState::Dialed) > 0 {
            Some("results awaited")
        } else if self.redials_waiting > 0 {
            Some("redials waiting")
        } else if self.held_back > 0 {
            Some("numbers held back by the provider")
        } else {
            None
        }
    }

    pub fn to_json(&self) -> Value {
        let states: Map<String, Value> = self
            .counts
            .iter()
            .map(|(s, n)| (s.as_str().to_string(), json!(n)))
            .collect();
        let unfinished = self.counts.unfinished() + self.redials_waiting;
        json!({
            "campaign": self.campaign,
            "database": self.database.display().to_string(),
            "started": self.started,
            "simulated": self.simulated,
            "total": self.counts.total(),
            "counts": states,
            "awaiting_result": self.counts.get(CallState::Dialed),
            "redials_waiting": self.redials_waiting,
            "webhook_backlog": self.webhook_backlog,
            "next_redial_at": self.next_redial_at.as_ref().map(|t| t.to_string()),
            "held_back": self.held_back,
            "held_back_until": self.held_back_until.as_ref().map(|t| t.to_string()),
            "several_calls": self.several_calls,
            "next_due": self.next_due.as_ref().map(|t| t.to_string()),
            "complete": self.started && unfinished == 0,
        })
    }
}

/// The earliest moment a call is owed: the next window for contacts not dialled yet (from
/// tomorrow when today's `daily_max` is used up), the next redial, the end of a hold-back;
/// each moved into calling hours.
fn next_due(
    campaign: &Campaign,
    store: &Store,
    status: &Status,
    redial_due: Option<i64>,
    held_due: Option<i64>,
) -> Result<Option<jiff::Zoned>> {
    use jiff::Timestamp;
    let hours = &campaign.hours;
    let now = crate::clock::now();
    let dial_due = if status.counts.get(CallState::Pending) > status.held_back {
        let (today, tomorrow) = hours.day_bounds(now);
        let used_up = match campaign.limits.daily_max {
            Some(max) => store.calls_started_between(today, tomorrow)? >= u64::from(max),
            None => false,
        };
        let from = if used_up {
            Timestamp::from_second(tomorrow).unwrap_or(now)
        } else {
            now
        };
        hours.next_open(from)
    } else {
        None
    };
    let [redial_due, held_due] = [redial_due, held_due].map(|due| {
        due.and_then(|t| Timestamp::from_second(t).ok())
            .and_then(|t| hours.next_open(t.max(now)))
    });
    Ok([dial_due, redial_due, held_due]
        .into_iter()
        .flatten()
        .min()
        .map(|t| hours.local(t)))
}
