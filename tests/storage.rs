//! When the state database refuses a write, no further call is started.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{KEY, Sim, Workspace, assert_exit, bin, text};

#[test]
fn a_database_locked_by_another_program_stops_the_dialing() {
    let sim = Sim::start(&["--answer-delay", "50ms"]);
    let ws = Workspace::new();
    ws.contacts(30);
    let campaign = ws.campaign_with(
        "{ timeout: 5s, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 1 }",
        "",
    );
    let child = bin()
        .args(["run", campaign.to_str().unwrap(), "--base-url", &sim.url])
        .env("STEPONEAI_API_KEY", KEY)
        .env("HOME", ws.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.journal().len() < 3 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(2));
    }
    // Another program takes the write lock and keeps it.
    let other = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let dialled_when_locked = sim.journal().len();
    let out = child.wait_with_output().unwrap();
    assert_exit(&out, 74);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("database is locked") && stderr.contains("no further call"),
        "{stderr}"
    );
    assert!(
        sim.journal().len() <= dialled_when_locked + 1,
        "at most the call already on the wire went out"
    );
    other.execute_batch("ROLLBACK").unwrap();
    drop(other);

    assert_exit(&ws.run(&sim, &["run", campaign.to_str().unwrap()]), 0);
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
    let campaign = ws.campaign_with(
        "{ timeout: 5s, poll_interval: 50ms }",
        "{ calls_per_second: 1000, concurrency: 1 }",
        "",
    );
    let c = campaign.to_str().unwrap();
    // The list imports within the limit; the answers stored while dialing do not fit.
    let script = format!(
        "ulimit -f 400; exec {} run {c} --base-url {}",
        env!("CARGO_BIN_EXE_stepcall"),
        sim.url
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env("STEPONEAI_API_KEY", KEY)
        .env("HOME", ws.dir.path())
        .env_remove("STEPONEAI_BASE_URL")
        .output()
        .unwrap();
    assert_exit(&out, 74);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot use the state database") && stderr.contains("no further call"),
        "{stderr}"
    );
    let dialled = sim.journal().len();
    assert!(
        dialled > 0 && dialled < 300,
        "the limit was hit mid-run ({dialled})"
    );

    assert_exit(&ws.run(&sim, &["run", c]), 0);
    assert!(
        sim.dial_counts().values().all(|&n| n == 1),
        "nobody rung twice after the fault"
    );
}
