//! The Stepone client: one HTTP request in, one classified answer out.
//!
//! This is where "strict where a mistake costs a phone call" lives. Every `initiate_call` answer
//! is sorted into exactly one of: accepted (a call id), not sent (provably never reached the
//! provider: HTTP 429 or 408, or no connection was made, so it may be retried), uncertain (it may
//! have reached the provider: a timeout or reset after sending, a 5xx, an unreadable or id-less
//! 2xx, so it is never retried automatically), rejected (the provider refused this one request),
//! or fatal (the key, the protocol version or the balance: no further call can succeed). The
//! client never retries anything itself; the dialer decides, with the classification in hand.
//! The raw answer text always comes back too, so it can be stored before it is interpreted.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::errors::Error;
use crate::secrets::ApiKey;
use crate::wire::{self, InitiateRequest, Record, SearchRequest};

/// Answers larger than this are not read: no real answer comes close.
pub const MAX_ANSWER_BYTES: usize = 1 << 20;

pub struct Client {
    http: reqwest::Client,
    base_url: String,
    key: ApiKey,
}

/// The provider's answer as received, for the database.
#[derive(Debug, Clone)]
pub struct Answer {
    pub http_status: Option<u16>,
    pub body: String,
}

#[derive(Debug)]
pub enum Dial {
    Accepted {
        call_id: String,
        answer: Answer,
    },
    NotSent {
        reason: String,
        retry_after: Option<Duration>,
        answer: Option<Answer>,
    },
    Uncertain {
        reason: String,
        answer: Option<Answer>,
    },
    Rejected {
        reason: String,
        answer: Answer,
    },
    Fatal {
        error: Error,
        answer: Answer,
    },
}

#[derive(Debug)]
pub enum Poll {
    Record {
        record: Record,
        answer: Answer,
    },
    /// This poll failed; the call is not lost, ask again later.
    Failed {
        reason: String,
        answer: Option<Answer>,
    },
    Fatal {
        error: Error,
        answer: Answer,
    },
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
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base_url))
            .header(wire::API_KEY_HEADER, self.key.expose())
            .header(wire::SKILL_VERSION_HEADER, wire::SKILL_VERSION)
    }

    /// Asks the provider to place one call. Never retried here.
    pub async fn initiate(&self, request: &InitiateRequest, idempotency_key: &str) -> Dial {
        let sent = self
            .post(wire::INITIATE_PATH)
            .header(wire::IDEMPOTENCY_HEADER, idempotency_key)
            .json(request)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
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
                };
            }
        };
        let status = response.status();
        let retry_after = retry_after(&response);
        let body = read_capped(response).await;
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
            let answer = body.ok().map(|body| Answer {
                http_status: Some(status.as_u16()),
                body,
            });
            let reason = format!(
                "the provider refused the request for now (HTTP {})",
                status.as_u16()
            );
            return Dial::NotSent {
                reason,
                retry_after,
                answer,
            };
        }
        let body = match body {
            Ok(body) => body,
            Err(reason) => {
                return Dial::Uncertain {
                    reason: format!("HTTP {}, {reason}", status.as_u16()),
                    answer: None,
                };
            }
        };
        let answer = Answer {
            http_status: Some(status.as_u16()),
            body,
        };
        let json: Option<Value> = serde_json::from_str(&answer.body).ok();
        let message = json
            .as_ref()
            .and_then(wire::error_message)
            .unwrap_or_default();
        if let Some(error) = fatal(status, &message) {
            return Dial::Fatal { error, answer };
        }
        if status.is_client_error() {
            let reason = format!("HTTP {}: {}", status.as_u16(), or_no_message(&message));
            return Dial::Rejected { reason, answer };
        }
        if !status.is_success() {
            let reason = format!(
                "HTTP {} (the call may have been placed): {}",
                status.as_u16(),
                or_no_message(&message)
            );
            return Dial::Uncertain {
                reason,
                answer: Some(answer),
            };
        }
        let Some(json) = json else {
            return Dial::Uncertain {
                reason: "the answer is not JSON (the call may have been placed)".into(),
                answer: Some(answer),
            };
        };
        if let Some(call_id) = wire::call_id(&json) {
            return Dial::Accepted { call_id, answer };
        }
        if wire::is_success(&json) {
            return Dial::Uncertain {
                reason: "the provider accepted the call but gave no call id".into(),
                answer: Some(answer),
            };
        }
        Dial::Rejected {
            reason: or_no_message(&message).to_string(),
            answer,
        }
    }

    /// Asks for a call's record. A failure here never loses the call: the caller asks again.
    pub async fn search(&self, call_id: &str) -> Poll {
        let request = SearchRequest {
            call_id: call_id.to_string(),
        };
        let response = match self.post(wire::SEARCH_PATH).json(&request).send().await {
            Ok(response) => response,
            Err(e) => {
                return Poll::Failed {
                    reason: lost_reason(&e),
                    answer: None,
                };
            }
        };
        let status = response.status();
        let body = match read_capped(response).await {
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
        let json: Option<Value> = serde_json::from_str(&answer.body).ok();
        let message = json
            .as_ref()
            .and_then(wire::error_message)
            .unwrap_or_default();
        if matches!(status.as_u16(), 401 | 403 | 426) {
            let error = fatal(status, &message).expect("401, 403 and 426 are fatal");
            return Poll::Fatal { error, answer };
        }
        if !status.is_success() {
            return Poll::Failed {
                reason: format!("HTTP {}: {}", status.as_u16(), or_no_message(&message)),
                answer: Some(answer),
            };
        }
        match json {
            Some(json) => Poll::Record {
                record: wire::record(&json),
                answer,
            },
            None => Poll::Failed {
                reason: "the answer is not JSON".into(),
                answer: Some(answer),
            },
        }
    }
}

/// The answers after which no further call can succeed.
fn fatal(status: StatusCode, message: &str) -> Option<Error> {
    let message = or_no_message(message).to_string();
    match status.as_u16() {
        401 | 403 => Some(Error::AuthRejected {
            status: status.as_u16(),
            message,
        }),
        426 => Some(Error::VersionRejected { message }),
        402 => Some(Error::NoBalance { message }),
        _ if mentions_balance(&message) => Some(Error::NoBalance { message }),
        _ => None,
    }
}

fn mentions_balance(message: &str) -> bool {
    let m = message.to_lowercase();
    ["balance", "insufficient", "credit", "余额", "欠费"]
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

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
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
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}
