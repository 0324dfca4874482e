//! The time stepcall believes it is, in one place so tests can move it.
//!
//! Calling hours, redial spacing and daily caps all depend on "now". In production that is the
//! system clock. A test (or a rehearsal) sets `STEPCALL_NOW` to an RFC 3339 instant, such as
//! `2026-12-01T11:59:58+08:00`: the clock then starts there and runs at normal speed, so a
//! window closing two seconds into a run, or a redial due two hours after yesterday's call, is
//! tested in milliseconds. The simulator reads the same clock.

use std::sync::OnceLock;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};

pub const NOW_ENV: &str = "STEPCALL_NOW";

static START: OnceLock<Option<(Timestamp, Instant)>> = OnceLock::new();

/// The current instant.
pub fn now() -> Timestamp {
    let start = START.get_or_init(|| {
        let text = std::env::var(NOW_ENV).ok()?;
        let at = parse(&text)?;
        Some((at, Instant::now()))
    });
    match start {
        Some((at, since)) => at
            .checked_add(SignedDuration::try_from(since.elapsed()).unwrap_or(SignedDuration::ZERO))
            .unwrap_or(*at),
        None => Timestamp::now(),
    }
}

fn parse(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    text.parse::<Timestamp>()
        .ok()
        .or_else(|| text.parse::<jiff::Zoned>().ok().map(|z| z.timestamp()))
}
