//! The poller: asks `search_callinfo` about every call that has an id and no result.
//!
//! Records can take minutes to appear, so each call is asked first after `poll.interval`, then
//! after twice that, then each time after as long again as it has waited so far (5, 15, 30,
//! 60 s with the defaults), the spacing capped at `poll.max_interval`. With records ready 5 to
//! 60 s after the call, that is under 3.4 polls per call on average, and a ready record waits at
//! most as long as the call had already taken. A poll that fails (timeout, 5xx, 429, bad JSON)
//! is simply asked again later: the call id is already on disk, nothing can lose it. So is one
//! whose answer names another call (its `call_id` or `phones`): it is stored raw, never applied
//! to this call, and a warning says so. After
//! `poll.horizon` in one run a call is left `dialed` and the next run picks it up again. Every
//! answer, ready or not, is stored raw before it is interpreted.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::campaign::PollPolicy;
use crate::engine::progress::Progress;
use crate::engine::stop::Stop;
use crate::provider::answer::Poll;
use crate::provider::client::Client;
use crate::provider::wire::{Record, StatusMap};
use crate::state::Awaiting;
use crate::state::writer::Writer;

pub struct Poller {
    pub writer: Writer,
    pub client: Arc<Client>,
    pub policy: PollPolicy,
    pub concurrency: usize,
    pub stop: Stop,
    pub progress: Arc<Progress>,
    /// The campaign's outcome tags, applied to each transcript as it arrives.
    pub outcomes: Arc<crate::config::tags::Rules>,
    /// The campaign's `status_map:`, read before the built-in table.
    pub statuses: Arc<StatusMap>,
}

struct Tracked {
    call_id: String,
    phone: String,
    since: Instant,
}

impl Poller {
    /// Polls `known` calls at once and every call that arrives on `calls`, until all have a
    /// result (or reached the horizon) and `calls` is closed. Returns how many were given up.
    pub async fn poll_all(
        self,
        known: Vec<Awaiting>,
        mut calls: mpsc::UnboundedReceiver<Awaiting>,
    ) -> u64 {
        let mut due: BinaryHeap<Reverse<(Instant, i64)>> = BinaryHeap::new();
        let mut tracked: HashMap<i64, Tracked> = HashMap::new();
        let mut in_flight: JoinSet<(i64, Poll)> = JoinSet::new();
        let mut open = true;
        let mut given_up = 0;
        let now = Instant::now();
        for call in known {
            due.push(Reverse((now, call.attempt_id)));
            tracked.insert(
                call.attempt_id,
                Tracked {
                    call_id: call.call_id,
                    phone: call.phone,
                    since: now,
                },
            );
        }
        loop {
            if self.stop.is_raised() || (!open && due.is_empty() && in_flight.is_empty()) {
                break;
            }
            let next = due.peek().map(|Reverse((at, _))| *at);
            let may_start = next.is_some() && in_flight.len() < self.concurrency;
            tokio::select! {
                () = self.stop.raised() => break,
                call = calls.recv(), if open => match call {
                    Some(call) => {
                        let now = Instant::now();
                        due.push(Reverse((now + self.policy.interval, call.attempt_id)));
                        tracked.insert(call.attempt_id, Tracked { call_id: call.call_id, phone: call.phone, since: now });
                    }
                    None => open = false,
                },
                () = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if may_start => {
                    let Some(Reverse((_, attempt_id))) = due.pop() else { continue };
                    let call = &tracked[&attempt_id];
                    let (call_id, phone) = (call.call_id.clone(), call.phone.clone());
                    let (client, statuses) = (self.client.clone(), self.statuses.clone());
                    in_flight.spawn(async move {
                        (attempt_id, client.search(&call_id, Some(&phone), &statuses).await)
                    });
                }
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    let Ok((attempt_id, poll)) = joined else { continue };
                    if self.settle(attempt_id, poll).await {
                        tracked.remove(&attempt_id);
                        continue;
                    }
                    let Some(t) = tracked.get(&attempt_id) else { continue };
                    let now = Instant::now();
                    let delay = now
                        .duration_since(t.since)
                        .max(self.policy.interval * 2)
                        .min(self.policy.max_interval);
                    let at = now + delay;
                    if at.duration_since(t.since) > self.policy.horizon {
                        tracing::warn!(
                            "no result for call {} after {:?}; it stays `dialed` and the next run asks again",
                            t.call_id, self.policy.horizon
                        );
                        tracked.remove(&attempt_id);
                        given_up += 1;
                        continue;
                    }
                    due.push(Reverse((at, attempt_id)));
                }
            }
        }
        in_flight.abort_all();
        given_up
    }

    /// Stores one poll's answer; true when the call has its result (or the run must stop).
    async fn settle(&self, attempt_id: i64, poll: Poll) -> bool {
        let (answer, result, fatal) = match poll {
            Poll::Record {
                record: Record::Final(result),
                answer,
            } => (Some(answer), Some(result), None),
            Poll::Record { answer, .. } => (Some(answer), None, None),
            Poll::Failed { reason, answer } => {
                tracing::debug!("poll failed, will ask again: {reason}");
                (answer, None, None)
            }
            Poll::OtherCall { reason, answer } => {
                tracing::warn!(
                    "a record was not applied: {reason}; its raw answer is kept and the call is asked about again"
                );
                (Some(answer), None, None)
            }
            Poll::Fatal { error, answer } => (Some(answer), None, Some(error)),
        };
        let done = result.is_some();
        let tags = result
            .as_ref()
            .map(|r| crate::config::tags::tags(&self.outcomes, &r.transcript))
            .unwrap_or_default();
        let written = self
            .writer
            .with(move |s| s.record_poll(attempt_id, answer.as_ref(), result.as_ref(), &tags))
            .await;
        if let Err(e) = written {
            self.stop.raise(e);
            return true;
        }
        if let Some(error) = fatal {
            self.stop.raise(error);
            return true;
        }
        if done {
            self.progress.result();
        }
        done
    }
}
