//! `Pacer`: one call per period, on a fixed schedule, never faster.
//!
//! A rate limiter that restarts its schedule from whenever a caller arrives (GCRA with a burst
//! of one, as governor does) loses the caller's lateness on every call: a timer that wakes a
//! quarter of a millisecond late cost 0.5% of the quota, 6 calls a minute at 20 calls/s. This
//! one keeps the schedule: a caller that comes a little late (up to `TOLERANCE`) is let through
//! and the next slot stays where the schedule puts it. A caller that comes later than that (the
//! run was paused, or had nobody to call) starts a new schedule, so time not used is never
//! made up with a burst. The last two milliseconds of a wait are spent yielding rather than
//! sleeping: tokio's timer rounds to the millisecond and wakes up to two late, which would be
//! lateness again (measured: 0.2 ms lost a call, 1,195 calls instead of 1,199 in a minute).

//!
//! `Window` guards the sends themselves: at most the quota's number of calls in any window of
//! the quota's length. It sits after the intent's commit, whose fsync takes a varying time: a
//! second `Pacer` there would carry every slow commit's delay on to all later calls, while the
//! window lets a delayed call's successors catch up without ever exceeding the quota.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How late a caller may be and still keep the schedule. Two calls are then never closer than
/// `period - TOLERANCE`, and any `n` calls in a row span at least `(n - 1) * period - TOLERANCE`.
const TOLERANCE: Duration = Duration::from_micros(200);
/// Below this, a wait yields instead of sleeping, for precision.
const SPIN: Duration = Duration::from_millis(2);

pub struct Pacer {
    period: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub fn new(period: Duration) -> Pacer {
        Pacer {
            period,
            next: Mutex::new(None),
        }
    }

    /// Waits for the next slot and takes it.
    pub async fn until_ready(&self) {
        loop {
            let now = Instant::now();
            let slot = {
                let mut next = self.next.lock().expect("pacer");
                match *next {
                    Some(slot) if slot > now => slot,
                    slot => {
                        let on_schedule = slot.filter(|&s| s + TOLERANCE >= now).unwrap_or(now);
                        *next = Some(on_schedule + self.period);
                        return;
                    }
                }
            };
            wait_for(slot, now).await;
        }
    }
}

/// At most `calls` sends in any `per`.
pub struct Window {
    calls: usize,
    per: Duration,
    sent: Mutex<VecDeque<Instant>>,
}

impl Window {
    pub fn new(calls: u32, per: Duration) -> Window {
        let calls = (calls as usize).max(1);
        Window {
            calls,
            per,
            sent: Mutex::new(VecDeque::with_capacity(calls.min(1 << 16))),
        }
    }

    /// Waits until a send keeps the window within the quota, and counts it.
    pub async fn until_ready(&self) {
        loop {
            let now = Instant::now();
            let free_at = {
                let mut sent = self.sent.lock().expect("window");
                match sent.front() {
                    Some(&oldest) if sent.len() >= self.calls && oldest + self.per > now => {
                        oldest + self.per
                    }
                    _ => {
                        if sent.len() >= self.calls {
                            sent.pop_front();
                        }
                        sent.push_back(now);
                        return;
                    }
                }
            };
            wait_for(free_at, now).await;
        }
    }
}

/// Sleeps towards `until`, then yields through the last `SPIN`, for precision.
async fn wait_for(until: Instant, now: Instant) {
    if until - now > SPIN {
        tokio::time::sleep_until(until - SPIN).await;
    } else {
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The slot the pacer just gave out (the schedule's time for the call that got it).
    fn last_slot(pacer: &Pacer) -> Instant {
        pacer.next.lock().unwrap().unwrap() - pacer.period
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_never_go_before_their_slot_nor_closer_than_the_period() {
        let pacer = Pacer::new(Duration::from_millis(5));
        let mut slots = Vec::new();
        for _ in 0..100 {
            pacer.until_ready().await;
            let slot = last_slot(&pacer);
            assert!(Instant::now() >= slot, "a call went before its slot");
            slots.push(slot);
        }
        for pair in slots.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(5));
        }
    }

    /// A caller up to `TOLERANCE` late gets its scheduled slot, and the schedule goes on from
    /// there: a limiter that restarted from each late caller lost 0.2 ms a call, 6 calls a
    /// minute at 20 calls/s. A caller later than that starts a new schedule. On tokio's paused
    /// clock, so that the machine's load plays no part.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_slightly_late_caller_keeps_the_schedule_and_a_very_late_one_restarts_it() {
        let period = Duration::from_millis(50);
        let pacer = Pacer::new(period);
        pacer.until_ready().await;
        let first = last_slot(&pacer);
        for k in 1..=40u32 {
            let late = first + period * k + Duration::from_micros(150);
            tokio::time::advance(late - Instant::now()).await;
            pacer.until_ready().await;
            assert_eq!(
                last_slot(&pacer),
                first + period * k,
                "call {k} left the schedule"
            );
        }
        let very_late = first + period * 41 + Duration::from_millis(1);
        tokio::time::advance(very_late - Instant::now()).await;
        pacer.until_ready().await;
        assert_eq!(
            last_slot(&pacer),
            very_late,
            "a new schedule starts from the late caller"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_window_never_holds_more_than_the_quota_but_lets_late_calls_catch_up() {
        let window = Window::new(3, Duration::from_millis(30));
        let mut granted = Vec::new();
        for _ in 0..9 {
            window.until_ready().await;
            granted.push(*window.sent.lock().unwrap().back().unwrap());
        }
        for later in 3..granted.len() {
            assert!(granted[later] - granted[later - 3] >= Duration::from_millis(30));
        }
        // Three calls at once were fine: the quota is per window, not a spacing.
        assert!(granted[2] - granted[0] < Duration::from_millis(20));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn time_not_used_is_not_made_up_with_a_burst() {
        let pacer = Pacer::new(Duration::from_millis(5));
        pacer.until_ready().await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        pacer.until_ready().await;
        let after_idle = Instant::now();
        pacer.until_ready().await;
        // Had the schedule kept its old slots, six would be owed now, and this call would go
        // at once.
        assert!(Instant::now() - after_idle >= Duration::from_millis(4));
    }
}
