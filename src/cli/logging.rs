//! Log output: `tracing` to stderr, stepping around the progress bar.
//!
//! Logs are for people and cron mails, stdout is for results (summaries, exports, JSON), so a
//! script can pipe stdout without log noise. The level comes from `-v`/`-q` or `RUST_LOG`.
//!
//! On a terminal a person watches the lines arrive, so they carry no time. Anywhere else (a
//! cron mail, a log file) a line is read later, so it starts with the time it was written,
//! as the export writes times (`clock::for_people`): stepcall's clock, in the campaign's zone
//! once a command has loaded its campaign (`stamp_in`), in the machine's zone before.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use jiff::tz::TimeZone;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use crate::engine::progress::ACTIVE_BAR;

pub fn init(verbosity: i8) {
    let default = match verbosity {
        i8::MIN..=-1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default},hyper=warn,reqwest=warn,h2=warn,rustls=warn,axum=warn,tower=warn"
        ))
    });
    let terminal = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(StderrAroundBar)
        .with_ansi(terminal)
        .with_target(false);
    let _ = if terminal {
        fmt.without_time().try_init()
    } else {
        fmt.with_timer(PeopleTime).try_init()
    };
}

/// The zone log lines are stamped in; unset until a campaign is loaded.
static ZONE: OnceLock<TimeZone> = OnceLock::new();

/// From now on, log lines carry their time in `zone`, the campaign's. The first call counts.
pub fn stamp_in(zone: &TimeZone) {
    let _ = ZONE.set(zone.clone());
}

struct PeopleTime;

impl FormatTime for PeopleTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let zone = ZONE.get().cloned().unwrap_or_else(TimeZone::system);
        w.write_str(&crate::clock::for_people(crate::clock::now(), &zone))
    }
}

struct StderrAroundBar;

/// Collects one log line and prints it whole, with the bar suspended.
struct LineBuffer(Vec<u8>);

impl Write for LineBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineBuffer {
    fn drop(&mut self) {
        let print = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        let bar = ACTIVE_BAR.lock().ok().and_then(|b| b.clone());
        match bar {
            Some(bar) => bar.suspend(print),
            None => print(),
        }
    }
}

impl<'a> MakeWriter<'a> for StderrAroundBar {
    type Writer = LineBuffer;

    fn make_writer(&'a self) -> LineBuffer {
        LineBuffer(Vec::new())
    }
}
