//! Ctrl-C, SIGTERM and a second run started while the first still goes on.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::harness::{Sim, Workspace, assert_exit, text};

fn spawn_run(ws: &Workspace, sim: &Sim) -> Child {
    ws.spawn(sim, &["run", ws.path("campaign.yaml").to_str().unwrap()])
}

fn wait_for_calls(sim: &Sim, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.journal().len() < n {
        assert!(Instant::now() < deadline, "the run never dialled {n} calls");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stop_with(name: &str, code: i32) {
    let sim = Sim::start(&["--answer-delay", "150ms"]);
    let ws = Workspace::new();
    let phones = ws.contacts(40);
    ws.campaign_with(
        "{ timeout: 5s, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 2 }",
        "",
    );
    let child = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 4);
    let stopped_at = Instant::now();
    signal(&child, name);
    let at_signal = sim.journal().len();
    let out = child.wait_with_output().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(5),
        "the run stops promptly"
    );
    assert_exit(&out, code);
    assert!(
        text(&out.stderr).contains("run the same command again"),
        "{}",
        text(&out.stderr)
    );
    let dialled = sim.journal().len();
    assert!(
        dialled <= at_signal + 2,
        "at most the calls already on their way (concurrency 2) after the signal: {at_signal} then {dialled}"
    );
    let export = ws.export(&ws.path("campaign.yaml"));
    assert_eq!(
        export
            .iter()
            .filter(|r| r["call_state"] == "uncertain" || r["call_state"] == "dialing")
            .count(),
        0,
        "the calls in flight were waited for and recorded"
    );
    assert_eq!(
        export.iter().filter(|r| !r["call_id"].is_empty()).count(),
        dialled,
        "every call id is kept"
    );

    assert_exit(
        &ws.run(&sim, &["run", ws.path("campaign.yaml").to_str().unwrap()]),
        0,
    );
    let counts = sim.dial_counts();
    assert!(
        phones.iter().all(|p| counts.get(p) == Some(&1)),
        "resumed without ringing anyone twice"
    );
}

#[test]
fn ctrl_c_waits_for_calls_in_flight_and_exits_130() {
    stop_with("INT", 130);
}

#[test]
fn sigterm_waits_for_calls_in_flight_and_exits_143() {
    stop_with("TERM", 143);
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_keeps_what_was_committed() {
    let sim = Sim::start(&["--answer-delay", "4s"]);
    let ws = Workspace::new();
    ws.contacts(1);
    ws.campaign_with(
        "{ timeout: 10s, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 1 }",
        "",
    );
    let child = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 1);
    let stopped_at = Instant::now();
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert!(
        stopped_at.elapsed() < Duration::from_secs(2),
        "the second Ctrl-C does not wait for the 4 s answer"
    );
    assert_exit(&out, 130);
    assert_exit(
        &ws.run(&sim, &["run", ws.path("campaign.yaml").to_str().unwrap()]),
        0,
    );
    let export = ws.export(&ws.path("campaign.yaml"));
    assert_eq!(
        export
            .iter()
            .filter(|r| r["call_state"] == "uncertain")
            .count(),
        1,
        "the call cut off is uncertain, not redialled"
    );
    assert!(sim.dial_counts().values().all(|&n| n == 1));
}

#[test]
fn a_second_run_of_the_same_campaign_exits_75_and_names_the_first() {
    let sim = Sim::start(&["--answer-delay", "300ms"]);
    let ws = Workspace::new();
    ws.contacts(8);
    ws.campaign_with(
        "{ timeout: 5s, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 1 }",
        "",
    );
    let first = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 1);
    let second = ws.run(&sim, &["run", ws.path("campaign.yaml").to_str().unwrap()]);
    assert_exit(&second, 75);
    assert!(
        text(&second.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&second.stderr)
    );
    let out = first.wait_with_output().unwrap();
    assert_exit(&out, 0);
    assert!(
        sim.dial_counts().values().all(|&n| n == 1),
        "the second run never dialled"
    );
    assert_eq!(sim.journal().len(), 8);
}
