//! The dialer: contacts due for a call in, one `initiate_call` each, under the quota and the cap.
//!
//! For every contact, in list order: wait for the rate limiter (a `Pacer`: calls a period
//! apart on a fixed schedule, so no window ever sees more than the quota and none less) and any
//! provider-requested pause, ask the `Gate` (calling hours, run and daily limits), commit the
//! intent (`Store::begin_attempt`, which refuses a contact that is no longer due or is on a
//! do-not-call list), take the quota once more as a window over the sends themselves, send,
//! then commit what came back. Only an answer that proves the request never reached the
//! provider (a 429 without a call id, no connection) sends the contact round again, with the
//! provider's Retry-After or an exponential backoff; the pause applies to every task, since a
//! 429 is about the account, not the number. A number the provider says is called too often is
//! held back alone, and the others dial on at full rate. A semaphore caps the calls in flight.
//!
//! An outage has a bounded cost. Answers that may have placed a call (`uncertain`) are counted
//! in a row, and once there is one, together with the calls in flight, so no more than
//! `MAX_UNCERTAIN_STREAK` contacts (or `concurrency`, if larger) can turn uncertain before the
//! run stops; the stop is noted in the database, and the next
//! run first asks the provider without dialing (`Client::probe`), then dials one contact alone
//! and waits for its answer (`probation`). Nothing here touches SQLite directly: all writes go
//! through the `Writer`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock;
use crate::config::campaign::{CallOptions, Rate};
use crate::engine::gate::{Gate, Halt};
use crate::engine::pacer::{Pacer, Window};
use crate::engine::progress::Progress;
use crate::engine::stop::Stop;
use crate::engine::streak::{MAX_UNCERTAIN_STREAK, Streak};
use crate::errors::Error;
use crate::provider::answer::Dial;
use crate::provider::client::Client;
use crate::provider::wire::InitiateRequest;
use crate::state::writer::Writer;
use crate::state::{Awaiting, Dialable};

/// Tries per contact when the provider keeps refusing for now: enough to ride out a storm of
/// 429s (each try waits as long as the provider asks), bounded so a provider that never
/// recovers stops the run; the contact stays pending for the next one.
const MAX_NOT_SENT_TRIES: u32 = 20;
/// Tries when no connection can be made at all (about a minute of backoff): a provider that is
/// down is not worth waiting for contact after contact.
const MAX_UNREACHABLE_TRIES: u32 = 6;
const BATCH: usize = 256;
/// Calls are paced, and their sends counted over a window, this much wider than the quota
/// (1.5 in a thousand: 1.5 ms over 20 calls at 20 calls/s), so the jitter between here and the
/// provider never puts one call more than the quota into any second the provider counts. A minute at 20 calls/s is
/// then 1,199 calls instead of 1,200.
const RATE_MARGIN: f64 = 0.0015;

pub struct Dialer {
    writer: Writer,
    client: Arc<Client>,
    campaign: String,
    options: CallOptions,
    concurrency: usize,
    stop: Stop,
    progress: Arc<Progress>,
    gate: Arc<Gate>,
    limiter: Pacer,
    /// The quota once more, as a window over the sends themselves (see `dial_one`).
    sending: Window,
    pause: Mutex<Option<Instant>>,
    streak: Mutex<Streak>,
    /// Wakes `dial_all` when a call in flight has been recorded (see `within_outage_budget`).
    settled: Notify,
    /// How long a stopped run waits for requests already on the wire.
    grace: Duration,
    /// How long a number the provider says is called too often waits.
    hold_back: Duration,
    /// The last run stopped because the provider kept failing: the first contact is dialled
    /// alone, and an uncertain answer to it stops this run at once.
    probation: bool,
}

/// The meta key that notes a run stopped by consecutive uncertain answers (see `probation`).
pub const OUTAGE: &str = "outage";

enum Next {
    /// Answered: whatever calls it placed go to the poller.
    Done,
    /// Provably not sent; `connected` is false when no connection could be made at all.
    Retry {
        retry_after: Option<Duration>,
        connected: bool,
    },
}

/// A call counted in flight until its answer is recorded (or it never went out).
struct InFlight<'a>(&'a Dialer);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut streak = self.0.streak.lock().expect("streak");
        streak.in_flight = streak.in_flight.saturating_sub(1);
        drop(streak);
        self.0.settled.notify_waiters();
    }
}

/// What a dialer is handed: where it writes and sends, the campaign's pace and call options,
/// and how it behaves when things go wrong.
pub struct DialerSettings {
    pub writer: Writer,
    pub client: Arc<Client>,
    /// The campaign's name, part of every idempotency key.
    pub campaign: String,
    pub options: CallOptions,
    pub rate: Rate,
    pub concurrency: usize,
    pub stop: Stop,
    pub progress: Arc<Progress>,
    pub gate: Arc<Gate>,
    /// How long a stopped run waits for requests already on the wire.
    pub grace: Duration,
    /// How long a number the provider says is called too often waits.
    pub hold_back: Duration,
    /// The last run stopped because the provider kept failing: the first contact is dialled
    /// alone, and an uncertain answer to it stops this run at once.
    pub probation: bool,
}

impl Dialer {
    pub fn new(settings: DialerSettings) -> Dialer {
        let DialerSettings {
            writer,
            client,
            campaign,
            options,
            rate,
            concurrency,
            stop,
            progress,
            gate,
            grace,
            hold_back,
            probation,
        } = settings;
        let period = (rate.per / rate.calls.max(1)).mul_f64(1.0 + RATE_MARGIN);
        Dialer {
            writer,
            client,
            campaign,
            options,
            concurrency,
            stop,
            progress,
            gate,
            limiter: Pacer::new(period),
            sending: Window::new(rate.calls, rate.per.mul_f64(1.0 + RATE_MARGIN)),
            pause: Mutex::new(None),
            streak: Mutex::new(Streak::default()),
            settled: Notify::new(),
            grace,
            hold_back,
            probation,
        }
    }

    /// Dials every contact that may be dialled now, once, until the list ends or the gate
    /// closes. Accepted calls go to `calls` for the poller.
    pub async fn dial_all(self: Arc<Self>, calls: mpsc::UnboundedSender<Awaiting>) {
        let slots = Arc::new(Semaphore::new(self.concurrency));
        let mut tasks = JoinSet::new();
        let mut after = 0;
        let mut on_probation = self.probation;
        'list: loop {
            let queue = self.gate.queue.clone();
            let now = clock::now().as_second();
            let batch = match self
                .writer
                .with(move |s| s.dialable_after(after, BATCH, &queue, now))
                .await
            {
                Ok(batch) => batch,
                Err(e) => {
                    self.stop.raise(e);
                    break;
                }
            };
            if batch.is_empty() {
                break;
            }
            for contact in batch {
                after = contact.contact_id;
                if self.gate.closed().is_some() {
                    break 'list;
                }
                let slot = tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
                    () = self.stop.raised() => break 'list,
                };
                if !self.within_outage_budget().await {
                    break 'list;
                }
                // The first turn is taken here, in list order; only retries wait in the task.
                if !self.wait_turn().await || !self.admit().await {
                    break 'list;
                }
                self.streak.lock().expect("streak").in_flight += 1;
                if on_probation {
                    // One contact alone, its answer awaited before anyone else is dialled.
                    let outcome = self.dial_one(contact, &calls).await;
                    drop(slot);
                    match outcome {
                        None => {}
                        Some(Dial::Uncertain { reason, .. }) => {
                            self.stop.raise(Error::ProviderUnavailable {
                                message: format!(
                                    "the last run stopped because the provider kept failing, and the first call of this one may or may not have been placed too ({reason}); stopping at once"
                                ),
                            });
                            break 'list;
                        }
                        Some(_) => {
                            on_probation = false;
                            tracing::info!("the provider answers again; dialing on");
                            if let Err(e) = self.writer.with(|s| s.clear_meta(OUTAGE)).await {
                                self.stop.raise(e);
                                break 'list;
                            }
                        }
                    }
                    continue;
                }
                let (me, calls) = (self.clone(), calls.clone());
                tasks.spawn(async move {
                    me.dial_one(contact, &calls).await;
                    drop(slot);
                });
                while tasks.try_join_next().is_some() {}
            }
        }
        drop(calls);
        let drain = async { while tasks.join_next().await.is_some() {} };
        if self.stop.is_raised() {
            if tokio::time::timeout(self.grace, drain).await.is_err() {
                tracing::warn!(
                    "some requests were still on the wire after {:?}; those contacts will be `uncertain`",
                    self.grace
                );
            }
        } else {
            drain.await;
        }
    }

    /// Once an answer in a row may have placed a call, waits until one more call could not
    /// take that count past `MAX_UNCERTAIN_STREAK`, even if it and every call in flight came
    /// back uncertain; false if the run is stopping. While answers are clean, all
    /// `concurrency` calls may be in flight: so an outage costs at most the larger of the two
    /// (the calls on the wire when it began cannot be called back).
    async fn within_outage_budget(&self) -> bool {
        loop {
            let settled = self.settled.notified();
            {
                let streak = self.streak.lock().expect("streak");
                if streak.uncertain == 0
                    || streak.uncertain + streak.in_flight < MAX_UNCERTAIN_STREAK
                {
                    return !self.stop.is_raised();
                }
            }
            tokio::select! {
                () = settled => {}
                () = self.stop.raised() => return false,
            }
        }
    }

    /// Waits for the quota and any pause; false if the run is stopping.
    async fn wait_turn(&self) -> bool {
        loop {
            let until = *self.pause.lock().expect("pause");
            match until {
                Some(t) if t > Instant::now() => tokio::select! {
                    () = tokio::time::sleep_until(t) => {}
                    () = self.stop.raised() => return false,
                },
                _ => break,
            }
        }
        tokio::select! {
            () = self.limiter.until_ready() => !self.stop.is_raised(),
            () = self.stop.raised() => false,
        }
    }

    /// Asks the gate whether a call may start now. Outside calling hours with
    /// `--wait-for-window`, waits for the next window; otherwise closes the gate.
    async fn admit(&self) -> bool {
        loop {
            match self.gate.admit(clock::now()) {
                Ok(()) => return true,
                Err(Halt::OutsideHours { opens: Some(opens) }) if self.gate.wait_for_window => {
                    let wait = opens
                        .duration_since(clock::now())
                        .unsigned_abs()
                        .max(Duration::from_millis(10));
                    if self.gate.closed().is_none() {
                        tracing::info!(
                            "outside calling hours; waiting until {} for the next window",
                            crate::clock::at_a_glance(&self.gate.hours.local(opens))
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stop.raised() => return false,
                    }
                }
                Err(halt) => {
                    self.gate.close(halt);
                    return false;
                }
            }
        }
    }

    fn pause_for(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pause = self.pause.lock().expect("pause");
        if pause.is_none_or(|p| p < until) {
            *pause = Some(until);
        }
    }

    /// Dials one contact (counted in flight by the caller) until its request is answered, or
    /// provably refused too often. Returns what the last request came to, or `None` if none
    /// went out.
    async fn dial_one(
        &self,
        contact: Dialable,
        calls: &mpsc::UnboundedSender<Awaiting>,
    ) -> Option<Dial> {
        let _in_flight = InFlight(self);
        let request = InitiateRequest {
            phones: contact.phone.clone(),
            user_requirement: Some(contact.requirement.clone()),
            options: self.options.clone(),
        };
        let body = serde_json::to_string(&request).expect("a request serialises");
        let who = crate::input::phone::mask(&contact.phone);
        let mut refused = 0;
        while refused < MAX_NOT_SENT_TRIES {
            // The first turn was taken by `dial_all`; a retry waits for its own.
            if refused > 0 && (!self.wait_turn().await || !self.admit().await) {
                return None;
            }
            let (campaign, body, id) = (self.campaign.clone(), body.clone(), contact.contact_id);
            let (queue, now) = (self.gate.queue.clone(), clock::now().as_second());
            let intent = match self
                .writer
                .with(move |s| s.begin_attempt(id, &campaign, &body, &queue, now))
                .await
            {
                Ok(Some(intent)) => intent,
                Ok(None) => {
                    self.gate.give_back();
                    return None;
                }
                Err(e) => {
                    self.gate.give_back();
                    self.stop.raise(e);
                    return None;
                }
            };
            // Writing the intent takes a varying time (an fsync), so calls admitted a period
            // apart could leave closer together; the window holds the sends themselves to the
            // quota. It waits only for that jitter, since the pacer set the pace.
            tokio::select! {
                () = self.sending.until_ready() => {}
                () = self.stop.raised() => {}
            }
            if self.stop.is_raised() {
                // The stop came while the intent was being written: nothing was sent.
                let dial = not_sent("the run stopped before this call was sent");
                let _ = self
                    .writer
                    .with(move |s| s.record_dial(intent.attempt_id, &dial, None))
                    .await;
                self.gate.give_back();
                return None;
            }
            if !self.gate.hours.is_open(clock::now()) {
                // Admitted inside the window, but writing the intent ran past its close (a busy
                // disk): a call starts inside the hours or not at all.
                let dial = not_sent("the calling window closed before this call was sent");
                if let Err(e) = self
                    .writer
                    .with(move |s| s.record_dial(intent.attempt_id, &dial, None))
                    .await
                {
                    self.stop.raise(e);
                    return None;
                }
                self.gate.give_back();
                if !self.wait_turn().await || !self.admit().await {
                    return None;
                }
                continue;
            }
            tracing::debug!("dialling {who} (attempt {})", intent.number);
            let mut dial = self
                .client
                .initiate(&request, &intent.idempotency_key)
                .await;
            let (next, not_before) = self.act_on(&mut dial, &who);
            let streak_stop = self.streak.lock().expect("streak").note(&dial);
            let call_ids = match &dial {
                Dial::Accepted { call_ids, .. } => call_ids.join(", "),
                _ => String::new(),
            };
            let (placed, dial) = match self
                .writer
                .with(move |s| {
                    s.record_dial(intent.attempt_id, &dial, not_before)
                        .map(|placed| (placed, dial))
                })
                .await
            {
                Ok(recorded) => recorded,
                Err(e) => {
                    if !call_ids.is_empty() {
                        // The database refused the write; the log is the last place this id lives.
                        tracing::error!(
                            "call {call_ids} to {who} was placed but could not be recorded: {e}"
                        );
                    }
                    self.stop.raise(e);
                    return None;
                }
            };
            if let Some(error) = streak_stop {
                if let Dial::Uncertain { .. } = dial {
                    // The next run asks the provider before dialing again.
                    let note = error.to_string();
                    let _ = self.writer.with(move |s| s.set_meta(OUTAGE, &note)).await;
                }
                self.stop.raise(error);
            }
            match next {
                Next::Done => {
                    self.progress.dialed();
                    for call in placed {
                        let _ = calls.send(call);
                    }
                    return Some(dial);
                }
                Next::Retry {
                    retry_after,
                    connected,
                } => {
                    self.gate.give_back();
                    refused += 1;
                    if !connected && refused >= MAX_UNREACHABLE_TRIES {
                        break;
                    }
                    let backoff = clock::backoff(refused - 1, Duration::from_secs(60));
                    self.pause_for(retry_after.unwrap_or(backoff));
                }
            }
        }
        self.stop.raise(Error::ProviderUnavailable {
            message: format!("{who} was refused {refused} times in a row; stopping the run"),
        });
        None
    }
    /// Acts on the provider's answer before it is recorded: raises the stop it carries (before
    /// the record is written, so no other task starts a call while this one waits for the
    /// disk), slows down, holds a throttled number back. Returns what this contact needs next,
    /// and until when a throttled one waits (Unix seconds).
    fn act_on(&self, dial: &mut Dial, who: &str) -> (Next, Option<i64>) {
        match dial {
            Dial::Accepted {
                call_ids,
                slow_down,
                stop,
                ..
            } => {
                if let Some(error) = stop.take() {
                    self.stop.raise(error);
                }
                if let Some(wait) = *slow_down {
                    tracing::info!(
                        "{who}: the provider answered 429 and placed the call anyway; slowing down"
                    );
                    self.pause_for(wait);
                }
                if call_ids.len() > 1 {
                    tracing::warn!(
                        "{who}: the provider placed {} calls for one request; keeping and polling every one",
                        call_ids.len()
                    );
                }
                (Next::Done, None)
            }
            Dial::NotSent {
                reason,
                retry_after,
                answer,
            } => {
                tracing::info!("{who}: {reason}; will try again");
                let next = Next::Retry {
                    retry_after: *retry_after,
                    connected: answer.is_some(),
                };
                (next, None)
            }
            Dial::Throttled { reason, .. } => {
                let until = clock::now().as_second() + self.hold_back.as_secs() as i64;
                tracing::warn!(
                    "{who}: {reason}; this contact waits {}, the others dial on",
                    crate::config::duration::describe(self.hold_back)
                );
                self.gate.give_back();
                let local = self
                    .gate
                    .hours
                    .local(jiff::Timestamp::from_second(until).unwrap_or(clock::now()));
                *reason = format!(
                    "{reason}; held back until {}",
                    crate::clock::at_a_glance(&local)
                );
                (Next::Done, Some(until))
            }
            Dial::Uncertain { reason, stop, .. } => {
                if let Some(error) = stop.take() {
                    self.stop.raise(error);
                }
                tracing::warn!(
                    "{who} is uncertain: {reason}; it will not be dialled again automatically"
                );
                (Next::Done, None)
            }
            Dial::Rejected { reason, .. } => {
                tracing::warn!("{who} was rejected by the provider: {reason}");
                (Next::Done, None)
            }
            Dial::Fatal { .. } => {
                // Nothing was placed: recorded as not sent, with the error as its reason.
                let Dial::Fatal { error, answer } = std::mem::replace(dial, not_sent("")) else {
                    unreachable!("matched above")
                };
                *dial = Dial::NotSent {
                    reason: error.to_string(),
                    retry_after: None,
                    answer,
                };
                self.stop.raise(error);
                self.gate.give_back();
                (Next::Done, None)
            }
        }
    }
}

/// A request that never left: the contact is pending again.
fn not_sent(reason: &str) -> Dial {
    Dial::NotSent {
        reason: reason.into(),
        retry_after: None,
        answer: None,
    }
}
