//! When the state database refuses a write, no further call is started.

use std::time::{Duration, Instant};

use crate::harness::{API, Sim, WATCHDOG, Workspace};

#[test]
fn a_database_locked_by_another_program_stops_the_dialing() {
    let sim = Sim::start(&["--answer-delay", "50ms"]);
    let ws = Workspace::new();
    ws.contacts(30);
    let campaign = ws.campaign_with(API, "{ calls_per_second: 1000, concurrency: 1 }", "");
    let run = ws
        .test()
        .against(&sim)
        .arg("run")
        .arg(&campaign)
        .stderr_contains("database is locked")
        .stderr_contains("no further call")
        .stdout_contains("not dialled yet")
        .spawn();
    // A bound on hangs only.
    let deadline = Instant::now() + WATCHDOG;
    while sim.journal().len() < 3 {
        assert!(Instant::now() < deadline, "the run never dialled 3 calls");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Another program takes the write lock and keeps it.
    let other = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let dialled_when_locked = sim.journal().len();
    run.status(74);
    assert!(
        sim.journal().len() <= dialled_when_locked + 1,
        "at most the call already on the wire went out"
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);

    ws.test()
        .against(&sim)
        .args(["run", campaign.to_str().unwrap()])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert!(
        sim.dial_counts().values().all(|&n| n == 1),
        "nobody rung twice after the fault"
    );
    assert_eq!(sim.dial_counts().len(), 30);
}

#[test]
fn a_database_that_hits_a_file_size_limit_stops_the_dialing_cleanly() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(300);
    let campaign = ws.campaign_with(API, "{ calls_per_second: 1000, concurrency: 1 }", "");
    let c = campaign.to_str().unwrap();
    // The list imports within the limit; the answers stored while dialing do not fit.
    ws.test()
        .against(&sim)
        .ulimit("-f 400")
        .args(["run", c])
        .stderr_contains("cannot use the state database")
        .stderr_contains("no further call")
        .stdout_contains("not dialled yet: run the same command again to continue")
        .status(74);
    let dialled = sim.journal().len();
    assert!(
        dialled > 0 && dialled < 300,
        "the limit was hit mid-run ({dialled})"
    );

    ws.test()
        .against(&sim)
        .args(["run", c])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert!(
        sim.dial_counts().values().all(|&n| n == 1),
        "nobody rung twice after the fault"
    );
}
