//! The time stepcall believes it is, in one place so tests can move it.
//!
//! Calling hours, redial spacing and daily caps all depend on "now". In production that is the
//! system clock. A test (or a rehearsal) sets `STEPCALL_NOW` to an RFC 3339 instant, such as
//! `2026-12-01T11:59:58+08:00`: the clock then starts there and runs at normal speed, so a
//! window closing two seconds into a run, or a redial due two hours after yesterday's call, is
//! tested in milliseconds. The simulator reads the same clock.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

pub const NOW_ENV: &str = "STEPCALL_NOW";

static START: OnceLock<Option<(Timestamp, Instant)>> = OnceLock::new();

/// Starts the clock at `at` (from `STEPCALL_NOW`, read by `cli::hiargs`), or at the system's
/// time. Only the first call counts, and it must come before the first `now`.
pub fn start_at(at: Option<Timestamp>) {
    let _ = START.set(at.map(|at| (at, Instant::now())));
}

/// The current instant.
pub fn now() -> Timestamp {
    match START.get_or_init(|| None) {
        Some((at, since)) => at
            .checked_add(SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(*at),
        None => Timestamp::now(),
    }
}

/// An RFC 3339 instant, with or without a zone name.
pub fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    text.parse::<Timestamp>()
        .ok()
        .or_else(|| text.parse::<jiff::Zoned>().ok().map(|z| z.timestamp()))
}

/// How long to wait after `tries` failures in a row: one second, doubling with each, at most
/// `cap`. The dialer's retries, the webhook's rests and the outbox's redeliveries all back off
/// by this one rule.
pub fn backoff(tries: u32, cap: Duration) -> Duration {
    Duration::from_secs(1 << tries.min(20)).min(cap)
}
