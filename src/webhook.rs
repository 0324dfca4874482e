//! The CRM webhook: every final result and tag change, POSTed as JSON and signed.
//!
//! Results are never sent straight from the poller: `Store::record_poll` writes the event into
//! the outbox table in the same transaction as the result, and this module delivers what the
//! outbox owes, oldest first, with a backoff per event. So a CRM that is down, or a stepcall
//! killed mid-delivery, loses nothing: the next run delivers what is still owed. Delivery is at
//! least once; each POST carries `X-Stepcall-Event-Id` so the receiver can drop repeats, and
//! `X-Stepcall-Signature: sha256=<hex>`, an HMAC-SHA256 of the body with the shared secret.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::clock;
use crate::errors::Result;
use crate::writer::Writer;

pub const SIGNATURE_HEADER: &str = "X-Stepcall-Signature";
pub const EVENT_ID_HEADER: &str = "X-Stepcall-Event-Id";

pub struct Delivery {
    pub writer: Writer,
    pub url: String,
    pub secret: Vec<u8>,
    http: reqwest::Client,
    /// A run's first pass tries everything owed: the backoff is for a CRM that is down now,
    /// not for the one the last run saw.
    fresh: std::sync::atomic::AtomicBool,
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

impl Delivery {
    pub fn new(writer: Writer, url: String, secret: Vec<u8>) -> Delivery {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client's fixed configuration is valid");
        Delivery {
            writer,
            url,
            secret,
            http,
            fresh: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Delivers every event due now, once each. Returns (delivered, failed).
    pub async fn pass(&self) -> Result<(u64, u64)> {
        let fresh = self.fresh.swap(false, std::sync::atomic::Ordering::Relaxed);
        let due_by = if fresh {
            i64::MAX
        } else {
            clock::now().as_second()
        };
        let owed = self.writer.with(move |s| s.owed(due_by, 100)).await?;
        let (mut ok, mut failed) = (0, 0);
        for (id, event) in owed {
            let sent = self
                .http
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_ID_HEADER, id.to_string())
                .header(SIGNATURE_HEADER, sign(&self.secret, event.as_bytes()))
                .body(event)
                .send()
                .await;
            let error = match sent {
                Ok(r) if r.status().is_success() => None,
                Ok(r) => Some(format!("HTTP {}", r.status().as_u16())),
                Err(e) => Some(format!("could not deliver: {e}")),
            };
            if error.is_none() {
                ok += 1
            } else {
                failed += 1
            }
            let now = clock::now().as_second();
            self.writer
                .with(move |s| s.delivered(id, error.as_deref(), now))
                .await?;
        }
        Ok((ok, failed))
    }
}

#[cfg(test)]
mod tests {
    use super::sign;

    #[test]
    fn signature_matches_a_known_hmac() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
