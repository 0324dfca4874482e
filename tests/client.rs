//! The client sorts every answer the provider can give into the one safe reading, over real
//! HTTP: only a refusal that proves the provider did not take the request may be retried.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::json;
use stepcall::ApiKey;
use stepcall::Error;
use stepcall::{Client, Dial};
use stepcall::{INITIATE_PATH, InitiateRequest};

use crate::harness::Workspace;

/// Serves `status`, `headers` and `body` for every initiate_call; returns the base URL.
async fn serve(
    status: u16,
    headers: &[(&'static str, &'static str)],
    body: String,
    delay: Duration,
) -> String {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(*k, v.parse().unwrap());
    }
    let answer = move || {
        let (map, body) = (map.clone(), body.clone());
        async move {
            tokio::time::sleep(delay).await;
            (StatusCode::from_u16(status).unwrap(), map, body)
        }
    };
    let app = Router::new().route(INITIATE_PATH, post(answer));
    crate::harness::serve(app).await
}

fn request() -> InitiateRequest {
    InitiateRequest {
        phones: "13800138000".into(),
        user_requirement: Some("hi".into()),
        options: Default::default(),
    }
}

/// A request timeout that bounds hangs only: an answer on loopback that a loaded machine held
/// back this long would be read as a timeout, not as the answer under test.
const GENEROUS: Duration = Duration::from_secs(60);

async fn dial(url: &str, timeout: Duration) -> Dial {
    Client::new(url, ApiKey::new("aicall_k3y_for_tests"), timeout)
        .initiate(&request(), "idem")
        .await
}

async fn answer(status: u16, body: serde_json::Value) -> Dial {
    dial(
        &serve(status, &[], body.to_string(), Duration::ZERO).await,
        GENEROUS,
    )
    .await
}

#[tokio::test]
async fn call_ids_call_id_and_provider_call_id_at_top_level_and_under_data() {
    for body in [
        json!({"success": true, "call_ids": ["id-1"]}),
        json!({"success": true, "call_id": "id-1"}),
        json!({"success": true, "provider_call_id": "id-1"}),
        json!({"success": true, "data": {"call_ids": ["id-1"]}}),
        json!({"success": true, "data": {"call_id": "id-1"}}),
        json!({"success": true, "data": {"provider_call_id": "id-1"}}),
        json!({"success": true, "call_ids": ["id-1"], "message": "placed; remaining balance 9.50"}),
    ] {
        match answer(200, body.clone()).await {
            Dial::Accepted { call_ids, .. } => assert_eq!(call_ids, ["id-1"], "{body}"),
            other => panic!("{body} was read as {other:?}"),
        }
    }
}

/// A call id anywhere in an answer means the call was placed, whatever the status, `success`
/// and message say: the contact must never be sent again.
#[tokio::test]
async fn a_call_id_wins_over_every_status_and_message() {
    for (status, body) in [
        (
            429,
            json!({"success": false, "message": "too many requests", "call_ids": ["id-1"]}),
        ),
        (
            200,
            json!({"success": false, "message": "请求过于频繁", "call_id": "id-1"}),
        ),
        (
            200,
            json!({"success": false, "message": "请求过于频繁", "data": {"call_ids": ["id-1"]}}),
        ),
        (
            400,
            json!({"success": false, "message": "该号码呼叫过于频繁", "provider_call_id": "id-1"}),
        ),
        (
            500,
            json!({"success": false, "message": "internal error", "call_ids": ["id-1"]}),
        ),
        (503, json!({"success": false, "data": {"call_id": "id-1"}})),
    ] {
        match answer(status, body.clone()).await {
            Dial::Accepted { call_ids, .. } => assert_eq!(call_ids, ["id-1"], "{status} {body}"),
            other => panic!("HTTP {status} {body} was read as {other:?}"),
        }
    }
    match answer(
        429,
        json!({"success": false, "data": [{"call_id": "id-1"}]}),
    )
    .await
    {
        Dial::Accepted { call_ids, .. } => assert_eq!(call_ids, ["id-1"]),
        other => panic!("an id in a list under data: {other:?}"),
    }
    // An id stepcall cannot read is still a call that may have been placed: never "not sent".
    for body in [
        json!({"success": false, "call_id": "x".repeat(300)}),
        json!({"success": false, "result": {"call_ids": [{"id": 7}]}}),
    ] {
        let got = answer(429, body.clone()).await;
        assert!(
            matches!(got, Dial::Uncertain { .. }),
            "429 {body} read as {got:?}"
        );
    }
    match answer(429, json!({"call_ids": ["id-1"]})).await {
        Dial::Accepted { slow_down, .. } => {
            assert!(
                slow_down.is_some(),
                "a 429 slows the dialing down even when it placed the call"
            )
        }
        other => panic!("{other:?}"),
    }
    match answer(200, json!({"success": true, "call_ids": ["a", "b"]})).await {
        Dial::Accepted { call_ids, .. } => assert_eq!(call_ids, ["a", "b"], "both calls are kept"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn only_a_429_or_no_connection_may_be_retried() {
    let url = serve(
        429,
        &[("retry-after", "2")],
        json!({"success": false}).to_string(),
        Duration::ZERO,
    )
    .await;
    match dial(&url, GENEROUS).await {
        Dial::NotSent { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("429 read as {other:?}"),
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    assert!(
        matches!(dial(&url, GENEROUS).await, Dial::NotSent { .. }),
        "connection refused"
    );
}

#[tokio::test]
async fn anything_that_may_have_reached_the_provider_is_uncertain() {
    let cases: Vec<(u16, String)> = vec![
        (408, String::new()),
        (
            500,
            "<html><body>Internal Server Error</body></html>".into(),
        ),
        (
            502,
            json!({"success": false, "message": "upstream error"}).to_string(),
        ),
        (
            503,
            json!({"success": false, "message": "busy"}).to_string(),
        ),
        (504, "<html>Gateway Timeout</html>".into()),
        (200, "{not json".into()),
        (200, json!({"success": true, "message": "ok"}).to_string()),
        (200, "x".repeat(2 << 20)),
        // Whatever the words of a 2xx without a call id say, the call may have been placed.
        (
            200,
            json!({"success": false, "message": "请求过于频繁"}).to_string(),
        ),
        (
            200,
            json!({"success": false, "message": "Too many requests, slow down"}).to_string(),
        ),
        (
            200,
            json!({"success": false, "message": "number is blocked"}).to_string(),
        ),
        // A 429 whose answer could not be read may have held a call id.
        (429, "y".repeat(2 << 20)),
    ];
    for (status, body) in cases {
        let url = serve(status, &[], body.clone(), Duration::ZERO).await;
        let got = dial(&url, GENEROUS).await;
        assert!(
            matches!(got, Dial::Uncertain { .. }),
            "HTTP {status} {:.40} read as {got:?}",
            body
        );
    }
    let slow = serve(
        200,
        &[],
        json!({"success": true, "call_ids": ["late"]}).to_string(),
        Duration::from_secs(3),
    )
    .await;
    assert!(
        matches!(
            dial(&slow, Duration::from_millis(300)).await,
            Dial::Uncertain { .. }
        ),
        "a timeout"
    );
}

/// A 4xx saying the number is called too often placed nothing, and concerns that number only.
#[tokio::test]
async fn a_per_number_throttle_holds_back_that_number_only() {
    for body in [
        json!({"success": false, "message": "该号码呼叫过于频繁"}),
        json!({"success": false, "message": "呼叫频次超限"}),
        json!({"success": false, "message": "请求过于频繁"}),
        json!({"success": false, "message": "this number is called too often"}),
    ] {
        let got = answer(400, body.clone()).await;
        assert!(
            matches!(got, Dial::Throttled { .. }),
            "400 {body} read as {got:?}"
        );
    }
}

#[tokio::test]
async fn refusals_are_rejected_and_account_problems_are_fatal() {
    let rejected = [
        (
            400,
            json!({"success": false, "message": "invalid phone number"}),
        ),
        (
            400,
            json!({"success": false, "message": "insufficient parameters"}),
        ),
    ];
    for (status, body) in rejected {
        let got = answer(status, body.clone()).await;
        assert!(
            matches!(got, Dial::Rejected { .. }),
            "{status} {body} read as {got:?}"
        );
    }
    let fatal = [
        (401, json!({"success": false, "message": "bad key"}), 77),
        (403, json!({"success": false}), 77),
        (426, json!({"success": false}), 76),
        (402, json!({"success": false}), 69),
        (400, json!({"success": false, "message": "余额不足"}), 69),
        (404, json!({"detail": "Not Found"}), 78),
        (
            403,
            json!({"success": false, "message": "insufficient balance"}),
            69,
        ),
    ];
    for (status, body, code) in fatal {
        match answer(status, body.clone()).await {
            Dial::Fatal { error, .. } => {
                assert_eq!(error.exit_code(), code, "{status} {body}: {error}")
            }
            other => panic!("{status} {body} read as {other:?}"),
        }
    }
    // Behind a 2xx or a 5xx the same words stop the run, but the call may have been placed.
    let uncertain_and_fatal = [
        (
            200,
            json!({"success": false, "message": "insufficient balance"}),
            69,
        ),
        (
            200,
            json!({"success": false, "message": "Invalid API key"}),
            77,
        ),
        (500, json!({"success": false, "message": "余额不足"}), 69),
    ];
    for (status, body, code) in uncertain_and_fatal {
        match answer(status, body.clone()).await {
            Dial::Uncertain {
                stop: Some(error), ..
            } => assert_eq!(error.exit_code(), code, "{status} {body}: {error}"),
            other => panic!("{status} {body} read as {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_key_echoed_by_the_provider_is_blanked_before_anyone_sees_it() {
    let body = json!({"success": false, "message": "unknown key aicall_k3y_for_tests"}).to_string();
    let url = serve(401, &[], body, Duration::ZERO).await;
    match dial(&url, GENEROUS).await {
        Dial::Fatal {
            error: error @ Error::AuthRejected { .. },
            answer,
        } => {
            assert!(!error.to_string().contains("k3y"), "{error}");
            assert!(!answer.unwrap().body.contains("k3y"));
        }
        other => panic!("{other:?}"),
    }
    // The same key in the forms JSON may escape it: unicode escapes, an escaped slash, and
    // inside JSON held in a string. The message read from such an answer must not hold it
    // either.
    for body in [
        r#"{"success": false, "message": "unknown key aicall\u005fk3y\u005ffor\u005ftests"}"#.to_string(),
        r#"{"success": false, "message": "bad \u0061icall_k3y_for_tests"}"#.to_string(),
        json!({"success": false, "message": "denied",
            "provider_response": json!({"echo": "aicall_k3y_for_tests"}).to_string().replace('_', "\\u005f")})
        .to_string(),
    ] {
        let url = serve(401, &[], body.clone(), Duration::ZERO).await;
        match dial(&url, GENEROUS).await {
            Dial::Fatal { error, answer } => {
                let stored = answer.unwrap().body;
                let decoded = serde_json::from_str::<serde_json::Value>(&stored).unwrap();
                let deep = decoded["provider_response"]
                    .as_str()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                for text in [error.to_string(), stored.clone(), decoded.to_string(), deep] {
                    assert!(!text.contains("k3y"), "{body} left the key in {text}");
                }
            }
            other => panic!("{body}: {other:?}"),
        }
    }
}

/// A provider that takes three calls, then gives `status` to every call until `fixed` is set.
struct Flaky {
    url: String,
    fixed: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<AtomicUsize>,
    accepted: Arc<std::sync::Mutex<Vec<String>>>,
}

async fn flaky(status: u16, message: &'static str) -> Flaky {
    let fixed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let requests = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (f, r, a) = (fixed.clone(), requests.clone(), accepted.clone());
    let initiate = move |body: axum::Json<serde_json::Value>| {
        let n = r.fetch_add(1, Ordering::SeqCst);
        let ok = n < 3 || f.load(Ordering::SeqCst);
        if ok {
            a.lock()
                .unwrap()
                .push(body["phones"].as_str().unwrap().to_string());
        }
        async move {
            if ok {
                (
                    StatusCode::OK,
                    json!({"success": true, "call_ids": [format!("call-{n}")]}).to_string(),
                )
            } else {
                (
                    StatusCode::from_u16(status).unwrap(),
                    json!({"success": false, "message": message}).to_string(),
                )
            }
        }
    };
    let search = || async {
        json!({"success": true, "call_status": "completed", "duration_seconds": 30}).to_string()
    };
    let app = Router::new()
        .route(INITIATE_PATH, post(initiate))
        .route(stepcall::SEARCH_PATH, post(search));
    let url = crate::harness::serve(app).await;
    Flaky {
        url,
        fixed,
        requests,
        accepted,
    }
}

/// Fatal answers stop the run within the requests already in flight, say why and how to fix
/// it, keep the calls already placed, and the next run after the fix resumes normally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_answers_stop_the_run_and_the_next_run_resumes() {
    for (status, message, code, says) in [
        (402, "余额不足", 69, "no credit left"),
        (401, "invalid api key", 77, "rejected the API key"),
        (403, "forbidden", 77, "rejected the API key"),
        (426, "upgrade required", 76, "protocol version"),
    ] {
        let provider = flaky(status, message).await;
        let ws = Workspace::new();
        let phones = ws.contacts(30);
        let campaign = ws.campaign("");
        let run = crate::harness::runner(&ws, &provider.url, &campaign, "k");
        let first = run.clone();
        tokio::task::spawn_blocking(move || {
            first()
                .stdout_any()
                .stderr_contains(says)
                .stderr_contains("run the same command again")
                .status(code)
        })
        .await
        .unwrap();
        let requests = provider.requests.load(Ordering::SeqCst);
        assert!(
            requests <= 3 + 4,
            "HTTP {status}: at most the calls in flight after the first refusal ({requests})"
        );
        let export = ws.export(&campaign);
        assert_eq!(
            export.iter().filter(|r| !r["call_id"].is_empty()).count(),
            3,
            "HTTP {status}: the placed calls are kept"
        );

        provider.fixed.store(true, Ordering::SeqCst);
        tokio::task::spawn_blocking(move || run().stdout_any().stderr_any().status(0))
            .await
            .unwrap();
        let mut accepted = provider.accepted.lock().unwrap().clone();
        accepted.sort();
        let mut expected = phones.clone();
        expected.sort();
        assert_eq!(
            accepted, expected,
            "HTTP {status}: every contact dialled exactly once across both runs"
        );
    }
}
