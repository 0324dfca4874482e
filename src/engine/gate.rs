//! `Gate`: whether a call may start *now*: calling hours, then the run's and the day's budget.
//!
//! Asked once per call, right before its intent is committed, so a window that closes mid-run
//! or a cap that is reached stops new calls at once while calls already started finish. A
//! stopped gate is not an error: the run polls what it has, says when dialing can go on, and
//! exits 0, which is what cron wants. The budget is taken before the intent and given back if
//! the call never went out, so `--max-calls` and `daily_max` count calls that may have rung.

use std::fmt;
use std::sync::Mutex;
use std::time::Instant;

use jiff::Timestamp;
use jiff::civil::Date;

use crate::config::hours::Hours;
use crate::state::machine::Queue;

/// Why dialing stopped before the list was done.
#[derive(Debug, Clone, PartialEq)]
pub enum Halt {
    /// Outside calling hours; `opens` is when the next window opens.
    OutsideHours {
        opens: Option<Timestamp>,
    },
    MaxCalls(u64),
    MaxDuration,
    DailyMax(u64),
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Halt::OutsideHours { .. } => f.write_str("outside calling hours"),
            Halt::MaxCalls(n) => write!(f, "--max-calls {n} reached"),
            Halt::MaxDuration => f.write_str("--max-duration reached"),
            Halt::DailyMax(n) => write!(f, "limits.daily_max ({n} calls today) reached"),
        }
    }
}

pub struct Gate {
    pub hours: Hours,
    pub wait_for_window: bool,
    pub queue: Queue,
    max_calls: Option<u64>,
    deadline: Option<Instant>,
    daily_max: Option<u64>,
    count: Mutex<Count>,
    halt: Mutex<Option<Halt>>,
}

struct Count {
    day: Date,
    today: u64,
    this_run: u64,
}

/// The limits of one run, from flags and the campaign file.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub max_calls: Option<u64>,
    pub max_duration: Option<std::time::Duration>,
    pub daily_max: Option<u64>,
    /// Calls already started today (campaign time zone), from earlier runs.
    pub today_so_far: u64,
}

impl Gate {
    pub fn new(
        hours: Hours,
        wait_for_window: bool,
        queue: Queue,
        budget: Budget,
        now: Timestamp,
    ) -> Gate {
        let day = hours.local(now).date();
        Gate {
            hours,
            wait_for_window,
            queue,
            max_calls: budget.max_calls,
            deadline: budget.max_duration.map(|d| Instant::now() + d),
            daily_max: budget.daily_max,
            count: Mutex::new(Count {
                day,
                today: budget.today_so_far,
                this_run: 0,
            }),
            halt: Mutex::new(None),
        }
    }

    /// Takes one call from the budget if a call may start at `now`.
    pub fn admit(&self, now: Timestamp) -> Result<(), Halt> {
        if !self.hours.is_open(now) {
            return Err(Halt::OutsideHours {
                opens: self.hours.next_open(now),
            });
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Halt::MaxDuration);
        }
        let mut count = self.count.lock().expect("gate count");
        let day = self.hours.local(now).date();
        if day != count.day {
            count.day = day;
            count.today = 0;
        }
        if let Some(max) = self.max_calls
            && count.this_run >= max
        {
            return Err(Halt::MaxCalls(max));
        }
        if let Some(max) = self.daily_max
            && count.today >= max
        {
            return Err(Halt::DailyMax(max));
        }
        count.this_run += 1;
        count.today += 1;
        Ok(())
    }

    /// Returns a call taken by `admit` that never went out. One taken before midnight is not
    /// given back to the new day, whose count it never was in.
    pub fn give_back(&self) {
        let mut count = self.count.lock().expect("gate count");
        count.this_run = count.this_run.saturating_sub(1);
        if self.hours.local(crate::clock::now()).date() == count.day {
            count.today = count.today.saturating_sub(1);
        }
    }

    /// Closes the gate for the rest of the run; the first reason is kept.
    pub fn close(&self, halt: Halt) {
        let mut slot = self.halt.lock().expect("gate halt");
        if slot.is_none() {
            *slot = Some(halt);
        }
    }

    pub fn closed(&self) -> Option<Halt> {
        self.halt.lock().expect("gate halt").clone()
    }
}
