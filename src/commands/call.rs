//! `call` and `callinfo`: one call by hand, like the skill's callout.sh and callinfo.sh.
//!
//! No campaign and no database: these are for trying a number or checking a call id. They keep
//! the same rules as campaigns where it matters: the number is normalised and validated first,
//! the POST is retried only when the provider provably did not get it, and the waiting ends in
//! one clear state (a result, or "not ready yet" with its own exit code).

use std::time::Duration;

use serde_json::Value;

use crate::cli::hiargs;
use crate::cli::lowargs::{CallArgs, CallinfoArgs};
use crate::config::secrets::ApiKey;
use crate::errors::{Error, Result};
use crate::exit;
use crate::input::phone;
use crate::provider::answer::{Dial, Poll};
use crate::provider::client::Client;
use crate::provider::sim::{self, SimConfig};
use crate::provider::wire::{self, CallResult, InitiateRequest, Record, StatusMap};

const NOT_SENT_TRIES: u32 = 5;

/// Places one call and returns its id (its ids, if the provider placed several).
pub async fn place(client: &Client, raw_phone: &str, requirement: &str) -> Result<Vec<String>> {
    let phones = phone::normalize(raw_phone).map_err(|reason| Error::Usage {
        message: format!("{raw_phone:?} is not a number stepcall will dial: {reason}"),
        help: "give one mainland China number, e.g. 13800138000 or 010-6552 9988".into(),
    })?;
    if requirement.trim().is_empty() {
        return Err(Error::Usage {
            message: "the requirement is empty".into(),
            help: "say what the AI caller should do, e.g. \"Remind about tomorrow's 9 AM meeting\""
                .into(),
        });
    }
    let request = InitiateRequest {
        phones,
        user_requirement: Some(requirement.trim().to_string()),
        options: Default::default(),
    };
    let key = format!(
        "stepcall-call-{}-{}",
        request.phones,
        jiff::Timestamp::now().as_millisecond()
    );
    for try_number in 1..=NOT_SENT_TRIES {
        match client.initiate(&request, &key).await {
            Dial::Accepted { call_ids, .. } => {
                if call_ids.len() > 1 {
                    tracing::warn!(
                        "the provider placed {} calls for this one request: {}",
                        call_ids.len(),
                        call_ids.join(", ")
                    );
                }
                return Ok(call_ids);
            }
            Dial::NotSent {
                reason,
                retry_after,
                ..
            } => {
                if try_number == NOT_SENT_TRIES {
                    return Err(Error::CallNotPlaced {
                        message: reason,
                        help: "try again in a minute".into(),
                    });
                }
                let wait = retry_after.unwrap_or(Duration::from_secs(1 << try_number));
                tracing::info!("{reason}; trying again in {wait:?}");
                tokio::time::sleep(wait).await;
            }
            Dial::Uncertain { reason, .. } => return Err(Error::CallUncertain { message: reason }),
            Dial::Throttled { reason, .. } => {
                return Err(Error::CallNotPlaced {
                    message: reason,
                    help: "the provider asks to call this number less often: try again in an hour"
                        .into(),
                });
            }
            Dial::Rejected { reason, .. } => {
                return Err(Error::CallNotPlaced {
                    message: reason,
                    help: "check the number and the requirement".into(),
                });
            }
            Dial::Fatal { error, .. } => return Err(error),
        }
    }
    unreachable!("the loop returns on its last try")
}

/// A call's record once it is final.
pub struct Finished {
    pub result: CallResult,
    pub raw: Value,
}

/// Asks for `call_id`'s record up to `tries` times, `interval` apart (or doubling from it up to
/// a minute when `doubling`).
pub async fn wait_for_record(
    client: &Client,
    call_id: &str,
    tries: u32,
    interval: Duration,
    doubling: bool,
) -> Result<Finished> {
    let mut wait = interval;
    for try_number in 1..=tries.max(1) {
        match client.search(call_id, None, &StatusMap::default()).await {
            Poll::Record {
                record: Record::Final(result),
                answer,
            } => {
                let mut raw: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
                wire::strip_internal(&mut raw);
                return Ok(Finished { result, raw });
            }
            Poll::Record {
                record: Record::InProgress { status_raw },
                ..
            } => {
                tracing::info!(
                    "try {try_number}/{tries}: the call is still going on ({status_raw})"
                );
            }
            Poll::Record {
                record: Record::NotReady,
                ..
            } => tracing::info!("try {try_number}/{tries}: no record yet"),
            Poll::Failed {
                reason,
                answer: Some(answer),
            } if answer.http_status == Some(404) => {
                return Err(Error::CallNotFound {
                    call_id: call_id.to_string(),
                    message: reason
                        .strip_prefix("HTTP 404: ")
                        .unwrap_or(&reason)
                        .to_string(),
                });
            }
            Poll::Failed { reason, .. } | Poll::OtherCall { reason, .. } => {
                tracing::info!("try {try_number}/{tries}: {reason}")
            }
            Poll::Fatal { error, .. } => return Err(error),
        }
        if try_number < tries {
            tokio::time::sleep(wait).await;
            if doubling {
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    }
    Err(Error::ResultPending {
        call_id: call_id.to_string(),
        tries,
    })
}

/// The record as a person reads it.
pub fn describe(call_id: &str, r: &CallResult) -> String {
    let mut text = format!("call {call_id}: {}", r.state);
    if !r.status_raw.is_empty() {
        text.push_str(&format!(" (call_status {})", r.status_raw));
    }
    if let Some(d) = r.duration_seconds {
        text.push_str(&format!(", {d} s"));
    }
    if let Some(c) = r.cost {
        text.push_str(&format!(", cost ¥{c:.2}"));
    }
    if !r.transcript.is_empty() {
        text.push('\n');
        text.push_str(&r.transcript);
    }
    text
}

/// A client for a one-off command: the simulator's when `simulate` is set.
async fn oneoff_client(
    base: Option<String>,
    simulate: bool,
) -> Result<(Client, Option<sim::Simulator>)> {
    if simulate {
        let config = SimConfig {
            record_delay: Duration::from_millis(500),
            ..SimConfig::default()
        };
        let simulator = sim::start("127.0.0.1:0", config).await?;
        tracing::warn!("SIMULATION: no real phone call is made");
        let client = Client::new(
            &simulator.url(),
            ApiKey::new(sim::DEFAULT_KEY),
            Duration::from_secs(30),
        );
        return Ok((client, Some(simulator)));
    }
    let url = hiargs::base_url(base, None)?;
    Ok((
        Client::new(&url, hiargs::api_key()?, Duration::from_secs(30)),
        None,
    ))
}

/// At most this many numbers in one `call`: more is a campaign, with its hours, limits and
/// state.
const MAX_NUMBERS: usize = 20;

/// The numbers of `call`'s first argument, split on commas as the skill's callout.sh takes
/// them, each checked before anyone is rung: a typo in the third number must not leave the
/// first two rung and the command failed.
fn numbers(arg: &str) -> Result<Vec<String>> {
    let raw: Vec<&str> = arg
        .split([',', '，'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if raw.len() > MAX_NUMBERS {
        return Err(Error::Usage {
            message: format!(
                "{} numbers for one `call`; it takes at most {MAX_NUMBERS}",
                raw.len()
            ),
            help: "put the numbers in a contact list and run a campaign (see the README)".into(),
        });
    }
    let mut seen = Vec::new();
    for p in raw {
        let normalized = phone::normalize(p).map_err(|reason| Error::Usage {
            message: format!("{p:?} is not a number stepcall will dial: {reason}"),
            help: "give mainland China numbers separated by commas, e.g. 13800138000,010-6552 9988"
                .into(),
        })?;
        if seen.contains(&normalized) {
            return Err(Error::Usage {
                message: format!("{p:?} is given twice: nobody is rung twice by one command"),
                help: "give each number once".into(),
            });
        }
        seen.push(normalized);
    }
    if seen.is_empty() {
        return Err(Error::Usage {
            message: "no number to call".into(),
            help: format!(
                "give a number, e.g. {} call 13800138000 \"Say hello\"",
                crate::cli::program()
            ),
        });
    }
    Ok(seen)
}

pub(super) fn call(args: CallArgs) -> Result<u8> {
    let phones = numbers(&args.phone)?;
    super::runtime()?.block_on(async {
        let (client, _simulator) = oneoff_client(args.base_url, args.simulate).await?;
        if let [only] = phones.as_slice() {
            let call_ids = place(&client, only, &args.requirement).await?;
            for call_id in &call_ids {
                println!("call_id: {call_id}");
            }
            if args.wait {
                wait_for_all(&client, &call_ids, args.interval).await?;
            }
            return Ok(exit::SUCCESS);
        }
        // One request per number, in order; a number the provider would not take is
        // reported and the others still get their call. An account-wide refusal stops all.
        let mut placed = Vec::new();
        let mut first_error = None;
        for phone in &phones {
            match place(&client, phone, &args.requirement).await {
                Ok(call_ids) => {
                    for call_id in &call_ids {
                        println!("{phone} call_id: {call_id}");
                    }
                    placed.extend(call_ids);
                }
                Err(e @ (Error::CallNotPlaced { .. } | Error::CallUncertain { .. })) => {
                    tracing::error!("{phone}: {e}");
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        if args.wait {
            wait_for_all(&client, &placed, args.interval).await?;
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(exit::SUCCESS),
        }
    })
}

/// Waits for every call's record at once and prints them in the order given.
async fn wait_for_all(client: &Client, call_ids: &[String], interval: Duration) -> Result<()> {
    // About 30 minutes of doubling waits, like a campaign's poll horizon.
    let waits = call_ids
        .iter()
        .map(|call_id| wait_for_record(client, call_id, 36, interval, true));
    let finished = futures_util::future::join_all(waits).await;
    let mut pending = None;
    for (call_id, finished) in call_ids.iter().zip(finished) {
        match finished {
            Ok(f) => println!("{}", describe(call_id, &f.result)),
            Err(e @ Error::ResultPending { .. }) => {
                tracing::error!("{e}");
                pending.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    pending.map_or(Ok(()), Err)
}

pub(super) fn callinfo(args: CallinfoArgs) -> Result<u8> {
    super::runtime()?.block_on(async {
        let url = hiargs::base_url(args.base_url, None)?;
        let client = Client::new(
            &url,
            hiargs::api_key_without_simulate()?,
            Duration::from_secs(30),
        );
        let finished =
            wait_for_record(&client, &args.call_id, args.retries, args.interval, false).await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&finished.raw).unwrap_or_default()
            );
        } else {
            println!("{}", describe(&args.call_id, &finished.result));
        }
        Ok(exit::SUCCESS)
    })
}
