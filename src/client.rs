//! The Stepone client: one HTTP request in, one classified answer out.
//!
//! This is where "strict where a mistake costs a phone call" lives. Every `initiate_call` answer
//! is sorted into exactly one of: accepted (a call id), not sent (provably never reached the
//! provider: HTTP 429, or no connection was made, so it may be retried), uncertain (it may
//! have reached the provider: a timeout or reset after sending, a 408 or 5xx, an unreadable or id-less
//! 2xx, so it is never retried automatically), rejected (the provider refused this one request),
//! or fatal (the key, the protocol version or the balance: no further call can succeed). The
//! client never retries anything itself; the dialer decides, with the classification in hand.
//! The raw answer text always comes back too, so it can be stored before it is interpreted.

use std::time::Duration;

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
        answer: Option<Answer>,
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
                };
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        let body = self.read(response).await;
        classify_initiate(status, body, retry_after, &self.base_url)
    }

    /// Reads an answer, with any echo of the key blanked out before anyone stores or shows it.
    async fn read(&self, response: reqwest::Response) -> Result<String, String> {
        let status = response.status().as_u16();
        let body = read_capped(response).await?;
        let key = self.key.expose();
        let body = if key.len() >= 4 && body.contains(key) {
            body.replace(key, "[redacted]")
        } else {
            body
        };
        tracing::debug!("HTTP {status}: {:.300}", body);
        Ok(body)
    }

    /// Asks for a call's record. A failure here never loses the call: the caller asks again.
    pub async fn search(&self, call_id: &str) -> Poll {
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

/// Sorts one `initiate_call` answer. The order matters: a call id, once given, is never thrown
/// away, and only a 429 proves the provider did not take the request.
fn classify_initiate(
    status: u16,
    body: Result<String, String>,
    retry_after: Option<Duration>,
    base_url: &str,
) -> Dial {
    let body = match body {
        Ok(body) => body,
        Err(reason) if status == 429 => {
            let reason = format!("the provider refused the request for now (HTTP 429); {reason}");
            return Dial::NotSent {
                reason,
                retry_after,
                answer: None,
            };
        }
        Err(reason) => {
            return Dial::Uncertain {
                reason: format!("HTTP {status}, {reason} (the call may have been placed)"),
                answer: None,
            };
        }
    };
    let json: Option<Value> = serde_json::from_str(&body).ok();
    let message = json
        .as_ref()
        .and_then(wire::error_message)
        .unwrap_or_default();
    let message = or_no_message(&message).to_string();
    let answer = Answer {
        http_status: Some(status),
        body,
    };
    let fatal = |error| Dial::Fatal {
        error,
        answer: Some(answer.clone()),
    };
    // What the words say, for answers that carry no call id: providers are known to put
    // account problems and rate limits behind any status, 200 included.
    let worded = |status: u16| {
        if mentions_balance(&message) {
            Some(fatal(Error::NoBalance {
                message: message.clone(),
            }))
        } else if mentions_auth(&message) {
            Some(fatal(Error::AuthRejected {
                status,
                message: message.clone(),
            }))
        } else if mentions_rate_limit(&message) && status < 500 {
            Some(Dial::NotSent {
                reason: format!(
                    "the provider refused the request for now (HTTP {status}: {message})"
                ),
                retry_after,
                answer: Some(answer.clone()),
            })
        } else {
            None
        }
    };
    match status {
        429 => Dial::NotSent {
            reason: "the provider refused the request for now (HTTP 429)".into(),
            retry_after,
            answer: Some(answer),
        },
        401 | 403 if mentions_balance(&message) => fatal(Error::NoBalance { message }),
        401 | 403 => fatal(Error::AuthRejected { status, message }),
        426 => fatal(Error::VersionRejected { message }),
        402 => fatal(Error::NoBalance { message }),
        300..=399 | 404 | 405 => fatal(Error::Endpoint {
            url: base_url.to_string(),
            message: format!("HTTP {status} for {}: {message}", wire::INITIATE_PATH),
        }),
        400..=499 if status != 408 => worded(status).unwrap_or_else(|| Dial::Rejected {
            reason: format!("HTTP {status}: {message}"),
            answer,
        }),
        200..=299 => match json {
            None => Dial::Uncertain {
                reason: "the answer is not JSON (the call may have been placed)".into(),
                answer: Some(answer),
            },
            Some(json) => match wire::call_id(&json) {
                Some(call_id) => Dial::Accepted { call_id, answer },
                None if wire::is_success(&json) => Dial::Uncertain {
                    reason: "the provider accepted the call but gave no call id".into(),
                    answer: Some(answer),
                },
                None => worded(status).unwrap_or(Dial::Rejected {
                    reason: message,
                    answer,
                }),
            },
        },
        // 408, 5xx and anything stranger: the request may have been acted on, unless the
        // provider says the account is empty.
        _ if mentions_balance(&message) => fatal(Error::NoBalance { message }),
        _ => Dial::Uncertain {
            reason: format!("HTTP {status} (the call may have been placed): {message}"),
            answer: Some(answer),
        },
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

/// Provider messages that mean "slow down": a refusal, so the request may be sent again.
fn mentions_rate_limit(message: &str) -> bool {
    let m = message.to_lowercase();
    [
        "too many requests",
        "rate limit",
        "ratelimit",
        "slow down",
        "频繁",
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
