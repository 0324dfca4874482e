//! What a real provider answers beyond the happy path (the API notes' "Answers seen or
//! expected"): call ids behind refusals, several calls for one request, records about other
//! calls, carriers' final words, per-number throttles and long outages. Each is produced by the
//! simulator, or by a small provider of the test's own, over HTTP on 127.0.0.1.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::harness::{
    API, KEY, Sim, Workspace, assert_nobody_twice_and_call_ids_kept, by_phone, json_lines,
};

fn status_json(ws: &Workspace) -> Value {
    ws.test()
        .args(["status", "campaign.yaml", "--json"])
        .stdout_any()
        .status(0)
        .json()
}

/// A 429 or a `success: false` that carries a call id placed the call: it is kept and the
/// contact is never sent again, in this run or the next. A 200 without an id is uncertain.
#[test]
fn a_call_id_in_any_answer_is_kept_and_that_contact_never_sent_again() {
    let sim = Sim::start(&[
        "--rate-429-placed",
        "0.3",
        "--rate-false-placed",
        "0.3",
        "--rate-no-id",
        "0.15",
        "--seed",
        "5",
    ]);
    let ws = Workspace::new();
    let phones = ws.contacts(30);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    for _ in 0..2 {
        // The second run is cron firing again: it must ring nobody.
        ws.test()
            .against(&sim)
            .args(["run", campaign])
            .stdout_any()
            .stderr_any()
            .status(0);
    }
    assert_eq!(sim.journal().len(), phones.len(), "one call per number");
    let export = ws.export(campaign.as_ref());
    assert_nobody_twice_and_call_ids_kept(&sim, &export);
    let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    let placed_behind_refusals: i64 = db
        .query_row(
            "SELECT count(*) FROM answers a JOIN attempts t ON t.id = a.attempt_id
             WHERE a.kind = 'initiate' AND t.call_id IS NOT NULL
               AND (a.http_status = 429 OR a.body LIKE '%\"success\":false%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        placed_behind_refusals >= 10,
        "the simulator answered many placed calls with a refusal ({placed_behind_refusals})"
    );
    let uncertain = export
        .iter()
        .filter(|r| r["call_state"] == "uncertain")
        .count();
    let without_id: i64 = db
        .query_row(
            "SELECT count(*) FROM answers WHERE kind = 'initiate' AND http_status = 200
             AND body NOT LIKE '%call_id%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(without_id > 0, "some answers had no call id");
    assert_eq!(
        uncertain as i64, without_id,
        "a 200 without a call id is uncertain, whatever its words"
    );
}

/// `call_ids: [a, b]` for one number: both calls are kept and polled, the contact says the
/// provider placed two calls, the JSON-lines export lists both, and `status` counts it.
#[test]
fn every_call_id_of_one_request_is_kept_polled_and_reported() {
    let sim = Sim::start(&["--rate-double", "0.3", "--seed", "9"]);
    let ws = Workspace::new();
    let phones = ws.contacts(20);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let twice: Vec<String> = sim
        .dial_counts()
        .into_iter()
        .filter(|(_, n)| *n == 2)
        .map(|(p, _)| p)
        .collect();
    assert!(!twice.is_empty(), "the simulator placed some calls twice");
    assert!(sim.dial_counts().values().all(|&n| n <= 2));

    let out = ws
        .test()
        .args(["export", campaign, "--format", "jsonl"])
        .stdout_any()
        .status(0);
    let lines = json_lines(&out.stdout());
    for entry in sim.journal() {
        let phone = entry["phone"].as_str().unwrap();
        let line = lines
            .iter()
            .find(|l| l["phone"] == phone && l["call_state"] != "duplicate")
            .unwrap();
        let attempts = line["attempts"].as_array().unwrap();
        let attempt = attempts
            .iter()
            .find(|a| a["call_id"] == entry["call_id"])
            .unwrap_or_else(|| panic!("call {} is listed: {line}", entry["call_id"]));
        assert!(
            !attempt["status_raw"].is_null(),
            "every call was polled to its result: {attempt}"
        );
        if twice.iter().any(|p| p == phone) {
            assert_eq!(attempts.len(), 2, "{line}");
            assert!(
                line["call_error"]
                    .as_str()
                    .unwrap()
                    .contains("placed 2 calls for one request"),
                "{line}"
            );
        }
    }
    assert_eq!(status_json(&ws)["several_calls"], twice.len());
    // Nobody is redialled while any of their calls lacks a result, and no call id is lost.
    assert_eq!(sim.journal().len(), phones.len() + twice.len());
}

/// A `search_callinfo` answer about another call (its `call_id` and `phones` are another's)
/// is never applied: each person gets their own transcript, and the raw answer is kept.
#[test]
fn a_record_about_another_call_is_never_applied() {
    let sim = Sim::start(&["--rate-foreign", "0.4", "--seed", "4"]);
    let ws = Workspace::new();
    ws.contacts(12);
    let campaign = ws.campaign("outcomes: { confirmed: { user_says_any: [\"知道了\"] } }\n");
    // A warning says so.
    ws.test()
        .against(&sim)
        .arg("run")
        .arg(&campaign)
        .stdout_any()
        .stderr_contains("was not applied")
        .status(0);
    let export = ws.export(&campaign);
    assert_nobody_twice_and_call_ids_kept(&sim, &export);
    for row in export.iter().filter(|r| r["call_state"] == "answered") {
        assert!(
            row["call_transcript"].contains(&format!("Call {} to confirm", row["name"])),
            "{} got someone else's transcript: {}",
            row["name"],
            row["call_transcript"]
        );
    }
    let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    let foreign: i64 = db
        .query_row(
            "SELECT count(*) FROM answers a JOIN attempts t ON t.id = a.attempt_id
             WHERE a.kind = 'search' AND json_extract(a.body, '$.call_id') != t.call_id",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(foreign > 0, "the foreign answers are kept raw");
}

/// Carriers' final words (关机, 停机, 空号, …) come without a duration: they are results,
/// mapped by the README's table, and `status_map:` maps words the table lacks (or overrides it).
#[test]
fn carriers_final_words_end_the_call_and_status_map_has_the_last_word() {
    let sim = Sim::start(&["--carrier-statuses", "--seed", "2"]);
    let ws = Workspace::new();
    ws.contacts(30);
    // A horizon: a word read as "not finished" would leave its contact `dialed` once it is
    // over. A minute, so that no load can hold a finished call's record back that long, and a
    // wrong reading still fails within a minute.
    let campaign = ws.campaign_with(
        "{ timeout: 60s, poll_interval: 50ms, poll_horizon: 60s }",
        "{ calls_per_second: 200, concurrency: 4 }",
        "status_map: { 关机: no_answer }\n",
    );
    ws.test()
        .against(&sim)
        .args(["run", campaign.to_str().unwrap()])
        .stdout_any()
        .stderr_any()
        .status(0);
    let export = ws.export(&campaign);
    let expected: HashMap<&str, &str> = [
        ("关机", "no_answer"),
        ("停机", "failed"),
        ("空号", "failed"),
        ("无法接通", "failed"),
        ("拒接", "rejected"),
        ("已挂断", "answered"),
        ("通话结束", "answered"),
        ("呼叫失败", "failed"),
        ("用户忙", "busy"),
    ]
    .into();
    let mut seen = 0;
    for row in by_phone(&export).values() {
        if row["call_status_raw"].is_empty() {
            continue;
        }
        seen += 1;
        assert_eq!(
            expected[row["call_status_raw"].as_str()],
            row["call_state"],
            "{row:?}"
        );
    }
    assert_eq!(seen, 30, "every call ended with its word");
    assert_eq!(status_json(&ws)["counts"]["dialed"], 0);
}

/// HTTP 400 "该号码呼叫过于频繁" placed nothing and concerns one number: that contact waits
/// (an hour without `redial.after`), everyone else is dialled at full rate, and the run ends 0.
#[test]
fn a_throttled_number_waits_alone_and_the_others_dial_on() {
    let ws = Workspace::new();
    let phones = ws.contacts(40);
    let held = phones[2].clone();
    let sim = Sim::start(&["--throttle", &held]);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    let now = "2026-12-01T10:00:00+08:00";
    let summary = ws
        .test()
        .against(&sim)
        .now(now)
        .args(["run", campaign, "--json"])
        .stdout_any()
        .stderr_any()
        .status(0)
        .json();
    assert_eq!(summary["held_back"], 1, "{summary}");
    assert_eq!(summary["complete"], false);
    let next = summary["next_due"].as_str().unwrap();
    assert!(next.starts_with("2026-12-01T11:00:0"), "{summary}");
    let counts = sim.dial_counts();
    assert!(!counts.contains_key(&held));
    assert_eq!(
        counts.len(),
        phones.len() - 1,
        "the others were all dialled"
    );
    let export = ws.export(campaign.as_ref());
    let row = by_phone(&export)[held.as_str()];
    assert_eq!(row["call_state"], "pending");
    assert!(row["call_error"].contains("held back until"), "{row:?}");

    // Half an hour later it still waits; an hour later it is tried again.
    ws.test()
        .against(&sim)
        .now("2026-12-01T10:30:00+08:00")
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    let tries = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT count(*) FROM attempts a JOIN contacts c ON c.id = a.contact_id WHERE c.phone = ?1",
            [&held],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(tries(&db), 1);
    ws.test()
        .against(&sim)
        .now("2026-12-01T11:00:30+08:00")
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(tries(&db), 2);
    assert!(sim.dial_counts().values().all(|&n| n == 1));
}

/// When every number is "called too often", it is the account's limit after all: after five in
/// a row the run stops (exit 70), those five wait, and the rest of the list is left alone.
#[test]
fn throttles_on_every_number_stop_the_run() {
    let sim = Sim::start(&["--rate-throttle", "1"]);
    let ws = Workspace::new();
    ws.contacts(30);
    let campaign = ws.campaign_with(API, "{ calls_per_second: 200, concurrency: 1 }", "");
    ws.test()
        .against(&sim)
        .arg("run")
        .arg(&campaign)
        .stderr_contains("the account's limit")
        .stdout_contains("5 held back")
        .status(70);
    assert!(sim.journal().is_empty());
    let status = status_json(&ws);
    assert_eq!(status["held_back"], 5, "{status}");
    assert_eq!(status["counts"]["pending"], 30);
}

/// What the test's provider does: 0 down (503 to everything, /skill_version included), 1 up
/// for /skill_version only, 2 up.
struct Outage {
    url: String,
    mode: Arc<AtomicU8>,
    initiates: Arc<AtomicUsize>,
}

async fn outage_provider() -> Outage {
    let mode = Arc::new(AtomicU8::new(0));
    let initiates = Arc::new(AtomicUsize::new(0));
    let (m, i) = (mode.clone(), initiates.clone());
    let initiate = move || {
        let n = i.fetch_add(1, Ordering::SeqCst);
        let up = m.load(Ordering::SeqCst) == 2;
        async move {
            if up {
                (
                    StatusCode::OK,
                    json!({"success": true, "call_ids": [format!("call-{n}")]}).to_string(),
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "<html>503 Service Temporarily Unavailable</html>".to_string(),
                )
            }
        }
    };
    let m = mode.clone();
    let version = move || {
        let up = m.load(Ordering::SeqCst) >= 1;
        async move {
            if up {
                (
                    StatusCode::OK,
                    json!({"skill_version": "1.0.0"}).to_string(),
                )
            } else {
                (StatusCode::BAD_GATEWAY, "<html>502</html>".to_string())
            }
        }
    };
    let search = || async {
        json!({"success": true, "call_status": "completed", "duration_seconds": 30}).to_string()
    };
    let app = Router::new()
        .route(stepcall::INITIATE_PATH, post(initiate))
        .route(stepcall::SEARCH_PATH, post(search))
        .route(stepcall::SKILL_VERSION_PATH, get(version));
    let url = crate::harness::serve(app).await;
    Outage {
        url,
        mode,
        initiates,
    }
}

/// A provider that answers 5xx to everything for hours costs at most 10 uncertain contacts in
/// the first run (calls in flight included), none in a run that finds it still down, and at
/// most one in a run that finds it half up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_costs_ten_uncertain_contacts_then_at_most_one_a_run() {
    let provider = outage_provider().await;
    let ws = Workspace::new();
    let phones = ws.contacts(60);
    let campaign = ws.campaign_with(API, "{ calls_per_second: 500, concurrency: 8 }", "");
    let run = crate::harness::runner(&ws, &provider.url, &campaign, KEY);
    let uncertain = |ws: &Workspace| -> i64 {
        let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
        db.query_row(
            "SELECT count(*) FROM contacts WHERE state = 'uncertain'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };

    let once = run.clone();
    tokio::task::spawn_blocking(move || {
        once()
            .stdout_contains("not dialled yet")
            .stderr_any()
            .status(70)
    })
    .await
    .unwrap();
    let first = uncertain(&ws);
    assert!(
        (1..=10).contains(&first),
        "{first} uncertain after the first run"
    );

    for _ in 0..3 {
        // Cron fires again and again while the provider is still down: nothing is sent.
        let before = provider.initiates.load(Ordering::SeqCst);
        let once = run.clone();
        tokio::task::spawn_blocking(move || {
            once()
                .stdout_contains("not dialled yet")
                .stderr_contains("still does not answer")
                .status(70)
        })
        .await
        .unwrap();
        assert_eq!(provider.initiates.load(Ordering::SeqCst), before);
        assert_eq!(uncertain(&ws), first);
    }

    // It answers /skill_version again, but calls still fail: one request, then a stop.
    provider.mode.store(1, Ordering::SeqCst);
    let before = provider.initiates.load(Ordering::SeqCst);
    let once = run.clone();
    tokio::task::spawn_blocking(move || {
        once()
            .stdout_contains("not dialled yet")
            .stderr_any()
            .status(70)
    })
    .await
    .unwrap();
    assert_eq!(provider.initiates.load(Ordering::SeqCst), before + 1);
    assert_eq!(uncertain(&ws), first + 1);

    provider.mode.store(2, Ordering::SeqCst);
    tokio::task::spawn_blocking(move || run().stdout_any().stderr_any().status(0))
        .await
        .unwrap();
    assert_eq!(
        uncertain(&ws),
        first + 1,
        "the uncertain are never redialled"
    );
    let export = ws.export(&campaign);
    let by_phone = by_phone(&export);
    let answered = phones
        .iter()
        .filter(|p| by_phone[p.as_str()]["call_state"] == "answered")
        .count();
    assert_eq!(answered as i64 + first + 1, phones.len() as i64);
}
