//! The simulator: a stand-in for the Stepone API on loopback, for demos and tests.
//!
//! It speaks the same HTTP and JSON as the real API (through `wire`, shared with the client):
//! the key check, input validation, `call_ids` answers, records that become ready after a delay
//! with outcomes and replies decided by the seed, the number and the attempt (`routes::Person`),
//! and a short bilingual transcript. It injects faults on demand (429 with Retry-After, 500,
//! answers dropped after the call was accepted) from a seeded sequence of draws; which request
//! meets which draw follows the order requests arrive in. Every accepted call is appended to a
//! JSON-lines journal *before* the answer goes out: the journal is the ground truth a test
//! compares stepcall's database against to prove nobody was rung twice, and a simulator started
//! on an existing journal reads it back, as a provider keeps its records. Call ids are drawn
//! afresh by every process, so they never repeat across runs. Every answer carries
//! `wire::SIMULATOR_HEADER`. It never de-duplicates on `Idempotency-Key`, because the real API
//! is not known to either.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::errors::{Error, Result};
use crate::fnv::fnv1a;
use crate::provider::wire::{self, InitiateRequest, SearchRequest};

mod routes;

use routes::*;

/// The key the simulator accepts unless told otherwise. It is not a secret: it opens nothing
/// but the simulator.
pub const DEFAULT_KEY: &str = "aicall_simulator_test_key";

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub key: String,
    pub journal: Option<PathBuf>,
    /// Where every injected fault is noted (a JSON line: path, status, Retry-After) before it
    /// is answered, so a test can prove the fault it asked for was served.
    pub faults: Option<PathBuf>,
    /// Added before every answer.
    pub latency: Duration,
    /// Between accepting (and journaling) a call and answering: the window in which a client
    /// killed has placed a call it never heard about.
    pub answer_delay: Duration,
    /// About how long after acceptance a call's record is ready (0.5 to 1.5 times this).
    pub record_delay: Duration,
    /// With this, a record is ready anywhere from `record_delay` to this, evenly spread.
    pub record_delay_max: Option<Duration>,
    /// Share of requests answered 429, with `Retry-After: retry_after` when that is set.
    pub rate_429: f64,
    pub retry_after: Option<Duration>,
    /// Share of requests answered 500, 502, 503 or 504 (before anything is done).
    pub rate_500: f64,
    /// Give those 5xx answers an HTML body, as a gateway would.
    pub html_errors: bool,
    /// Share of accepted calls whose answer is cut off (the call is placed and journaled).
    pub rate_drop: f64,
    /// Share of accepted calls answered only after `slow_delay` (past a client's timeout).
    pub rate_slow: f64,
    pub slow_delay: Duration,
    /// Share of accepted calls (and of record lookups) answered with malformed JSON.
    pub rate_garbled: f64,
    /// Share of accepted calls answered with a body of several MiB.
    pub rate_huge: f64,
    /// Share of accepted calls answered 502 anyway (a gateway that lost the answer).
    pub rate_lost_5xx: f64,
    /// Share of accepted calls answered 429, with their call ids: placed all the same.
    pub rate_429_placed: f64,
    /// Share of accepted calls answered 200 `success: false` ("请求过于频繁") with their ids.
    pub rate_false_placed: f64,
    /// Share of accepted calls answered 200 `success: false` ("请求过于频繁") without an id.
    pub rate_no_id: f64,
    /// Share of accepted calls placed twice: two calls, two journal lines, `call_ids: [a, b]`.
    pub rate_double: f64,
    /// Numbers answered HTTP 400 "该号码呼叫过于频繁" (a per-number throttle; nothing placed).
    pub throttle: Vec<String>,
    /// Share of requests throttled that way.
    pub rate_throttle: f64,
    /// Share of record lookups answered with another call's record.
    pub rate_foreign: f64,
    /// Records end with a carrier's word (关机, 停机, 空号, ...) and no duration.
    pub carrier_statuses: bool,
    /// Every call ends this way (completed, no_answer, busy or failed) instead of the
    /// deterministic mix.
    pub outcome: Option<String>,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            key: DEFAULT_KEY.to_string(),
            journal: None,
            faults: None,
            latency: Duration::from_millis(20),
            answer_delay: Duration::ZERO,
            record_delay: Duration::from_secs(3),
            record_delay_max: None,
            rate_429: 0.0,
            retry_after: Some(Duration::from_secs(1)),
            rate_500: 0.0,
            html_errors: false,
            rate_drop: 0.0,
            rate_slow: 0.0,
            slow_delay: Duration::from_secs(60),
            rate_garbled: 0.0,
            rate_huge: 0.0,
            rate_lost_5xx: 0.0,
            rate_429_placed: 0.0,
            rate_false_placed: 0.0,
            rate_no_id: 0.0,
            rate_double: 0.0,
            throttle: Vec::new(),
            rate_throttle: 0.0,
            rate_foreign: 0.0,
            carrier_statuses: false,
            outcome: None,
            seed: 1,
        }
    }
}

/// A running simulator; dropping it (or `stop`) shuts the server down.
pub struct Simulator {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Simulator {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct Sim {
    config: SimConfig,
    started: Instant,
    /// Drawn afresh by every simulator process, so its call ids never repeat another's: a
    /// rehearsal stopped and resumed against a new simulator must not hand one contact's id
    /// (and so its result) to another.
    instance: [u64; 2],
    state: Mutex<SimState>,
}

struct SimState {
    draws: u64,
    accepted: u64,
    calls: HashMap<String, SimCall>,
    /// Calls placed to each number, remembered ones included.
    attempts: HashMap<String, u32>,
    journal: Option<File>,
    faults: Option<File>,
}

struct SimCall {
    phone: String,
    requirement: String,
    ready_at: Instant,
    /// Which call to this number it is, from 1.
    attempt: u32,
}

impl SimState {
    /// Counts one more call to `phone` and says which it is.
    fn attempt(&mut self, phone: &str) -> u32 {
        let n = self.attempts.entry(phone.to_string()).or_default();
        *n += 1;
        *n
    }
}

/// Starts the simulator on `addr` (port 0 picks a free one) in the current tokio runtime.
pub async fn start(addr: &str, config: SimConfig) -> Result<Simulator> {
    let bind_err = |source| Error::SimulatorBind {
        addr: addr.to_string(),
        cause: source,
    };
    let append = |path: &Option<PathBuf>| -> Result<Option<File>> {
        let Some(path) = path else { return Ok(None) };
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map(Some)
            .map_err(|source| Error::WriteFile {
                path: path.clone(),
                cause: source,
            })
    };
    let remembered = match &config.journal {
        Some(path) => remember(path)?,
        None => Vec::new(),
    };
    let journal = append(&config.journal)?;
    let faults = append(&config.faults)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    if !local.ip().is_loopback() {
        // A stand-in for a paid API, with a published key, belongs on this machine only.
        return Err(bind_err(std::io::Error::other(
            "the simulator only serves on a loopback address",
        )));
    }
    let sim = Arc::new(Sim {
        config,
        started: Instant::now(),
        instance: instance(),
        state: Mutex::new(SimState {
            draws: 0,
            accepted: 0,
            calls: HashMap::new(),
            attempts: HashMap::new(),
            journal,
            faults,
        }),
    });
    {
        let mut st = sim.state.lock().expect("simulator state");
        for (seq, call_id, phone, requirement) in remembered {
            st.accepted = st.accepted.max(seq);
            let attempt = st.attempt(&phone);
            st.calls.insert(
                call_id,
                SimCall {
                    phone,
                    requirement,
                    ready_at: Instant::now(),
                    attempt,
                },
            );
        }
    }
    let app = Router::new()
        .route(wire::INITIATE_PATH, post(initiate))
        .route(wire::SEARCH_PATH, post(search))
        .route(wire::BALANCE_PATH, get(balance))
        .route(wire::SKILL_VERSION_PATH, get(skill_version))
        .layer(axum::middleware::map_response(mark))
        .with_state(sim);
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Simulator {
        addr: local,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}

/// The calls an earlier simulator wrote to `journal`, as (seq, call id, phone, requirement):
/// a provider keeps its records when it restarts, so a rehearsal resumed against a new
/// simulator still gets the results of the calls it made before.
fn remember(journal: &std::path::Path) -> Result<Vec<(u64, String, String, String)>> {
    use std::io::BufRead;
    let file = match File::open(journal) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(cause) => {
            return Err(Error::ReadFile {
                path: journal.to_path_buf(),
                cause,
            });
        }
    };
    let mut calls = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|cause| Error::ReadFile {
            path: journal.to_path_buf(),
            cause,
        })?;
        // A line cut short by a kill is a call whose answer never went out: skipped.
        let Ok(entry) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let text = |key: &str| entry[key].as_str().map(str::to_string);
        if let (Some(seq), Some(id), Some(phone)) =
            (entry["seq"].as_u64(), text("call_id"), text("phone"))
        {
            calls.push((seq, id, phone, text("user_requirement").unwrap_or_default()));
        }
    }
    Ok(calls)
}

/// Every answer says it comes from a simulator (see `wire::SIMULATOR_HEADER`).
async fn mark(mut response: Response) -> Response {
    response.headers_mut().insert(
        wire::SIMULATOR_HEADER,
        header::HeaderValue::from_static("1"),
    );
    response
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn refuse(status: StatusCode, message: &str) -> Response {
    answer(status, json!({"success": false, "message": message}))
}

/// 128 bits no other simulator process draws: the standard library's per-process random hash
/// keys, mixed with the process id and the time.
fn instance() -> [u64; 2] {
    use std::hash::{BuildHasher, Hasher};
    let draw = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish()
    };
    [draw(1), draw(2)]
}

/// A call id shaped like a UUID (version 4, variant a): 60 bits of the process's `instance`,
/// then the call's sequence number masked by the rest of it, so ids are distinct within a
/// process by construction and across processes by the draw.
fn call_id(instance: [u64; 2], n: u64) -> String {
    let [a, b] = instance;
    let tail = (n ^ b) & 0xffff_ffff_ffff;
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        ((n >> 48) ^ (b >> 48)) & 0xfff,
        tail
    )
}

/// A deterministic number in [0, 1) from the seed and a counter.
fn unit(seed: u64, n: u64) -> f64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Sim {
    /// The key and protocol checks every endpoint makes.
    fn check(&self, headers: &HeaderMap) -> std::result::Result<(), Response> {
        let key = headers
            .get(wire::API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if key != self.config.key {
            return Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid or missing API key",
            ));
        }
        if let Some(version) = headers
            .get(wire::SKILL_VERSION_HEADER)
            .and_then(|v| v.to_str().ok())
            && !version.starts_with("1.")
        {
            return Err(refuse(
                StatusCode::UPGRADE_REQUIRED,
                "unsupported skill version",
            ));
        }
        Ok(())
    }

    /// A fault to inject now at `path`, if the dice say so, noted before it is answered.
    fn fault(&self, path: &str) -> Option<Response> {
        let response = self.draw_fault()?;
        let mut st = self.state.lock().expect("simulator state");
        if let Some(faults) = st.faults.as_mut() {
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok());
            let line = json!({
                "path": path,
                "status": response.status().as_u16(),
                "retry_after": retry_after,
            });
            // Best effort: a fault not noted is still a fault served.
            let _ = writeln!(faults, "{line}").and_then(|()| faults.flush());
        }
        Some(response)
    }

    fn draw_fault(&self) -> Option<Response> {
        let (a, b) = {
            let mut st = self.state.lock().expect("simulator state");
            st.draws += 2;
            (
                unit(self.config.seed, st.draws - 1),
                unit(self.config.seed, st.draws),
            )
        };
        if a < self.config.rate_429 {
            let mut response = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests, slow down",
            );
            if let Some(wait) = self.config.retry_after {
                let secs = wait.as_secs_f64();
                let value = if secs.fract() == 0.0 {
                    format!("{secs:.0}")
                } else {
                    format!("{secs:.3}")
                };
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    value.parse().expect("a number is a header value"),
                );
            }
            return Some(response);
        }
        if b >= self.config.rate_500 {
            return None;
        }
        let status = [500, 502, 503, 504][(b * 1e6) as usize % 4];
        let status = StatusCode::from_u16(status).expect("a valid status");
        Some(if self.config.html_errors {
            let page = format!(
                "<html><head><title>{status}</title></head><body><h1>{status}</h1><hr>nginx</body></html>"
            );
            (status, [(header::CONTENT_TYPE, "text/html")], page).into_response()
        } else {
            refuse(status, "internal server error")
        })
    }

    /// How the answer to an accepted call goes wrong, if it does.
    fn mishap(&self, draw: f64) -> Option<Mishap> {
        let c = &self.config;
        let mut edge = 0.0;
        for (share, mishap) in [
            (c.rate_drop, Mishap::Reset),
            (c.rate_slow, Mishap::Slow),
            (c.rate_garbled, Mishap::Garbled),
            (c.rate_huge, Mishap::Huge),
            (c.rate_lost_5xx, Mishap::LostBehindGateway),
            (c.rate_429_placed, Mishap::TooManyButPlaced),
            (c.rate_false_placed, Mishap::FalseButPlaced),
            (c.rate_no_id, Mishap::NoId),
        ] {
            edge += share;
            if draw < edge {
                return Some(mishap);
            }
        }
        None
    }
}

fn valid_number(phone: &str) -> bool {
    let digits = phone.bytes().all(|b| b.is_ascii_digit());
    let mobile =
        phone.len() == 11 && phone.starts_with('1') && matches!(phone.as_bytes()[1], b'3'..=b'9');
    let landline = phone.starts_with('0') && (10..=12).contains(&phone.len());
    digits && (mobile || landline)
}

#[cfg(test)]
mod tests {
    use super::{unit, valid_number};

    #[test]
    fn number_rules_match_the_api_notes() {
        assert!(valid_number("13800138000"));
        assert!(valid_number("01065529988"));
        assert!(!valid_number("12800138000"));
        assert!(!valid_number("1380013800"));
        assert!(!valid_number("+8613800138000"));
    }

    #[test]
    fn draws_are_deterministic_and_spread() {
        assert_eq!(unit(7, 3), unit(7, 3));
        let below: usize = (0..10_000).filter(|&n| unit(1, n) < 0.3).count();
        assert!((2700..3300).contains(&below), "{below}");
    }
}
