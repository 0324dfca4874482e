//! Ctrl-C, SIGTERM and a second run started while the first still goes on.

use std::time::{Duration, Instant};

use crate::harness::{API, Running, Sim, WATCHDOG, Workspace};

fn spawn_run(ws: &Workspace, sim: &Sim) -> Running {
    ws.test()
        .against(sim)
        .args(["run", "campaign.yaml"])
        .stdout_any()
        .stderr_any()
        .spawn()
}

/// Waits until the simulator has `n` calls (within the watchdog, a bound on hangs only).
fn wait_for_calls(sim: &Sim, n: usize) {
    let deadline = Instant::now() + WATCHDOG;
    while sim.journal().len() < n {
        assert!(Instant::now() < deadline, "the run never dialled {n} calls");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The run stops promptly: no call starts after the signal but those already on their way
/// (counted in the journal, which no load can change), and it exits within the watchdog, a
/// bound on hangs only. How many seconds it takes is not asserted: a loaded machine can take
/// any time to wind down.
fn stop_with(signal: i32, code: i32) {
    let sim = Sim::start(&["--answer-delay", "150ms"]);
    let ws = Workspace::new();
    let phones = ws.contacts(40);
    ws.campaign_with(API, "{ calls_per_second: 1000, concurrency: 2 }", "");
    let run = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 4);
    run.signal(signal);
    let at_signal = sim.journal().len();
    let out = run.status(code);
    assert!(
        out.stderr().contains("run the same command again"),
        "{}",
        out.stderr()
    );
    // The same summary as a finished run, with why it stopped.
    let summary = out.stdout();
    for part in [
        "campaign `test-campaign`",
        "  stopped by ",
        "not dialled yet: run the same command again to continue",
        "state database: ",
    ] {
        assert!(summary.contains(part), "no {part:?} in {summary}");
    }
    let dialled = sim.journal().len();
    assert!(
        dialled <= at_signal + 2,
        "at most the calls already on their way (concurrency 2) after the signal: {at_signal} then {dialled}"
    );
    assert!(
        dialled < phones.len(),
        "the run stopped before the list ended"
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

    spawn_run(&ws, &sim).status(0);
    let counts = sim.dial_counts();
    assert!(
        phones.iter().all(|p| counts.get(p) == Some(&1)),
        "resumed without ringing anyone twice"
    );
}

#[test]
fn ctrl_c_waits_for_calls_in_flight_and_exits_130() {
    stop_with(libc::SIGINT, 130);
}

#[test]
fn sigterm_waits_for_calls_in_flight_and_exits_143() {
    stop_with(libc::SIGTERM, 143);
}

/// The call in flight is answered only after an hour, and may take that long: a run that
/// waited for it after the second Ctrl-C would outlive the watchdog many times over, however
/// fast the machine, and one that quits at once ends within it, however loaded. The second
/// Ctrl-C is sent once the run has said it saw the first, so the two are never taken for one.
#[test]
fn a_second_ctrl_c_exits_at_once_and_keeps_what_was_committed() {
    let sim = Sim::start(&["--answer-delay", "1h"]);
    let ws = Workspace::new();
    ws.contacts(1);
    ws.campaign_with(
        "{ timeout: 2h, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 1 }",
        "",
    );
    let mut run = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 1);
    run.signal(libc::SIGINT);
    run.wait_for_stderr("press Ctrl-C again to quit at once");
    run.signal(libc::SIGINT);
    run.status(130);
    spawn_run(&ws, &sim).status(0);
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
    ws.campaign_with(API, "{ calls_per_second: 1000, concurrency: 1 }", "");
    let first = spawn_run(&ws, &sim);
    wait_for_calls(&sim, 1);
    // Stopped, the first run holds its lock for as long as the second takes to start, however
    // slowly a loaded machine starts it.
    first.signal(libc::SIGSTOP);
    ws.test()
        .against(&sim)
        .args(["run", "campaign.yaml"])
        .stderr_contains(&format!("pid {}", first.id()))
        .status(75);
    first.signal(libc::SIGCONT);
    first.status(0);
    assert!(
        sim.dial_counts().values().all(|&n| n == 1),
        "the second run never dialled"
    );
    assert_eq!(sim.journal().len(), 8);
}
