//! The Stepone client: one HTTP request in, one classified answer out.
//!
//! This is where "strict where a mistake costs a phone call" lives. Every `initiate_call` answer
//! is sorted into exactly one of: accepted (a call id anywhere in it, whatever its status and
//! message say: the call was placed, and every id it holds is kept), not sent (provably never
//! reached the provider: a 429 without a call id, or no connection was made, so it may be
//! retried), throttled (a 4xx saying this number is called too often: nothing was placed, the
//! contact waits), uncertain (it may have reached the provider: a timeout or reset after
//! sending, a 408 or 5xx, an unreadable or id-less 2xx whatever its words, so it is never
//! retried automatically), rejected (the provider refused this one request), or fatal (the key,
//! the protocol version or the balance: no further call can succeed). The client never retries
//! anything itself; the dialer decides, with the classification in hand. The raw answer text
//! always comes back too, with any echo of the key blanked, so it can be stored before it is
//! interpreted. A record that names another call than the one asked about is never taken for it.

use std::time::Duration;

use serde_json::Value;

use crate::config::secrets::ApiKey;
use crate::errors::Error;
use crate::provider::answer::{Answer, Dial, Poll};
use crate::provider::wire::{self, InitiateRequest, SearchRequest, StatusMap};

/// Answers larger than this are not read: no real answer comes close.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: ApiKey,
    /// What a run decided at its start: the provider is the simulator (`Some(true)`) or real
    /// (`Some(false)`). Every answer is then checked against it; `None` checks nothing.
    expect_simulator: Option<bool>,
}

impl Client {
    pub fn new(base_url: &str, key: ApiKey, timeout: Duration) -> Client {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A redirected POST is a second POST: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("stepcall/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client's fixed configuration is valid");
        Client {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            key,
            expect_simulator: None,
        }
    }

    /// A client that stops the run on any answer whose simulator mark disagrees with `yes`:
    /// a run filed as live whose calls a simulator answers (it was not up when the run began)
    /// would send rehearsals to the CRM as real calls, and the other way round is worse.
    pub fn expecting_simulator(mut self, yes: bool) -> Client {
        self.expect_simulator = Some(yes);
        self
    }

    /// The error that ends the run when `response` is marked otherwise than the run expects.
    fn mode_changed(&self, response: &reqwest::Response) -> Option<Error> {
        let expected = self.expect_simulator?;
        let marked = is_marked(response);
        (marked != expected).then(|| Error::ProviderModeChanged {
            url: self.base_url.clone(),
            began: if expected { "simulated" } else { "live" },
            answered: if marked {
                "stepcall's simulator"
            } else {
                "a real provider (no simulator mark)"
            },
        })
    }

    /// A POST with the key header. With `-v`, the request is logged, the key as `[redacted]`.
    fn post(&self, path: &str, body: &impl serde::Serialize) -> reqwest::RequestBuilder {
        tracing::debug!(
            "POST {}{path} {}: [redacted] body: {}",
            self.base_url,
            wire::API_KEY_HEADER,
            serde_json::to_string(body).unwrap_or_default()
        );
        self.http
            .post(format!("{}{path}", self.base_url))
            .header(wire::API_KEY_HEADER, self.key.expose())
            .header(wire::SKILL_VERSION_HEADER, wire::SKILL_VERSION)
    }

    /// Asks the provider to place one call. Never retried here.
    pub async fn initiate(&self, request: &InitiateRequest, idempotency_key: &str) -> Dial {
        let sent = self
            .post(wire::INITIATE_PATH, request)
            .header(wire::IDEMPOTENCY_HEADER, idempotency_key)
            .json(request)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            // Nothing left this machine: a URL or header that cannot be sent at all.
            Err(e) if e.is_builder() => {
                let error = Error::Endpoint {
                    url: self.base_url.clone(),
                    message: format!("the request cannot be built: {}", cause(&e)),
                };
                return Dial::Fatal {
                    error,
                    answer: None,
                };
            }
            Err(e) if e.is_connect() => {
                return Dial::NotSent {
                    reason: format!("could not connect: {}", cause(&e)),
                    retry_after: None,
                    answer: None,
                };
            }
            Err(e) => {
                return Dial::Uncertain {
                    reason: lost_reason(&e),
                    answer: None,
                    stop: None,
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let changed = self.mode_changed(&response);
        let body = self.read(response).await;
        let dial = classify_initiate(status, body, retry_after, &self.base_url);
        match changed {
            None => dial,
            Some(error) => stop_with(dial, error),
        }
    }

    /// Reads an answer, with any echo of the key blanked out before anyone stores or shows it.
    async fn read(&self, response: reqwest::Response) -> Result<String, String> {
        let status = response.status().as_u16();
        let body = read_capped(response).await?;
        let body = redact(body, self.key.expose());
        tracing::debug!("HTTP {status}: {:.300}", body);
        Ok(body)
    }

    /// Asks whether the provider answers at all, without dialing: `GET /skill_version`, which
    /// needs no key and places no call.
    pub async fn probe(&self) -> Result<(), String> {
        let url = format!("{}{}", self.base_url, wire::SKILL_VERSION_PATH);
        match self.http.get(url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!(
                "GET {} answered HTTP {}",
                wire::SKILL_VERSION_PATH,
                r.status().as_u16()
            )),
            Err(e) => Err(format!("GET {}: {}", wire::SKILL_VERSION_PATH, cause(&e))),
        }
    }

    /// Whether the provider is stepcall's simulator, as it says on every answer. Asked before
    /// a run claims its database, so a rehearsal against `stepcall sim` is marked as one. No
    /// answer, or one without the mark, is a real provider: the cautious reading, since a real
    /// call must never be filed as a rehearsal.
    pub async fn is_simulator(&self) -> bool {
        let url = format!("{}{}", self.base_url, wire::SKILL_VERSION_PATH);
        match self.http.get(url).send().await {
            Ok(r) => is_marked(&r),
            Err(_) => false,
        }
    }

    /// Asks for the record of `call_id` (placed to `phone`, when known), reading its status
    /// through `statuses`. A failure here never loses the call: the caller asks again.
    pub async fn search(&self, call_id: &str, phone: Option<&str>, statuses: &StatusMap) -> Poll {
        let request = SearchRequest {
            call_id: call_id.to_string(),
        };
        let response = match self
            .post(wire::SEARCH_PATH, &request)
            .json(&request)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                return Poll::Failed {
                    reason: lost_reason(&e),
                    answer: None,
                };
            }
        };
        let status = response.status();
        let changed = self.mode_changed(&response);
        let body = match self.read(response).await {
            Ok(body) => body,
            Err(reason) => {
                return Poll::Failed {
                    reason,
                    answer: None,
                };
            }
        };
        let answer = Answer {
            http_status: Some(status.as_u16()),
            body,
        };
        if let Some(error) = changed {
            return Poll::Fatal { error, answer };
        }
        let json: Option<Value> = serde_json::from_str(&answer.body).ok();
        let message = json
            .as_ref()
            .and_then(wire::error_message)
            .unwrap_or_default();
        let message = or_no_message(&message).to_string();
        let fatal = match status.as_u16() {
            401 | 403 => Some(Error::AuthRejected {
                status: status.as_u16(),
                message: message.clone(),
            }),
            426 => Some(Error::VersionRejected {
                message: message.clone(),
            }),
            _ => None,
        };
        if let Some(error) = fatal {
            return Poll::Fatal { error, answer };
        }
        if !status.is_success() {
            return Poll::Failed {
                reason: format!("HTTP {}: {message}", status.as_u16()),
                answer: Some(answer),
            };
        }
        let Some(json) = json else {
            return Poll::Failed {
                reason: "the answer is not JSON".into(),
                answer: Some(answer),
            };
        };
        if let Some(reason) = wire::about_other_call(&json, call_id, phone) {
            return Poll::OtherCall { reason, answer };
        }
        Poll::Record {
            record: wire::record(&json, statuses),
            answer,
        }
    }
}

fn is_marked(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(wire::SIMULATOR_HEADER)
        .is_some_and(|v| v.as_bytes() == b"1")
}

/// `dial` as classified, and the run stops after it. A placed call keeps its ids, so it is
/// recorded like any other; an answer that placed nothing places nothing more.
fn stop_with(dial: Dial, error: Error) -> Dial {
    match dial {
        Dial::Accepted {
            call_ids,
            answer,
            slow_down,
            ..
        } => Dial::Accepted {
            call_ids,
            answer,
            slow_down,
            stop: Some(error),
        },
        Dial::Uncertain { reason, answer, .. } => Dial::Uncertain {
            reason,
            answer,
            stop: Some(error),
        },
        Dial::NotSent { answer, .. } | Dial::Fatal { answer, .. } => Dial::Fatal { error, answer },
        Dial::Throttled { answer, .. } | Dial::Rejected { answer, .. } => Dial::Fatal {
            error,
            answer: Some(answer),
        },
    }
}

/// `body` with every occurrence of `key` blanked: as it is, and inside JSON strings however
/// they escape it (`\u0061`, `\/`), down into JSON held in a string (`provider_response`). A
/// body that needed the second kind is stored re-serialised, without the key.
fn redact(body: String, key: &str) -> String {
    const BLANK: &str = "[redacted]";
    if key.len() < 4 {
        return body;
    }
    let body = if body.contains(key) {
        body.replace(key, BLANK)
    } else {
        body
    };
    fn scrub(v: &mut Value, key: &str) -> bool {
        match v {
            Value::String(s) => {
                if s.contains(key) {
                    *s = s.replace(key, BLANK);
                    return true;
                }
                let nested = s.trim_start().starts_with(['{', '[']);
                if !nested {
                    return false;
                }
                match serde_json::from_str::<Value>(s) {
                    Ok(mut inner) => {
                        let hit = scrub(&mut inner, key);
                        if hit {
                            *s = inner.to_string();
                        }
                        hit
                    }
                    Err(_) => false,
                }
            }
            Value::Array(items) => items.iter_mut().fold(false, |hit, v| scrub(v, key) | hit),
            Value::Object(map) => {
                let keys: Vec<String> = map.keys().filter(|k| k.contains(key)).cloned().collect();
                let renamed = !keys.is_empty();
                for k in keys {
                    if let Some(v) = map.remove(&k) {
                        map.insert(k.replace(key, BLANK), v);
                    }
                }
                map.values_mut().fold(renamed, |hit, v| scrub(v, key) | hit)
            }
            _ => false,
        }
    }
    match serde_json::from_str::<Value>(&body) {
        Ok(mut json) => {
            if scrub(&mut json, key) {
                json.to_string()
            } else {
                body
            }
        }
        Err(_) => body,
    }
}

/// Sorts one `initiate_call` answer. A call id wins over everything else the answer says: the
/// call was placed. Without one, only a 429 proves the provider did not take the request; a
/// 2xx, a 408 and a 5xx may have placed a call (`uncertain`), and the other 4xx are refusals.
fn classify_initiate(
    status: u16,
    body: Result<String, String>,
    retry_after: Option<Duration>,
    base_url: &str,
) -> Dial {
    let body = match body {
        Ok(body) => body,
        // Unread, the answer may have held a call id: even a 429 is not proof of "not sent".
        Err(reason) => {
            return Dial::Uncertain {
                reason: format!("HTTP {status}, {reason} (the call may have been placed)"),
                answer: None,
                stop: None,
            };
        }
    };
    let json: Option<Value> = serde_json::from_str(&body).ok();
    let answer = Answer {
        http_status: Some(status),
        body,
    };
    let message = json
        .as_ref()
        .and_then(wire::error_message)
        .unwrap_or_default();
    let message = or_no_message(&message).to_string();
    let call_ids = json.as_ref().map(wire::call_ids).unwrap_or_default();
    if !call_ids.is_empty() {
        let slow_down = (status == 429).then(|| retry_after.unwrap_or(Duration::from_secs(1)));
        let stop = account_error(status, &message, base_url, false);
        return Dial::Accepted {
            call_ids,
            answer,
            slow_down,
            stop,
        };
    }
    if json.as_ref().is_some_and(wire::names_a_call) {
        return Dial::Uncertain {
            reason: format!(
                "HTTP {status}: the answer names a call id stepcall cannot read (the call may have been placed): {message}"
            ),
            answer: Some(answer),
            stop: None,
        };
    }
    match status {
        429 => Dial::NotSent {
            reason: "the provider refused the request for now (HTTP 429)".into(),
            retry_after,
            answer: Some(answer),
        },
        300..=399 | 401..=405 | 426 => {
            let error = account_error(status, &message, base_url, true)
                .expect("these statuses are account errors");
            Dial::Fatal {
                error,
                answer: Some(answer),
            }
        }
        400..=499 if status != 408 => {
            if let Some(error) = worded_account_error(status, &message) {
                Dial::Fatal {
                    error,
                    answer: Some(answer),
                }
            } else if mentions_rate_limit(&message) {
                Dial::Throttled {
                    reason: format!(
                        "the provider asks to call this number less often (HTTP {status}: {message})"
                    ),
                    answer,
                }
            } else {
                Dial::Rejected {
                    reason: format!("HTTP {status}: {message}"),
                    answer,
                }
            }
        }
        200..=299 => {
            let Some(json) = json else {
                return Dial::Uncertain {
                    reason: "the answer is not JSON (the call may have been placed)".into(),
                    answer: Some(answer),
                    stop: None,
                };
            };
            // Whatever the words say: a provider that puts "too many requests" or an error
            // behind a 200 may still have placed the call.
            let (reason, stop) = if wire::is_success(&json) {
                (
                    "the provider accepted the call but gave no call id".to_string(),
                    None,
                )
            } else {
                (
                    format!(
                        "HTTP {status} without a call id: {message} (the call may have been placed)"
                    ),
                    worded_account_error(status, &message),
                )
            };
            Dial::Uncertain {
                reason,
                answer: Some(answer),
                stop,
            }
        }
        // 408, 5xx and anything stranger: the request may have been acted on.
        _ => Dial::Uncertain {
            reason: format!("HTTP {status} (the call may have been placed): {message}"),
            stop: worded_account_error(status, &message)
                .filter(|e| matches!(e, Error::NoBalance { .. })),
            answer: Some(answer),
        },
    }
}

/// The error that stops the run for an answer's status (401, 402, 403, 404, 405, 426, 3xx),
/// or, with `by_words`, also for what its message says about the key or the balance.
fn account_error(status: u16, message: &str, base_url: &str, by_words: bool) -> Option<Error> {
    let message = or_no_message(message).to_string();
    match status {
        401 | 403 if by_words && mentions_balance(&message) => Some(Error::NoBalance { message }),
        401 | 403 => Some(Error::AuthRejected { status, message }),
        426 => Some(Error::VersionRejected { message }),
        402 => Some(Error::NoBalance { message }),
        300..=399 | 404 | 405 => Some(Error::Endpoint {
            url: base_url.to_string(),
            message: format!("HTTP {status} for {}: {message}", wire::INITIATE_PATH),
        }),
        _ if by_words => worded_account_error(status, &message),
        _ => None,
    }
}

/// What the words of an answer without a call id say about the account: providers are known
/// to put an empty balance or a bad key behind any status, 200 included.
fn worded_account_error(status: u16, message: &str) -> Option<Error> {
    let message = message.to_string();
    if mentions_balance(&message) {
        Some(Error::NoBalance { message })
    } else if mentions_auth(&message) {
        Some(Error::AuthRejected { status, message })
    } else {
        None
    }
}

/// Provider messages about the key.
fn mentions_auth(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "api key",
        "api-key",
        "apikey",
        "invalid key",
        "unauthorized",
        "unauthorised",
        "authentication",
        "密钥",
        "鉴权",
        "认证失败",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Provider messages that mean "slow down". Behind a 4xx they refuse this one request: the
/// number is held back (a per-number throttle such as 该号码呼叫过于频繁 or 呼叫频次超限).
fn mentions_rate_limit(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "too many requests",
        "too often",
        "too frequent",
        "rate limit",
        "ratelimit",
        "slow down",
        "频繁",
        "频次",
        "限流",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Provider messages that mean the account is out of money. Only consulted for answers that
/// carry no call id.
fn mentions_balance(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "balance",
        "insufficient funds",
        "insufficient credit",
        "out of credit",
        "no credit",
        "余额",
        "欠费",
    ]
    .iter()
    .any(|w| m.contains(w))
}

fn or_no_message(message: &str) -> &str {
    if message.is_empty() {
        "(no message)"
    } else {
        message
    }
}

/// The answer's `Retry-After` in seconds, at most an hour (an HTTP date is not read).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let text = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

async fn read_capped(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!(
                        "the answer is larger than {} KiB",
                        MAX_ANSWER_BYTES / 1024
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(String::from_utf8_lossy(&body).into_owned()),
            Err(e) => return Err(format!("the answer was cut off: {}", cause(&e))),
        }
    }
}

fn lost_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer before the timeout (the call may have been placed)".to_string()
    } else {
        format!(
            "the connection failed after the request was sent (the call may have been placed): {}",
            cause(e)
        )
    }
}

/// The innermost error text: reqwest's own Display repeats the URL, the cause says what broke.
pub(crate) fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
