//! Every final result reaches the CRM, signed as Standard Webhooks (checked with the
//! `standardwebhooks` crate, not our own code), through an outbox that survives a CRM outage;
//! and no CRM, however it answers, holds a run hostage.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;

use crate::harness::{LIMITS, Ran, Running, Sim, WATCHDOG, Workspace, real_provider};

const SECRET: &str = "crm-shared-secret";

/// What a CRM of the test's own saw.
#[derive(Default)]
struct Seen {
    /// Each delivery: its headers and body.
    deliveries: Mutex<Vec<(HeaderMap, String)>>,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// The query string of the last request.
    query: Mutex<Option<String>>,
}

/// How the CRM answers every delivery.
#[derive(Clone, Copy)]
enum Crm {
    Ok,
    Down,
    /// Takes the request and never answers.
    Hang,
    Gone,
    RetryAfter(u16),
}

/// A CRM on 127.0.0.1 answering `how` (switched to OK when `up` is set); returns its URL.
async fn crm(how: Crm, up: Arc<AtomicBool>, seen: Arc<Seen>) -> String {
    let app = Router::new().route(
        "/hooks/calls",
        post(
            move |query: axum::extract::RawQuery, headers: HeaderMap, body: String| {
                let (up, seen) = (up.clone(), seen.clone());
                async move {
                    seen.requests.fetch_add(1, Ordering::SeqCst);
                    *seen.query.lock().unwrap() = query.0;
                    let now = seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    seen.most_in_flight.fetch_max(now, Ordering::SeqCst);
                    let how = if up.load(Ordering::SeqCst) {
                        Crm::Ok
                    } else {
                        how
                    };
                    let answer = match how {
                        Crm::Ok => {
                            seen.deliveries.lock().unwrap().push((headers, body));
                            StatusCode::OK.into_response()
                        }
                        Crm::Down => StatusCode::SERVICE_UNAVAILABLE.into_response(),
                        Crm::Hang => {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            StatusCode::OK.into_response()
                        }
                        Crm::Gone => StatusCode::GONE.into_response(),
                        Crm::RetryAfter(status) => (
                            StatusCode::from_u16(status).unwrap(),
                            [("retry-after", "3600")],
                        )
                            .into_response(),
                    };
                    seen.in_flight.fetch_sub(1, Ordering::SeqCst);
                    answer
                }
            },
        ),
    );
    format!("{}/hooks/calls", crate::harness::serve(app).await)
}

/// The request timeout of these campaigns. A stopped run gives deliveries on the wire a grace
/// that follows it (the larger of 10 s and the timeout and 2 s): at 8 s the grace stays 10 s,
/// and a call on loopback still has far more time than it needs.
const API: &str = "{ timeout: 8s, poll_interval: 50ms }";

fn webhook_campaign(ws: &Workspace, url: &str, extra: &str) -> PathBuf {
    ws.campaign_with(
        API,
        LIMITS,
        &format!(
            "results: {{ webhook: {{ url: \"{url}\", secret_env: CRM_WEBHOOK_SECRET{extra} }} }}\n"
        ),
    )
}

/// `run <campaign> flags…` with the webhook's secret, its outputs unchecked, started.
fn spawn(
    ws: &Workspace,
    sim: &Sim,
    campaign: &std::path::Path,
    secret: &str,
    flags: &[&str],
) -> Running {
    ws.test()
        .against(sim)
        .arg("run")
        .arg(campaign)
        .args(flags)
        .env("CRM_WEBHOOK_SECRET", secret)
        .stdout_any()
        .stderr_any()
        .spawn()
}

/// Waits for `run` off the async runtime; the harness's watchdog (five minutes) fails the test
/// if it is still going by then, so a run held hostage shows as a failure, not as a stuck test.
async fn finish(run: Running, code: i32) -> Ran {
    tokio::task::spawn_blocking(move || run.status(code))
        .await
        .unwrap()
}

/// A CRM answering `how`, a simulator, and a campaign of `contacts` delivering to the CRM,
/// with `extra` in its webhook block.
async fn scene(
    how: Crm,
    contacts: usize,
    simulator: &[&str],
    extra: &str,
) -> (Arc<Seen>, Sim, Workspace, PathBuf) {
    let seen = Arc::new(Seen::default());
    let url = crm(how, Arc::default(), seen.clone()).await;
    let sim = Sim::start(simulator);
    let ws = Workspace::new();
    ws.contacts(contacts);
    let campaign = webhook_campaign(&ws, &url, extra);
    (seen, sim, ws, campaign)
}

/// One run, to its end, which is 0.
async fn run_once(ws: &Workspace, sim: &Sim, campaign: &std::path::Path, secret: &str) -> Ran {
    finish(spawn(ws, sim, campaign, secret, &[]), 0).await
}

fn backlog(ws: &Workspace, campaign: &std::path::Path) -> serde_json::Value {
    ws.test()
        .arg("status")
        .arg(campaign)
        .arg("--json")
        .stdout_any()
        .status(0)
        .json()["webhook_backlog"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_owed_while_the_crm_is_down_are_delivered_by_the_next_run() {
    let up = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let url = crm(Crm::Down, up.clone(), seen.clone()).await;
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(5);
    let campaign = webhook_campaign(&ws, &url, "");
    run_once(&ws, &sim, &campaign, SECRET).await;
    assert_eq!(
        backlog(&ws, &campaign),
        5,
        "every result is owed while the CRM is down"
    );
    assert!(seen.deliveries.lock().unwrap().is_empty());

    up.store(true, Ordering::SeqCst);
    run_once(&ws, &sim, &campaign, SECRET).await;
    assert_eq!(backlog(&ws, &campaign), 0);
    let verifier = standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec()).unwrap();
    let mut got = HashSet::new();
    for (headers, body) in seen.deliveries.lock().unwrap().iter() {
        verifier
            .verify(body.as_bytes(), headers)
            .expect("a Standard Webhooks verifier accepts the delivery");
        let event: serde_json::Value = serde_json::from_str(body).unwrap();
        got.insert(event["call_id"].as_str().unwrap().to_string());
    }
    let journal: HashSet<String> = sim
        .journal()
        .iter()
        .map(|e| e["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, journal, "every result reached the CRM, signed");
    assert_eq!(sim.journal().len(), 5, "the second run dialled nobody");
}

/// Two campaigns, two databases, one CRM: every event has its own `webhook-id`, so a CRM that
/// drops repeats drops none of them. A `whsec_` secret is base64, any other its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_ids_are_unique_across_campaigns_and_verify_with_either_kind_of_secret() {
    let seen = Arc::new(Seen::default());
    let url = crm(Crm::Ok, Arc::default(), seen.clone()).await;
    let sim = Sim::start(&[]);
    let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    for secret in [whsec, SECRET] {
        let ws = Workspace::new();
        ws.contacts(4);
        let campaign = webhook_campaign(&ws, &url, "");
        run_once(&ws, &sim, &campaign, secret).await;
    }
    let deliveries = seen.deliveries.lock().unwrap();
    assert_eq!(deliveries.len(), 8);
    let ids: HashSet<&str> = deliveries
        .iter()
        .map(|(h, _)| h["webhook-id"].to_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 8, "no id is given twice: {ids:?}");
    let by_whsec = standardwebhooks::Webhook::new(whsec).unwrap();
    let by_bytes = standardwebhooks::Webhook::from_bytes(SECRET.as_bytes().to_vec()).unwrap();
    for (n, (headers, body)) in deliveries.iter().enumerate() {
        let verifier = if n < 4 { &by_whsec } else { &by_bytes };
        verifier
            .verify(body.as_bytes(), headers)
            .unwrap_or_else(|e| panic!("delivery {n} does not verify: {e}"));
    }
}

/// A CRM that takes requests and never answers: each delivery times out, at most four are on
/// the wire at once, the run ends, and the results stay owed. A run held by the CRM would take
/// its hour; one that is not ends well within the harness's five-minute watchdog, however
/// loaded the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crm_that_never_answers_does_not_hold_the_run() {
    let (seen, sim, ws, campaign) = scene(Crm::Hang, 20, &[], ", timeout: 1s").await;
    finish(spawn(&ws, &sim, &campaign, SECRET, &[]), 0).await;
    assert!(seen.requests.load(Ordering::SeqCst) > 0);
    assert!(
        seen.most_in_flight.load(Ordering::SeqCst) <= 4,
        "{} deliveries at once",
        seen.most_in_flight.load(Ordering::SeqCst)
    );
    assert_eq!(backlog(&ws, &campaign), 20);
}

/// SIGTERM while deliveries hang ends them within the grace calls get, and exits 143: a run
/// that waited for them would take their ten-minute timeout, twice the harness's watchdog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_deliveries_within_the_grace() {
    let (seen, sim, ws, campaign) =
        scene(Crm::Hang, 12, &["--record-delay", "50ms"], ", timeout: 10m").await;
    let run = spawn(&ws, &sim, &campaign, SECRET, &[]);
    // A bound on hangs only.
    let deadline = Instant::now() + WATCHDOG;
    while seen.requests.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    run.signal(libc::SIGTERM);
    finish(run, 143).await;
    assert!(backlog(&ws, &campaign).as_u64().unwrap() > 0);
}

/// HTTP 410 Gone switches deliveries to that URL off, with a message; the results stay owed
/// and later runs send nothing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_switches_the_endpoint_off_and_the_results_stay_owed() {
    let (seen, sim, ws, campaign) = scene(Crm::Gone, 6, &[], "").await;
    let out = run_once(&ws, &sim, &campaign, SECRET).await;
    assert!(out.stderr().contains("410 Gone"), "{}", out.stderr());
    let after_first = seen.requests.load(Ordering::SeqCst);
    assert!((1..=4).contains(&after_first), "{after_first} requests");
    run_once(&ws, &sim, &campaign, SECRET).await;
    assert_eq!(seen.requests.load(Ordering::SeqCst), after_first);
    assert_eq!(backlog(&ws, &campaign), 6);
}

/// 429 and 503 with Retry-After: nothing more is sent to the CRM before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_from_the_crm_is_honoured() {
    for status in [429, 503] {
        let (seen, sim, ws, campaign) = scene(Crm::RetryAfter(status), 6, &[], "").await;
        run_once(&ws, &sim, &campaign, SECRET).await;
        let requests = seen.requests.load(Ordering::SeqCst);
        assert!(
            (1..=4).contains(&requests),
            "HTTP {status}: {requests} requests"
        );
        let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
        let (tried, waiting): (i64, i64) = db
            .query_row(
                "SELECT count(*) FILTER (WHERE tries > 0),
                        count(*) FILTER (WHERE tries > 0 AND next_unix > unixepoch() + 3000)
                 FROM outbox",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert!(
            tried > 0 && waiting == tried,
            "HTTP {status}: {waiting} of {tried} wait an hour"
        );
    }
}

/// A robot's URL carries its key in the query string (WeCom, DingTalk): it is
/// accepted, used as given, and never printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_robot_url_with_a_key_in_its_query_is_accepted_and_never_shown() {
    let seen = Arc::new(Seen::default());
    let url = crm(Crm::Ok, Arc::default(), seen.clone()).await;
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let robot = format!("{url}?key=robot-secret-0042");
    let campaign = webhook_campaign(&ws, &robot, "");
    let validate = ws
        .test()
        .arg("validate")
        .arg(&campaign)
        .stdout_any()
        .status(4);
    let out = finish(spawn(&ws, &sim, &campaign, SECRET, &["-vv"]), 0).await;
    assert_eq!(seen.deliveries.lock().unwrap().len(), 3);
    assert_eq!(
        seen.query.lock().unwrap().as_deref(),
        Some("key=robot-secret-0042")
    );
    let printed = format!(
        "{}{}{}{}",
        out.stdout(),
        out.stderr(),
        validate.stdout(),
        validate.stderr()
    );
    assert!(!printed.contains("robot-secret-0042"), "{printed}");
}

#[test]
fn a_missing_webhook_secret_stops_before_any_call() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("results: { webhook: { url: \"http://127.0.0.1:9/hooks\", secret_env: CRM_WEBHOOK_SECRET_UNSET } }\n");
    ws.test()
        .against(&sim)
        .arg("run")
        .arg(&campaign)
        .stderr_contains("CRM_WEBHOOK_SECRET_UNSET")
        .status(78);
    assert!(sim.journal().is_empty());
}

/// A rehearsal pointed at the real CRM URL can be told apart: its events say
/// `"simulated": true`, and a real run's say `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_says_whether_it_comes_from_a_rehearsal() {
    let seen = Arc::new(Seen::default());
    let url = crm(Crm::Ok, Arc::default(), seen.clone()).await;
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = webhook_campaign(&ws, &url, "");
    run_once(&ws, &sim, &campaign, SECRET).await;
    let real = real_provider().await;
    let live_ws = Workspace::new();
    live_ws.contacts(2);
    let live = webhook_campaign(&live_ws, &url, "");
    let run = live_ws
        .test()
        .provider(&real)
        .arg("run")
        .arg(&live)
        .env("CRM_WEBHOOK_SECRET", SECRET)
        .stdout_any()
        .stderr_any()
        .spawn();
    finish(run, 0).await;
    let deliveries = seen.deliveries.lock().unwrap();
    let simulated: Vec<_> = deliveries
        .iter()
        .map(|(_, body)| {
            let event: serde_json::Value = serde_json::from_str(body).unwrap();
            (
                event["call_id"].as_str().unwrap().starts_with("live-"),
                event["simulated"].clone(),
            )
        })
        .collect();
    assert_eq!(simulated.len(), 5, "{simulated:?}");
    for (live, flag) in simulated {
        assert_eq!(flag, serde_json::Value::Bool(!live), "live {live}");
    }
}
