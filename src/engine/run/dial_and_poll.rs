//! The step on the network: the dialer, the poller and the webhook's deliveries, running
//! together until the list is done or the run stops, all writing through the one `Writer`.

use super::prepare::Start;
use super::*;

/// Where `--simulate` keeps the calls its simulator accepted: beside the state database,
/// so deleting `demo.db*` starts a rehearsal over.
pub fn simulator_journal(state: &std::path::Path) -> std::path::PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push("-simulator.jsonl");
    name.into()
}

/// Dials and polls until the list is done or the run stops, delivering results to the CRM on
/// the way; everything goes through `writer`.
pub(super) async fn dial_and_poll(
    campaign: &Campaign,
    target: Target,
    mode: Mode,
    writer: Writer,
    stop: Stop,
    Start {
        to_dial,
        to_call,
        gate,
        known,
        outage,
        webhook,
        ..
    }: Start,
    no_wait: bool,
) -> Result<()> {
    let (url, key, poll, _simulator) = match target {
        Target::Simulated => {
            let config = SimConfig {
                latency: Duration::from_millis(5),
                record_delay: Duration::from_millis(300),
                // The built-in simulator's memory: a rehearsal stopped and resumed still gets
                // the results of the calls it made before.
                journal: Some(simulator_journal(&campaign.state_path)),
                ..SimConfig::default()
            };
            let simulator = sim::start("127.0.0.1:0", config).await?;
            tracing::warn!(
                "SIMULATION: no real phone call is made; calls go to the built-in simulator at {}",
                simulator.url()
            );
            let fast = PollPolicy {
                interval: Duration::from_millis(150),
                max_interval: Duration::from_millis(500),
                horizon: campaign.poll.horizon,
            };
            (
                simulator.url(),
                ApiKey::new(sim::DEFAULT_KEY),
                fast,
                Some(simulator),
            )
        }
        Target::Live { base_url, key } => (base_url, key, campaign.poll, None),
    };
    tracing::info!(
        "campaign `{}`: {to_dial} contacts to dial, {} calls awaiting a result",
        campaign.name,
        known.len()
    );
    let client = Arc::new(
        Client::new(&url, key, campaign.timeout).expecting_simulator(mode == Mode::Simulated),
    );
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
    let progress = Arc::new(Progress::new(to_call, to_call - to_dial));
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
            let mut delivery =
                Delivery::new(writer.clone(), w.url, &secret, database_id, w.timeout).map_err(
                    |problem| Error::WebhookSecret {
                        env: w.secret_env.clone(),
                        problem,
                    },
                )?;
            delivery.grace = grace;
            let stop = stop.clone();
            let limit = w.timeout + delivery.grace;
            Some((
                tokio::spawn(async move {
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
                }),
                limit,
            ))
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
            tracing::warn!(
                "the CRM webhook is slow; the results still owed are delivered by the next run"
            );
        }
    }
    ticker.abort();
    progress.finish();
    progress.last_line();
    if given_up > 0 {
        tracing::warn!(
            "{given_up} calls had no result within the poll horizon; run the same command later to collect them"
        );
    }
    Ok(())
}
