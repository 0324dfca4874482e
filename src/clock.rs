//! The time stepcall believes it is, in one place so tests can move it.
//!
//! Calling hours, redial spacing and daily caps all depend on "now". In production that is the
//! system clock. A test (or a rehearsal) sets `STEPCALL_NOW` to an RFC 3339 instant, such as
//! `2026-12-01T11:59:58+08:00`: the clock then starts there and runs at normal speed, so a
//! window closing two seconds into a run, or a redial due two hours after yesterday's call, is
//! tested in milliseconds. The simulator reads the same clock.
//!
//! What people read (exports, log lines in a cron mail) shows an instant one way, `for_people`:
//! in the campaign's zone, to the second, with the offset, so that a row, a log line, a
//! `--since` date and the calling hours all speak of the same day and hour.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

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

/// `at` in `zone`, cut to the second (never rounded up, so a row shown at 09:00:05 is one that
/// `--since 09:00:05` keeps): the zoned time `for_people` writes.
pub fn to_second(at: Timestamp, zone: &TimeZone) -> Zoned {
    let whole = Timestamp::from_second(at.as_second()).unwrap_or(at);
    whole.to_zoned(zone.clone())
}

/// `at` as people read it: `2026-12-02T09:00:05+08:00`. Still RFC 3339, so a program reads it too.
pub fn for_people(at: Timestamp, zone: &TimeZone) -> String {
    to_second(at, zone)
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// A moment as summaries and log messages name it, at a glance: `2026-12-01 11:00
/// Asia/Shanghai`, to the minute, with the zone's name and never an abbreviation such as `CST`
/// (China, or the US Central time?). Rows and timestamps use `for_people`.
pub fn at_a_glance(at: &Zoned) -> String {
    at.strftime("%Y-%m-%d %H:%M %Q").to_string()
}

/// How long to wait after `tries` failures in a row: one second, doubling with each, at most
/// `cap`. The dialer's retries, the webhook's rests and the outbox's redeliveries all back off
/// by this one rule.
pub fn backoff(tries: u32, cap: Duration) -> Duration {
    Duration::from_secs(1 << tries.min(20)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_the_zone_the_second_and_the_offset() {
        let at: Timestamp = "2026-12-02T01:00:05.999999999Z".parse().unwrap();
        let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(for_people(at, &shanghai), "2026-12-02T09:00:05+08:00");
        // Cut, not rounded: the shown second is never later than the instant.
        let before: Timestamp = "2026-12-01T16:59:59.9Z".parse().unwrap();
        assert_eq!(for_people(before, &shanghai), "2026-12-02T00:59:59+08:00");
        // A zone with daylight saving shows the offset in force at that instant.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let summer: Timestamp = "2026-07-01T08:00:00Z".parse().unwrap();
        assert_eq!(for_people(summer, &berlin), "2026-07-01T10:00:00+02:00");
        assert_eq!(for_people(at, &berlin), "2026-12-02T02:00:05+01:00");
    }
}
