//! The provider misbehaving: rate limits and a wrong key.

use crate::harness::{Sim, Workspace};

#[test]
fn a_429_storm_with_retry_after_loses_and_duplicates_nothing() {
    let sim = Sim::start(&["--rate-429", "0.5", "--retry-after", "20ms"]);
    let ws = Workspace::new();
    let phones = ws.contacts(30);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);

    let counts = sim.dial_counts();
    assert!(
        phones.iter().all(|p| counts.get(p) == Some(&1)),
        "each number exactly once: {counts:?}"
    );
    let export = ws.export(campaign.as_ref());
    let journal = sim.journal();
    for row in export.iter().filter(|r| r["phone"].starts_with("1380013")) {
        if row["name"] == "重复" {
            continue;
        }
        assert!(
            ["answered", "no_answer", "busy", "failed"].contains(&row["call_state"].as_str()),
            "{row:?}"
        );
        let entry = journal
            .iter()
            .find(|e| e["phone"] == row["phone"].as_str())
            .unwrap();
        assert_eq!(entry["call_id"].as_str(), Some(row["call_id"].as_str()));
        assert_eq!(row["call_attempts"], "1", "a refused try is not an attempt");
    }
    // The storm happened: dials were refused with 429 and a Retry-After, and retried.
    let refused = sim
        .faults()
        .iter()
        .filter(|f| f["path"] == stepcall::INITIATE_PATH)
        .filter(|f| f["status"] == 429 && f["retry_after"] == "0.020")
        .count();
    assert!(
        refused >= 5,
        "only {refused} dials answered 429: {:?}",
        sim.faults()
    );
}

#[test]
fn a_wrong_key_stops_the_run_with_a_clear_message_and_dials_nobody() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(10);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    let out = ws
        .test()
        .against(&sim)
        .key("aicall_wrong_key")
        .args(["run", campaign])
        .stderr_contains("rejected the API key")
        // The summary says where things stand: nobody dialled.
        .stdout_contains("0 awaiting a result, 10 not dialled yet")
        // The message says how to fix it.
        .stderr_contains("STEPONEAI_API_KEY")
        .status(77);
    assert!(
        !out.stderr().contains("aicall_wrong_key"),
        "the key is never printed"
    );
    assert!(sim.journal().is_empty());
    let status = ws
        .test()
        .args(["status", campaign, "--json"])
        .stdout_any()
        .status(0)
        .json();
    assert_eq!(
        status["counts"]["pending"], 10,
        "nobody is marked dialled: {status}"
    );

    // With the right key the same command resumes normally.
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(sim.journal().len(), 10);
}

#[test]
fn dropped_answers_make_contacts_uncertain_and_never_redialled() {
    let sim = Sim::start(&["--rate-drop", "0.3"]);
    let ws = Workspace::new();
    ws.contacts(20);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let counts = sim.dial_counts();
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    let export = ws.export(campaign.as_ref());
    let uncertain = export
        .iter()
        .filter(|r| r["call_state"] == "uncertain")
        .count();
    assert!(uncertain > 0, "some answers were dropped");
    assert!(
        export
            .iter()
            .filter(|r| r["call_state"] == "uncertain")
            .all(|r| r["call_id"].is_empty() && !r["call_error"].is_empty())
    );

    // Only on request, with a warning, are they dialled again.
    ws.test()
        .against(&sim)
        .args(["run", campaign, "--redial-uncertain"])
        .stdout_any()
        .stderr_contains("may have been rung")
        .status(0);
    assert_eq!(sim.journal().len(), 20 + uncertain);
}
