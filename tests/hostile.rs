//! A provider that misbehaves in every way we can produce: the run still finishes with every
//! contact accounted for, nobody rung twice, and only provable refusals retried.

use crate::harness::{Sim, Workspace, assert_nobody_twice_and_call_ids_kept, by_phone};

const FINAL: [&str; 5] = ["answered", "no_answer", "busy", "failed", "uncertain"];

/// The checks every hostile run must pass; returns how many contacts ended uncertain.
fn accounted_for(sim: &Sim, ws: &Workspace, phones: &[String]) -> usize {
    let export = ws.export(&ws.path("campaign.yaml"));
    assert_nobody_twice_and_call_ids_kept(sim, &export);
    let counts = sim.dial_counts();
    let by_phone = by_phone(&export);
    for phone in phones {
        let row = by_phone[phone.as_str()];
        assert!(
            FINAL.contains(&row["call_state"].as_str()),
            "{phone} ended {row:?}"
        );
        if row["call_state"] == "uncertain" {
            assert!(
                !row["call_error"].is_empty(),
                "an uncertain contact says why: {row:?}"
            );
        }
    }
    let not_dialled: Vec<&String> = phones
        .iter()
        .filter(|p| !counts.contains_key(p.as_str()))
        .collect();
    for phone in not_dialled {
        assert_eq!(
            by_phone[phone.as_str()]["call_state"],
            "uncertain",
            "{phone} was never accepted, so only a 5xx explains it"
        );
    }
    export
        .iter()
        .filter(|r| r["call_state"] == "uncertain")
        .count()
}

#[test]
fn every_fault_at_once_loses_and_duplicates_nothing() {
    let sim = Sim::start(&[
        "--rate-429",
        "0.15",
        "--retry-after",
        "10ms",
        "--rate-500",
        "0.1",
        "--html-errors",
        "--rate-drop",
        "0.05",
        "--rate-slow",
        "0.05",
        "--slow-delay",
        "1h",
        "--rate-garbled",
        "0.05",
        "--rate-huge",
        "0.03",
        "--rate-lost-5xx",
        "0.05",
        "--seed",
        "7",
    ]);
    let ws = Workspace::new();
    let phones = ws.contacts(80);
    // A slow answer comes an hour late, far past the timeout; every other answer comes at
    // once, far within it, however loaded the machine: only the faults make contacts uncertain.
    ws.campaign_with(
        "{ timeout: 10s, poll_interval: 50ms }",
        "{ calls_per_second: 500, concurrency: 8 }",
        "",
    );
    ws.test()
        .against(&sim)
        .args(["run", "campaign.yaml"])
        .stdout_any()
        .stderr_any()
        .status(0);

    let uncertain = accounted_for(&sim, &ws, &phones);
    assert!(uncertain > 0, "some answers were lost on the way");
    assert!(
        uncertain < 40,
        "most calls went through ({uncertain} uncertain)"
    );
}

#[test]
fn a_429_storm_without_retry_after_backs_off_and_finishes() {
    let sim = Sim::start(&["--rate-429", "0.2", "--no-retry-after", "--seed", "3"]);
    let ws = Workspace::new();
    let phones = ws.contacts(12);
    let campaign = ws.campaign("");
    ws.test()
        .against(&sim)
        .arg("run")
        .arg(&campaign)
        .stdout_any()
        .stderr_contains("HTTP 429")
        .status(0);
    assert_eq!(
        accounted_for(&sim, &ws, &phones),
        0,
        "a refusal is never uncertain"
    );
    assert_eq!(sim.journal().len(), 12);
}

#[test]
fn failing_polls_are_asked_again_until_every_result_is_in() {
    let sim = Sim::start(&["--rate-500", "0.3", "--rate-garbled", "0.2", "--seed", "11"]);
    let ws = Workspace::new();
    let phones = ws.contacts(20);
    let campaign = ws.campaign("");
    ws.test()
        .against(&sim)
        .args(["run", campaign.to_str().unwrap()])
        .stdout_any()
        .stderr_any()
        .status(0);
    accounted_for(&sim, &ws, &phones);
    let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    let failed_polls: i64 = db
        .query_row(
            "SELECT count(*) FROM answers WHERE kind = 'search' AND (http_status >= 500 OR body NOT LIKE '{%}')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(failed_polls > 0, "some polls failed");
    let (with_id, with_result): (i64, i64) = db
        .query_row(
            "SELECT count(call_id), count(status_raw) FROM attempts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(with_id > 0);
    assert_eq!(
        with_result, with_id,
        "every call with an id got its result in the end"
    );
}
