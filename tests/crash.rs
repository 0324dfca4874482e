//! A run killed with SIGKILL mid-way and run again: nobody twice, no call id lost.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::{KEY, Sim, Workspace, assert_exit, bin};

#[test]
fn killed_mid_run_then_resumed_dials_nobody_twice_and_loses_no_call_id() {
    let sim = Sim::start(&["--answer-delay", "150ms"]);
    let ws = Workspace::new();
    let phones = ws.contacts(60);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();

    for kill_after in [8, 25] {
        let mut child = bin()
            .args(["run", campaign, "--base-url", &sim.url])
            .env("STEPONEAI_API_KEY", KEY)
            .env("HOME", ws.dir.path())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while sim.journal().len() < kill_after && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let killed_at = sim.journal().len();
    assert!(
        killed_at < 60,
        "the kills happened mid-run ({killed_at} dialled)"
    );

    let out = ws.run(&sim, &["run", campaign]);
    assert_exit(&out, 0);

    let counts = sim.dial_counts();
    assert!(
        counts.values().all(|&n| n == 1),
        "a number was dialled twice: {counts:?}"
    );
    let export = ws.export(campaign.as_ref());
    let by_phone: HashMap<&str, &HashMap<String, String>> = export
        .iter()
        .filter(|r| r["call_state"] != "duplicate")
        .map(|r| (r["phone"].as_str(), r))
        .collect();
    let mut uncertain = 0;
    for entry in sim.journal() {
        let row = by_phone[entry["phone"].as_str().unwrap()];
        if row["call_state"] == "uncertain" {
            uncertain += 1;
        } else {
            assert_eq!(
                row["call_id"],
                entry["call_id"].as_str().unwrap(),
                "the journal call id is in the export: {row:?}"
            );
        }
    }
    assert!(
        uncertain <= 2 * 4,
        "at most the calls in flight at each kill are uncertain ({uncertain})"
    );
    for phone in &phones {
        let state = by_phone[phone.as_str()]["call_state"].as_str();
        assert!(
            ["answered", "no_answer", "busy", "failed", "uncertain"].contains(&state),
            "{phone} ended in {state}, not a final state"
        );
    }
}
