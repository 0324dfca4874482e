//! The CRM webhook: every final result and tag change, POSTed as JSON and signed.
//!
//! Results are never sent straight from the poller: `Store::record_poll` writes the event into
//! the outbox table in the same transaction as the result, and this module delivers what the
//! outbox owes, oldest first, with a backoff per event. So a CRM that is down, or a stepcall
//! killed mid-delivery, loses nothing: the next run delivers what is still owed. Delivery is at
//! least once, signed as Standard Webhooks v1 so a CRM checks it with a stock library:
//! `webhook-id` (the database's random id and the event's number, so ids never repeat across
//! campaigns or databases; a retry keeps its id), `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed by the secret
//! (`whsec_…` is base64, anything else its bytes). The older `X-Stepcall-Signature` header is
//! sent too, for receivers written against it.
//!
//! A CRM never holds the run hostage: each delivery has a timeout, at most `MAX_IN_FLIGHT` run
//! at once, a CRM that fails (timeout, 5xx, 429) is left alone for a while (its Retry-After, or
//! a backoff) while its events stay owed, a 410 Gone switches deliveries to that URL off, and a
//! stopped run gives deliveries on the wire the same grace as calls.

use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clock;
use crate::engine::stop::Stop;
use crate::errors::{Error, Result};
use crate::state::writer::Writer;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// Older headers, still sent: an HMAC of the body alone, and the event id.
pub const LEGACY_SIGNATURE_HEADER: &str = "X-Stepcall-Signature";
pub const LEGACY_EVENT_ID_HEADER: &str = "X-Stepcall-Event-Id";

/// Deliveries on the wire at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// The meta key that remembers (by digest) a URL which answered 410 Gone.
const GONE: &str = "webhook_gone";

/// The signing key a secret stands for: a `whsec_` secret is base64, any other its bytes.
pub fn signing_key(secret: &str) -> std::result::Result<Vec<u8>, String> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("it starts with whsec_ but the rest is not base64 ({e})")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under `key` (Standard Webhooks).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret` (the older header).
pub fn legacy_sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The URL as logs show it: scheme and host only. Robots carry their secret in the query
/// (WeCom's `?key=`, DingTalk's `?access_token=`) or in the path (Feishu's
/// `/open-apis/bot/v2/hook/<token>`), and a URL may hold `user:password@`.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "(the webhook URL)".to_string(),
    }
}

/// What the database keeps of a URL that answered 410: its digest, never the URL (with the
/// robot's secret in it).
fn fingerprint(url: &str) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(url.as_bytes()))
}

pub struct Delivery {
    writer: Writer,
    url: String,
    key: Vec<u8>,
    legacy_secret: Vec<u8>,
    /// The database's random id: with the event's number, an id no other database gives.
    database_id: String,
    http: reqwest::Client,
    /// A run's first pass tries everything owed: the backoff is for a CRM that is down now,
    /// not for the one the last run saw.
    fresh: std::sync::atomic::AtomicBool,
    /// After a pass that found the CRM failing, none is started before this.
    resting: Mutex<(Option<Instant>, u32)>,
    /// The URL answered 410 Gone: nothing more goes to it.
    gone: std::sync::atomic::AtomicBool,
    /// How long deliveries on the wire may finish once the run stops.
    pub grace: Duration,
}

/// How one delivery ended.
enum Sent {
    Delivered,
    /// Failed; the CRM may be fine (a 4xx about this event).
    Refused(String),
    /// Failed in a way that says the CRM is down or busy: rest, `for` long when it said so.
    Unavailable {
        error: String,
        wait: Option<Duration>,
    },
    Gone(String),
}

impl Delivery {
    pub fn new(
        writer: Writer,
        url: String,
        secret: &str,
        database_id: String,
        timeout: Duration,
    ) -> std::result::Result<Delivery, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's fixed configuration is valid");
        Ok(Delivery {
            writer,
            url,
            key: signing_key(secret)?,
            legacy_secret: secret.as_bytes().to_vec(),
            database_id,
            http,
            fresh: std::sync::atomic::AtomicBool::new(true),
            resting: Mutex::new((None, 0)),
            gone: std::sync::atomic::AtomicBool::new(false),
            grace: crate::engine::stop::GRACE,
        })
    }

    /// The `webhook-id` of outbox event `id`.
    pub fn event_id(&self, id: i64) -> String {
        format!("msg_{}_{id}", self.database_id)
    }

    /// Delivers the events due now, once each, `MAX_IN_FLIGHT` at a time, until they are
    /// done, the CRM fails, or `stop` is raised (then the deliveries on the wire get `grace`).
    /// Returns (delivered, failed).
    pub async fn pass(&self, stop: &Stop) -> Result<(u64, u64)> {
        if self.gone.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok((0, 0));
        }
        let url = fingerprint(&self.url);
        let gone = self.writer.with(move |s| s.meta(GONE)).await?;
        if gone.as_deref() == Some(url.as_str()) {
            self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "the CRM webhook {} answered 410 Gone before: results stay owed, none is sent; a new results.webhook.url sends them",
                shown(&self.url)
            );
            return Ok((0, 0));
        }
        let fresh = self.fresh.swap(false, std::sync::atomic::Ordering::Relaxed);
        if !fresh
            && let (Some(until), _) = *self.resting.lock().expect("resting")
            && Instant::now() < until
        {
            return Ok((0, 0));
        }
        let due_by = if fresh {
            i64::MAX
        } else {
            clock::now().as_second()
        };
        let owed = self.writer.with(move |s| s.owed(due_by, 100)).await?;
        let mut owed = owed.into_iter();
        let mut wire: JoinSet<(i64, u32, Sent)> = JoinSet::new();
        let (mut ok, mut failed) = (0, 0);
        let mut unavailable: Option<Option<Duration>> = None;
        let mut stopping: Option<Instant> = stop.is_raised().then(|| Instant::now() + self.grace);
        loop {
            while stopping.is_none()
                && unavailable.is_none()
                && wire.len() < MAX_IN_FLIGHT
                && let Some((id, tries, event)) = owed.next()
            {
                let request = self.request(id, event);
                wire.spawn(async move { (id, tries, classify(request.send().await)) });
            }
            if wire.is_empty() {
                break;
            }
            let deadline = stopping.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
            let joined = tokio::select! {
                joined = wire.join_next() => joined,
                () = stop.raised(), if stopping.is_none() => {
                    stopping = Some(Instant::now() + self.grace);
                    continue;
                }
                () = tokio::time::sleep_until(deadline) => {
                    // Cut off: those events stay owed for the next run.
                    wire.abort_all();
                    break;
                }
            };
            let Some(Ok((id, tries, sent))) = joined else {
                continue;
            };
            let (error, wait) = match sent {
                Sent::Delivered => (None, None),
                Sent::Refused(error) => (Some(error), None),
                Sent::Unavailable { error, wait } => {
                    unavailable = Some(unavailable.flatten().max(wait));
                    (Some(error), wait)
                }
                Sent::Gone(error) => {
                    self.gone.store(true, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(
                        "the CRM webhook {} answered 410 Gone: deliveries to it are switched off, results stay owed; set a new results.webhook.url to send them",
                        shown(&self.url)
                    );
                    let url = fingerprint(&self.url);
                    self.writer.with(move |s| s.set_meta(GONE, &url)).await?;
                    unavailable = Some(None);
                    (Some(error), None)
                }
            };
            if error.is_none() {
                ok += 1;
            } else {
                failed += 1;
            }
            let now = clock::now().as_second();
            // Due again after the CRM's Retry-After, else after a backoff up to five minutes.
            let retry_in = wait.map_or_else(
                || clock::backoff(tries, Duration::from_secs(300)),
                |w| w.max(Duration::from_secs(1)),
            );
            let retry_at = now + retry_in.as_secs() as i64;
            self.writer
                .with(move |s| s.delivered(id, error.as_deref(), retry_at))
                .await?;
        }
        let mut resting = self.resting.lock().expect("resting");
        match unavailable {
            Some(wait) => {
                resting.1 += 1;
                let backoff = clock::backoff(resting.1, Duration::from_secs(60));
                resting.0 = Some(Instant::now() + wait.unwrap_or(backoff));
            }
            None => *resting = (None, 0),
        }
        Ok((ok, failed))
    }

    fn request(&self, id: i64, event: String) -> reqwest::RequestBuilder {
        let event_id = self.event_id(id);
        // The receiver compares this with its own clock (replays are refused), so it is the
        // machine's time, not a rehearsal's STEPCALL_NOW.
        let timestamp = jiff::Timestamp::now().as_second();
        self.http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &event_id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                sign(&self.key, &event_id, timestamp, &event),
            )
            .header(LEGACY_EVENT_ID_HEADER, &event_id)
            .header(
                LEGACY_SIGNATURE_HEADER,
                legacy_sign(&self.legacy_secret, event.as_bytes()),
            )
            .body(event)
    }
}

fn classify(sent: reqwest::Result<reqwest::Response>) -> Sent {
    match sent {
        Ok(r) if r.status().is_success() => Sent::Delivered,
        Ok(r) => {
            let status = r.status().as_u16();
            let error = format!("HTTP {status}");
            match status {
                410 => Sent::Gone(error),
                429 | 503 => Sent::Unavailable {
                    error,
                    wait: crate::provider::client::retry_after(&r),
                },
                500..=599 | 408 => Sent::Unavailable { error, wait: None },
                _ => Sent::Refused(error),
            }
        }
        Err(e) => Sent::Unavailable {
            error: format!("could not deliver: {}", crate::provider::client::cause(&e)),
            wait: None,
        },
    }
}

/// The webhook secret, `value` of the environment variable `env` that the campaign names,
/// checked to be a key it can sign with.
pub fn secret_from_env(env: &str, value: Option<String>) -> Result<String> {
    let secret = value.filter(|v| !v.is_empty());
    let secret = secret.ok_or_else(|| Error::WebhookSecret {
        env: env.to_string(),
        problem: "is empty or missing".into(),
    })?;
    signing_key(&secret).map_err(|problem| Error::WebhookSecret {
        env: env.to_string(),
        problem,
    })?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            legacy_sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn whsec_secrets_are_base64_and_others_their_bytes() {
        assert_eq!(signing_key("whsec_aGVsbG8=").unwrap(), b"hello");
        assert_eq!(signing_key("plain-secret").unwrap(), b"plain-secret");
        assert!(signing_key("whsec_not base64!").is_err());
    }
}
