//! What a person (or a cron log) sees while a run goes on.
//!
//! On a terminal, an `indicatif` bar (contacts dialled, results in, rate, ETA); anywhere else,
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
    to_dial: u64,
    dialed: AtomicU64,
    results: AtomicU64,
    started: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    pub fn new(to_dial: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(to_dial), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {pos}/{len} dialled · {msg} · {per_sec} · ETA {eta}",
                )
                .expect("a valid template"),
            );
            *ACTIVE_BAR.lock().expect("progress bar slot") = Some(bar.clone());
            bar
        });
        Progress {
            bar,
            to_dial,
            dialed: AtomicU64::new(0),
            results: AtomicU64::new(0),
            started: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    pub fn dialed(&self) {
        self.dialed.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    pub fn result(&self) {
        self.results.fetch_add(1, Ordering::Relaxed);
    }

    /// Refreshes the bar, or logs a line when one is due.
    pub fn tick(&self) {
        let dialed = self.dialed.load(Ordering::Relaxed);
        let results = self.results.load(Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_message(format!("{results} results in")),
            None => {
                let mut last = self.last_line.lock().expect("progress clock");
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    let minutes = self.started.elapsed().as_secs_f64() / 60.0;
                    let rate = if minutes > 0.0 {
                        dialed as f64 / minutes
                    } else {
                        0.0
                    };
                    tracing::info!(
                        "progress: {dialed}/{} dialled, {results} results in, {rate:.1} calls/min",
                        self.to_dial
                    );
                }
            }
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
