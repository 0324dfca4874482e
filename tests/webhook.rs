//! Every final result reaches the CRM, signed, through an outbox that survives a CRM outage.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use stepcall::webhook::{SIGNATURE_HEADER, sign};

use crate::harness::{KEY, Sim, Workspace, assert_exit, bin};

const SECRET: &str = "crm-shared-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_owed_while_the_crm_is_down_are_delivered_by_the_next_run() {
    let up = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let (u, r) = (up.clone(), received.clone());
    let app = Router::new().route(
        "/hooks/calls",
        post(move |headers: HeaderMap, body: String| {
            let (u, r) = (u.clone(), r.clone());
            async move {
                if !u.load(Ordering::SeqCst) {
                    return StatusCode::SERVICE_UNAVAILABLE;
                }
                let signature = headers
                    .get(SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if signature != sign(SECRET.as_bytes(), body.as_bytes()) {
                    return StatusCode::UNAUTHORIZED;
                }
                r.lock().unwrap().push(serde_json::from_str(&body).unwrap());
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crm = format!("http://{}/hooks/calls", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(5);
    let campaign = ws.campaign(&format!(
        "results: {{ webhook: {{ url: \"{crm}\", secret_env: CRM_WEBHOOK_SECRET }} }}\n"
    ));
    let (c, url, home) = (
        campaign.clone(),
        sim.url.clone(),
        ws.dir.path().to_path_buf(),
    );
    let run = move || {
        bin()
            .args(["run", c.to_str().unwrap(), "--base-url", &url])
            .env("STEPONEAI_API_KEY", KEY)
            .env("CRM_WEBHOOK_SECRET", SECRET)
            .env("HOME", &home)
            .output()
            .unwrap()
    };
    assert_exit(&tokio::task::spawn_blocking(run.clone()).await.unwrap(), 0);
    let status: serde_json::Value = serde_json::from_slice(
        &ws.stepcall(&["status", campaign.to_str().unwrap(), "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(
        status["webhook_backlog"], 5,
        "every result is owed while the CRM is down: {status}"
    );
    assert!(received.lock().unwrap().is_empty());

    up.store(true, Ordering::SeqCst);
    assert_exit(&tokio::task::spawn_blocking(run).await.unwrap(), 0);
    let status: serde_json::Value = serde_json::from_slice(
        &ws.stepcall(&["status", campaign.to_str().unwrap(), "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(status["webhook_backlog"], 0, "{status}");
    let got: HashSet<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|e| e["call_id"].as_str().unwrap().to_string())
        .collect();
    let journal: HashSet<String> = sim
        .journal()
        .iter()
        .map(|e| e["call_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, journal, "every result reached the CRM, signed");
    assert_eq!(sim.journal().len(), 5, "the second run dialled nobody");
}

#[test]
fn a_missing_webhook_secret_stops_before_any_call() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("results: { webhook: { url: \"http://127.0.0.1:9/hooks\", secret_env: CRM_WEBHOOK_SECRET_UNSET } }\n");
    let out = ws.run(&sim, &["run", campaign.to_str().unwrap()]);
    assert_exit(&out, 78);
    assert!(sim.journal().is_empty());
}
