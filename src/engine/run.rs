//! `run`: import, recover, dial, poll, summarise: the whole campaign, resumable at any point.
//!
//! The order is the safety argument. Everything that can refuse the campaign (file, list,
//! template, lock, database) is checked before the network is touched; the import is one
//! transaction, so a list that breaks at row 9,000 leaves nothing half-imported; contacts a
//! killed run left `dialing` become `uncertain` before anything is dialled; and only then do the
//! dialer and poller start, sharing the database through one writer thread. A signal or a fatal
//! answer raises `Stop`: no new call starts, calls on the wire get a bounded grace period, and
//! what was committed stays committed.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock;
use crate::config::campaign::{Campaign, PollPolicy};
use crate::config::hours::Hours;
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
use crate::state::machine::{CallState, Counts, Queue};
use crate::state::run_lock::RunLock;
use crate::state::writer::Writer;
use crate::state::{ImportSummary, Mode, Run, Store};
use jiff::Timestamp;

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

pub struct RunReport {
    pub campaign: String,
    pub database: PathBuf,
    pub simulated: bool,
    pub counts: Counts,
    /// Why dialing stopped before the list was done, if it did.
    pub halt: Option<Halt>,
    /// Contacts waiting for a redial.
    pub redials_waiting: u64,
    /// Pending contacts the provider asked to call less often, waiting for their time.
    pub held_back: u64,
    /// Contacts the provider placed several calls to for one request.
    pub several_calls: u64,
    /// When the next call could be made (a window, a redial, tomorrow's quota), if any is owed.
    pub next_due: Option<Timestamp>,
    /// Results the CRM webhook has not accepted yet.
    pub webhook_backlog: u64,
    pub hours: Hours,
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
    let mode = match target {
        Target::Simulated => Mode::Simulated,
        Target::Live { .. } => Mode::Live,
    };
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
    // Taken before anything reads the list: if the file changes after this, the digest
    // recorded is the old content's, and the next run imports again.
    let digest = crate::input::plan::list_digest(&campaign)?;
    let plan = Plan::open(&campaign)?;
    let lock = RunLock::acquire(&campaign.state_path)?;
    let mut store = Store::open(&campaign.state_path, true)?;
    // A database behind what an earlier run committed has lost intents (a `-wal` deleted after
    // a crash): dialing from it could ring those people again.
    let highest = store.highest_attempt()?;
    if let Some(recorded) = lock.recorded_intent()
        && recorded > highest
    {
        return Err(Error::StateBehind {
            path: campaign.state_path.clone(),
            lock: lock.path().to_path_buf(),
            recorded,
            found: highest,
        });
    }
    store.start_run(Run::new(lock.run_id().to_string(), lock.intent_log()?));
    if highest > 0 {
        // Noted now too, so a database rolled back before this run's first commit is still
        // caught next time.
        lock.intent_log()?.record(highest);
    }
    store.claim(&campaign.name, mode)?;
    let mut settings = serde_json::json!({
        "user_requirement": campaign.user_requirement,
        "phone_column": campaign.phone_column,
        "call_options": campaign.call_options,
    });
    if campaign.limits.max_requirement_chars
        != crate::config::campaign::DEFAULT_MAX_REQUIREMENT_CHARS
    {
        // Only when set, so databases made before the limit existed see no change.
        settings["max_requirement_chars"] = campaign.limits.max_requirement_chars.into();
    }
    let (changes, dialled) = store.settings_changes(&settings)?;
    if dialled && !changes.is_empty() {
        if !accept_changes {
            return Err(Error::CampaignChanged {
                path: campaign.path.clone(),
                changes: changes.join("; "),
            });
        }
        tracing::warn!(
            "--accept-changes: contacts not dialled yet get the new settings ({})",
            changes.join("; ")
        );
    }
    for list in &campaign.suppress {
        let numbers = crate::input::suppress::read_list(list, &campaign.phone_column)?;
        let added = store.suppress(&numbers, &list.display().to_string())?;
        if added > 0 {
            tracing::info!(
                "{}: {added} numbers added to the do-not-call list",
                list.display()
            );
        }
    }
    let unchanged =
        changes.is_empty() && store.meta(LIST_DIGEST)?.as_deref() == Some(digest.as_str());
    let imported = if unchanged {
        tracing::debug!(
            "{} is unchanged since the last import",
            campaign.contacts.display()
        );
        ImportSummary {
            known_rows: store.contact_count()?,
            ..ImportSummary::default()
        }
    } else {
        // Which known rows are still listed matters only when there are known rows.
        let listed = if store.contact_count()? == 0 {
            Vec::new()
        } else {
            crate::input::plan::fingerprints(&campaign)?
        };
        let headers = plan.headers().to_vec();
        let rows = crate::input::plan::judge_in_background(plan);
        store.import(&headers, rows, &listed, !changes.is_empty())?
    };
    if imported.removed > 0 {
        tracing::warn!(
            "{} contacts not dialled yet are no longer in {} and will not be dialled (`removed`)",
            imported.removed,
            campaign.contacts.display()
        );
    }
    // Recorded after the import commits: if the import fails, the next run still sees the
    // change and judges the pending contacts again.
    store.save_settings(&settings)?;
    store.set_meta(LIST_DIGEST, &digest)?;
    tracing::info!(
        "{}: {} new rows imported ({} to dial), {} already known",
        campaign.contacts.display(),
        imported.new_rows,
        imported.new_pending,
        imported.known_rows
    );
    let recovered = store.recover_interrupted()?;
    if recovered > 0 {
        tracing::warn!(
            "{recovered} contacts were being dialled when the last run stopped; they are now `uncertain` and will not be dialled again (see `run --redial-uncertain`)"
        );
    }
    if redial_uncertain {
        let n = store.requeue_uncertain()?;
        if n > 0 {
            tracing::warn!(
                "--redial-uncertain: {n} uncertain contacts will be dialled again; some of them may have been rung already"
            );
        }
    }
    let to_dial = store.counts()?.get(CallState::Pending);
    let queue = Queue::from(&campaign.redial);
    let started = clock::now();
    let (day_start, day_end) = day_bounds(&campaign.hours, started);
    let budget = Budget {
        max_calls,
        max_duration,
        daily_max: campaign.limits.daily_max.map(u64::from),
        today_so_far: store.calls_started_between(day_start, day_end)?,
    };
    let gate = Arc::new(Gate::new(
        campaign.hours.clone(),
        wait_for_window,
        queue.clone(),
        budget,
        started,
    ));
    let known = if no_wait {
        Vec::new()
    } else {
        store.awaiting()?
    };
    let outage = store.meta(crate::engine::dialer::OUTAGE)?;

    if let Some(reason) = stop.take_reason() {
        // A signal during the import: everything is committed, nothing was dialled.
        return Err(reason);
    }
    let webhook = match &campaign.webhook {
        None => None,
        Some(w) => {
            let secret = webhook_secret.ok_or_else(|| Error::Internal {
                message: "the campaign has a webhook, and its secret was not read".into(),
            })?;
            store.enable_outbox();
            let database_id = store.meta("database_id")?.unwrap_or_default();
            Some((w.clone(), secret, database_id))
        }
    };
    let (writer, db_thread) = Writer::spawn(store);
    let outcome = runtime.block_on(async {
        let (url, key, poll, _simulator) = match target {
            Target::Simulated => {
                let config = SimConfig {
                    latency: Duration::from_millis(5),
                    record_delay: Duration::from_millis(300),
                    ..SimConfig::default()
                };
                let simulator = sim::start("127.0.0.1:0", config).await?;
                tracing::warn!("SIMULATION: no real phone call is made; calls go to the built-in simulator at {}", simulator.url());
                let fast = PollPolicy {
                    interval: Duration::from_millis(150),
                    max_interval: Duration::from_millis(500),
                    horizon: campaign.poll.horizon,
                };
                (simulator.url(), ApiKey::new(sim::DEFAULT_KEY), fast, Some(simulator))
            }
            Target::Live { base_url, key } => (base_url, key, campaign.poll, None),
        };
        tracing::info!("campaign `{}`: {to_dial} contacts to dial, {} calls awaiting a result", campaign.name, known.len());
        let client = Arc::new(Client::new(&url, key, campaign.timeout));
        if let Some(outage) = &outage {
            // The last run stopped for answers that may have placed calls: ask first, without
            // dialing, whether the provider answers at all.
            client.probe().await.map_err(|reason| Error::ProviderUnavailable {
                message: format!(
                    "the last run stopped because {outage}, and the provider still does not answer ({reason}); nothing was dialled"
                ),
            })?;
            tracing::warn!(
                "the last run stopped because the provider kept failing; it answers again, so one call goes out alone first"
            );
        }
        let progress = Arc::new(Progress::new(to_dial));
        let ticker = {
            let progress = progress.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    progress.tick();
                }
            })
        };
        let grace = crate::engine::stop::GRACE.max(campaign.timeout + Duration::from_secs(2));
        let dialer = Dialer::new(DialerSettings {
            writer: writer.clone(),
            client: client.clone(),
            campaign: campaign.name.clone(),
            options: campaign.call_options.clone(),
            rate: campaign.limits.rate,
            concurrency: campaign.limits.concurrency as usize,
            stop: stop.clone(),
            progress: progress.clone(),
            gate: gate.clone(),
            grace,
            hold_back: campaign.hold_back,
            probation: outage.is_some(),
        });
        let dialer = Arc::new(dialer);
        // Results owed to the CRM go out while the run goes on, and once more at its end.
        let (delivered_all, mut finishing) = tokio::sync::watch::channel(false);
        let delivering = match webhook {
            None => None,
            Some((w, secret, database_id)) => {
                let mut delivery = Delivery::new(writer.clone(), w.url, &secret, database_id, w.timeout)
                    .map_err(|problem| Error::WebhookSecret { env: w.secret_env.clone(), problem })?;
                delivery.grace = grace;
                let stop = stop.clone();
                let limit = w.timeout + delivery.grace;
                Some((tokio::spawn(async move {
                    loop {
                        let last = *finishing.borrow();
                        if let Err(e) = delivery.pass(&stop).await {
                            stop.raise(e);
                            return;
                        }
                        if last || stop.is_raised() {
                            return;
                        }
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = finishing.changed() => {}
                            () = stop.raised() => return,
                        }
                    }
                }), limit))
            }
        };
        let (calls_tx, calls_rx) = mpsc::unbounded_channel();
        let dialing = tokio::spawn(dialer.dial_all(calls_tx));
        let given_up = if no_wait {
            drop(calls_rx);
            0
        } else {
            let poller = Poller {
                writer: writer.clone(),
                client,
                policy: poll,
                concurrency: campaign.limits.concurrency.max(4) as usize,
                stop: stop.clone(),
                progress: progress.clone(),
                outcomes: Arc::new(campaign.outcomes.clone()),
                statuses: Arc::new(campaign.statuses.clone()),
            };
            poller.poll_all(known, calls_rx).await
        };
        let _ = dialing.await;
        delivered_all.send_replace(true);
        if let Some((mut task, limit)) = delivering {
            // The last deliveries get one timeout and the grace; what is left stays owed.
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
                tracing::warn!("the CRM webhook is slow; the results still owed are delivered by the next run");
            }
        }
        ticker.abort();
        progress.finish();
        if given_up > 0 {
            tracing::warn!("{given_up} calls had no result within the poll horizon; run the same command later to collect them");
        }
        Ok::<(), Error>(())
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(writer);
    let store = db_thread.join().map_err(|_| Error::Internal {
        message: "the database thread panicked".into(),
    })?;
    outcome?;
    if let Some(reason) = stop.take_reason() {
        return Err(reason);
    }
    let halt = gate.closed();
    let counts = store.counts()?;
    let webhook_backlog = store.outbox_backlog()?;
    let pending = counts.get(CallState::Pending);
    let (redials_waiting, redial_due) = store.redials_waiting(&queue)?;
    let now = clock::now();
    let (held_back, held_due) = store.held_back(now.as_second())?;
    let several_calls = store.several_calls()?;
    let dial_due = (pending > held_back).then(|| match &halt {
        Some(Halt::OutsideHours { opens }) => *opens,
        Some(Halt::DailyMax(_)) => {
            let (_, tomorrow) = day_bounds(&campaign.hours, now);
            campaign
                .hours
                .next_open(Timestamp::from_second(tomorrow).unwrap_or(now))
        }
        _ => campaign.hours.next_open(now),
    });
    let [redial_due, held_due] = [redial_due, held_due].map(|due| {
        due.and_then(|t| Timestamp::from_second(t).ok())
            .and_then(|t| campaign.hours.next_open(t.max(now)))
    });
    let next_due = [dial_due.flatten(), redial_due, held_due]
        .into_iter()
        .flatten()
        .min();
    Ok(RunReport {
        campaign: campaign.name.clone(),
        database: campaign.state_path.clone(),
        simulated: mode == Mode::Simulated,
        counts,
        halt,
        redials_waiting,
        held_back,
        several_calls,
        next_due,
        webhook_backlog,
        hours: campaign.hours.clone(),
    })
}

/// The calendar day around `at` in the campaign's zone, as Unix seconds `[start, end)`.
pub fn day_bounds(hours: &Hours, at: Timestamp) -> (i64, i64) {
    let local = hours.local(at);
    let start = local.start_of_day().map(|z| z.timestamp()).unwrap_or(at);
    let end = local
        .date()
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(hours.zone().clone()).ok())
        .map(|z| z.timestamp())
        .unwrap_or(at);
    (start.as_second(), end.as_second())
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
