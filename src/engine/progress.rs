//! What a person (or a cron log) sees while a run goes on.
//!
//! On a terminal, an `indicatif` line redrawn in place (the whole campaign's contacts dialled,
//! results in, this run's rate in calls per minute, ETA); anywhere else,
//! a plain log line every ten seconds, which is what a cron mail wants. Log lines and the bar
//! share stderr: the log writer in `logging` suspends the bar while it prints, so they never
//! garble each other.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The bar currently on screen, if any, for the log writer to step around.
pub static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    bar: Option<ProgressBar>,
    /// The whole campaign's contacts to call, and those dialled before this run: a resumed
    /// run shows where the campaign stands, not only this run's share.
    total: u64,
    before: u64,
    dialed: AtomicU64,
    results: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new(total: u64, before: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {wide_msg}").expect("a valid template"),
            );
            *ACTIVE_BAR.lock().expect("progress bar slot") = Some(bar.clone());
            bar
        });
        Progress {
            bar,
            total,
            before,
            dialed: AtomicU64::new(0),
            results: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    pub fn dialed(&self) {
        self.dialed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn result(&self) {
        self.results.fetch_add(1, Ordering::Relaxed);
    }

    /// Refreshes the bar, or logs a line when one is due.
    pub fn tick(&self) {
        let line = self.line();
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                let mut last = self.last_line.lock().expect("progress clock");
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    tracing::info!("progress: {line}");
                }
            }
        }
    }

    /// `106/292 dialled, 12 results in, 30.0 calls/min, ETA 4m`: where the whole campaign
    /// stands, at this run's rate, in the unit campaigns set.
    fn line(&self) -> String {
        let dialed = self.dialed.load(Ordering::Relaxed);
        let results = self.results.load(Ordering::Relaxed);
        let rate = calls_per_minute(dialed, self.started.elapsed());
        let left = self.total.saturating_sub(self.before + dialed);
        let eta = match rate {
            _ if left == 0 => String::new(),
            r if r > 0.0 => format!(", ETA {}", minutes((left as f64 / r * 60.0) as u64)),
            _ => String::new(),
        };
        format!(
            "{}/{} dialled, {results} results in, {rate:.1} calls/min{eta}",
            self.before + dialed,
            self.total
        )
    }

    /// Away from a terminal, one last line when the run dialled anyone: a cron log of a run
    /// shorter than ten seconds still says where the campaign stands.
    pub fn last_line(&self) {
        if self.bar.is_none() && self.dialed.load(Ordering::Relaxed) > 0 {
            tracing::info!("progress: {}", self.line());
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *ACTIVE_BAR.lock().expect("progress bar slot") = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn calls_per_minute(calls: u64, elapsed: Duration) -> f64 {
    let minutes = elapsed.as_secs_f64() / 60.0;
    if minutes > 0.0 {
        calls as f64 / minutes
    } else {
        0.0
    }
}

/// `45s`, `4m`, `1h 05m`: as long as it needs to be read at a glance.
fn minutes(seconds: u64) -> String {
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds.div_ceil(60)),
        _ => format!("{}h {:02}m", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_reads_as_calls_per_minute_with_one_decimal() {
        let rate = calls_per_minute(7, Duration::from_secs(20));
        assert_eq!(format!("{rate:.1}"), "21.0");
        assert_eq!(calls_per_minute(3, Duration::ZERO), 0.0);
        assert_eq!(minutes(45), "45s");
        assert_eq!(minutes(200), "4m");
        assert_eq!(minutes(3900), "1h 05m");
    }

    #[test]
    fn a_resumed_run_counts_the_whole_campaign() {
        let progress = Progress {
            bar: None,
            total: 292,
            before: 96,
            dialed: AtomicU64::new(0),
            results: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        };
        for _ in 0..10 {
            progress.dialed();
        }
        let line = progress.line();
        assert!(
            line.starts_with("106/292 dialled, 0 results in, "),
            "{line}"
        );
        assert!(line.contains(" calls/min"), "{line}");
    }
}
