//! `run`: the whole campaign, resumable at any point, as four named steps: `prepare`,
//! `import` (with `ready`), `dial_and_poll`, `summarise`.
//!
//! The order is the safety argument. Everything that can refuse the campaign (file, list,
//! template, lock, database) is checked before the network is touched; the import is one
//! transaction, so a list that breaks at row 9,000 leaves nothing half-imported; contacts a
//! killed run left `dialing` become `uncertain` before anything is dialled; and only then do the
//! dialer and poller start, sharing the database through one writer thread. A signal or a fatal
//! answer raises `Stop`: no new call starts, calls on the wire get a bounded grace period, and
//! what was committed stays committed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock;
use crate::config::campaign::{Campaign, PollPolicy, Webhook};
use crate::config::secrets::ApiKey;
use crate::engine::dialer::{Dialer, DialerSettings};
use crate::engine::gate::{Budget, Gate, Halt};
use crate::engine::poller::Poller;
use crate::engine::progress::Progress;
use crate::engine::stop::Stop;
use crate::errors::{Error, Result};
use crate::input::plan::Plan;
use crate::output::webhook::Delivery;
use crate::provider::client::Client;
use crate::provider::sim::{self, SimConfig};
use crate::state::machine::{CallState, Queue};
use crate::state::run_lock::RunLock;
use crate::state::writer::Writer;
use crate::state::{Awaiting, ImportSummary, Mode, Run, Store};

mod dial_and_poll;
mod prepare;

use dial_and_poll::dial_and_poll;
use prepare::{Limits, import, prepare, ready};

/// The meta key of the last imported list's digest (`plan::list_digest`).
const LIST_DIGEST: &str = "list_digest";

/// Who receives the calls.
pub enum Target {
    /// The built-in simulator, started in-process with fast timings.
    Simulated,
    Live {
        base_url: String,
        key: ApiKey,
    },
}

pub struct RunSettings {
    pub campaign: Campaign,
    pub target: Target,
    /// The webhook's signing secret, when the campaign has a webhook.
    pub webhook_secret: Option<String>,
    pub redial_uncertain: bool,
    pub no_wait: bool,
    /// Run although the template, phone column or call options changed after calls were made.
    pub accept_changes: bool,
    /// `--max-calls`, `--max-duration`; `limits.daily_max` comes from the campaign.
    pub max_calls: Option<u64>,
    pub max_duration: Option<Duration>,
    /// Outside calling hours, wait for the next window instead of exiting.
    pub wait_for_window: bool,
}

/// How a run ended. What it left behind (counts, redials, what is due next) is read from the
/// database by `output::status`, the one home of those figures for `run` and `status` alike.
pub struct RunReport {
    /// Why dialing stopped before the list was done, if it did.
    pub halt: Option<Halt>,
    /// What ended the run early (a signal, the provider refusing the account, an outage),
    /// after everything up to it was committed: the run's summary is printed, then this.
    pub stopped: Option<Error>,
}

pub fn run(settings: RunSettings) -> Result<RunReport> {
    let RunSettings {
        campaign,
        target,
        webhook_secret,
        redial_uncertain,
        no_wait,
        accept_changes,
        max_calls,
        max_duration,
        wait_for_window,
    } = settings;
    // Signals are watched from the start, so Ctrl-C during the import also ends cleanly.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|cause| Error::WriteFile {
            path: "tokio runtime".into(),
            cause,
        })?;
    let stop = Stop::default();
    {
        let _entered = runtime.enter();
        watch_signals(stop.clone());
    }
    let mode = match &target {
        Target::Simulated => Mode::Simulated,
        Target::Live { base_url, key } => {
            let client = Client::new(base_url, key.clone(), campaign.timeout);
            if runtime.block_on(client.is_simulator()) {
                tracing::warn!(
                    "REHEARSAL: {base_url} is stepcall's simulator, so no real phone call is made and this run is marked simulated"
                );
                Mode::Simulated
            } else {
                Mode::Live
            }
        }
    };
    let (_lock, mut store, list) = prepare(&campaign, mode, accept_changes)?;
    import(&campaign, &mut store, list, redial_uncertain)?;
    let limits = Limits {
        max_calls,
        max_duration,
        wait_for_window,
        no_wait,
    };
    let start = ready(&campaign, &mut store, &limits, webhook_secret)?;
    if let Some(reason) = stop.take_reason() {
        // A signal during the import: everything is committed, nothing was dialled.
        return Ok(RunReport {
            halt: None,
            stopped: Some(reason),
        });
    }
    let gate = start.gate.clone();
    let (writer, db_thread) = Writer::spawn(store);
    let outcome = runtime.block_on(dial_and_poll(
        &campaign,
        target,
        mode,
        writer.clone(),
        stop.clone(),
        start,
        no_wait,
    ));
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(writer);
    db_thread.join().map_err(|_| Error::Internal {
        message: "the database thread panicked".into(),
    })?;
    Ok(RunReport {
        halt: gate.closed(),
        stopped: outcome.err().or_else(|| stop.take_reason()),
    })
}

/// Ctrl-C or SIGTERM: stop starting calls, let the run wind down. A second one exits at once;
/// everything committed is already safe on disk.
/// The handlers are installed before this returns (it must run inside the runtime).
fn watch_signals(stop: Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::spawn(async move {
        let (name, code) = tokio::select! {
            _ = int.recv() => ("Ctrl-C", crate::exit::INTERRUPTED),
            _ = term.recv() => ("SIGTERM", crate::exit::TERMINATED),
        };
        tracing::warn!(
            "{name}: starting no new calls; waiting for the calls in flight to be recorded (press Ctrl-C again to quit at once)"
        );
        stop.raise(Error::Interrupted { signal: name, code });
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        eprintln!("stopped at once; run the same command again to resume");
        std::process::exit(i32::from(code));
    });
}
