//! The steps before the network: `prepare` (everything that can refuse the campaign), `import`
//! (the lists, in one transaction each, then recovery of a killed run's intents) and `ready`
//! (the gate, the calls still awaiting a result, the webhook's outbox).

use super::*;

/// The limits a run's flags set (`--max-calls`, `--max-duration`, `--wait-for-window`,
/// `--no-wait`).
pub(super) struct Limits {
    pub(super) max_calls: Option<u64>,
    pub(super) max_duration: Option<Duration>,
    pub(super) wait_for_window: bool,
    pub(super) no_wait: bool,
}

/// What the import takes from `prepare`: the list's digest and plan, the settings it is
/// judged under, and how they differ from the last run's.
pub(super) struct List {
    pub(super) digest: String,
    pub(super) plan: Plan,
    pub(super) settings: serde_json::Value,
    pub(super) changes: Vec<String>,
}

/// Everything that can refuse the campaign, checked before anything is written: the list
/// (its plan), the lock, the database (behind an earlier run's intents, or of the other mode),
/// and settings changed since calls were made.
pub(super) fn prepare(
    campaign: &Campaign,
    mode: Mode,
    accept_changes: bool,
) -> Result<(RunLock, Store, List)> {
    // Taken before anything reads the list: if the file changes after this, the digest
    // recorded is the old content's, and the next run imports again.
    let digest = crate::input::plan::list_digest(campaign)?;
    let plan = Plan::open(campaign)?;
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
    Ok((
        lock,
        store,
        List {
            digest,
            plan,
            settings,
            changes,
        },
    ))
}

/// The do-not-call lists, then the contact list in one transaction (skipped when nothing
/// changed), then the contacts a killed run left `dialing` made `uncertain`.
pub(super) fn import(
    campaign: &Campaign,
    store: &mut Store,
    List {
        digest,
        plan,
        settings,
        changes,
    }: List,
    redial_uncertain: bool,
) -> Result<()> {
    for list in &campaign.suppress {
        let numbers = crate::input::suppress::read_list(list, &campaign.phone_column)?;
        let added = store.suppress(&numbers, &list.display().to_string())?;
        if added > 0 {
            tracing::info!(
                "{}: {} added to the do-not-call list",
                list.display(),
                crate::state::numbers(added)
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
            crate::input::plan::fingerprints(campaign)?
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
    Ok(())
}

/// What the dialer and the poller start from.
pub(super) struct Start {
    pub(super) to_dial: u64,
    /// The campaign's contacts to call, dialled before or not (`Counts::to_call`).
    pub(super) to_call: u64,
    pub(super) gate: Arc<Gate>,
    /// Calls placed by earlier runs whose result is not in yet.
    pub(super) known: Vec<Awaiting>,
    /// Why the last run stopped, if the provider kept failing.
    pub(super) outage: Option<String>,
    /// The webhook, its secret and the database's id, when results are owed to a CRM.
    pub(super) webhook: Option<(Webhook, String, String)>,
}

/// The gate (hours, budget, today's calls so far), the calls still awaiting a result, and the
/// webhook's outbox switched on.
pub(super) fn ready(
    campaign: &Campaign,
    store: &mut Store,
    limits: &Limits,
    webhook_secret: Option<String>,
) -> Result<Start> {
    let counts = store.counts()?;
    let to_dial = counts.get(CallState::Pending);
    let to_call = counts.to_call();
    let queue = Queue::from(&campaign.redial);
    let started = clock::now();
    let (day_start, day_end) = campaign.hours.day_bounds(started);
    let budget = Budget {
        max_calls: limits.max_calls,
        max_duration: limits.max_duration,
        daily_max: campaign.limits.daily_max.map(u64::from),
        today_so_far: store.calls_started_between(day_start, day_end)?,
    };
    let gate = Arc::new(Gate::new(
        campaign.hours.clone(),
        limits.wait_for_window,
        queue,
        budget,
        started,
    ));
    let known = if limits.no_wait {
        Vec::new()
    } else {
        store.awaiting()?
    };
    let outage = store.meta(crate::engine::dialer::OUTAGE)?;

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
    Ok(Start {
        to_dial,
        to_call,
        gate,
        known,
        outage,
        webhook,
    })
}
