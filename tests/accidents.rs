//! What people and machines do to a state database: delete or replace it mid-run, delete its
//! `-wal` after a crash, reach it through a symlink, delete its lock file. None of them may
//! let anyone be rung twice.

use std::time::{Duration, Instant};

use crate::harness::{API, Running, Sim, WATCHDOG, Workspace};

/// Waits until the simulator has `n` calls (within the watchdog, a bound on hangs only).
fn wait_for_calls(sim: &Sim, run: &mut Running, n: usize) {
    let deadline = Instant::now() + WATCHDOG;
    while sim.journal().len() < n {
        assert!(Instant::now() < deadline, "the run never dialled {n} calls");
        assert!(
            run.child.try_wait().unwrap().is_none(),
            "the run ended early"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn slow_campaign(ws: &Workspace, extra: &str) -> String {
    ws.campaign_with(API, "{ calls_per_second: 1000, concurrency: 1 }", extra)
        .to_str()
        .unwrap()
        .to_string()
}

/// Runs a campaign, does `accident` to its database once calls are going, and checks that
/// the run stops at its next intent with exit 74 and says `says`.
fn dialing_stops_when(accident: impl FnOnce(&Workspace), says: &str) {
    let sim = Sim::start(&["--answer-delay", "30ms"]);
    let ws = Workspace::new();
    ws.contacts(60);
    let campaign = slow_campaign(&ws, "");
    let mut run = ws
        .test()
        .against(&sim)
        .args(["run", &campaign])
        .stdout_any()
        .stderr_contains(says)
        .spawn();
    wait_for_calls(&sim, &mut run, 3);
    accident(&ws);
    let dialled_at_the_accident = sim.journal().len();
    run.status(74);
    assert!(
        sim.journal().len() <= dialled_at_the_accident + 1,
        "at most the call already on its way went out"
    );
}

/// `rm campaign.db*` while a run dials (the README's "start over" at the wrong moment): the run
/// notices at its next intent, stops with exit 74 and says what happened.
#[test]
fn a_database_deleted_mid_run_stops_the_dialing() {
    dialing_stops_when(
        |ws| {
            for entry in std::fs::read_dir(ws.dir.path()).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_str().unwrap();
                if name.starts_with("campaign.db") {
                    std::fs::remove_file(path).unwrap();
                }
            }
        },
        "was deleted while this run was using it",
    );
}

/// A database replaced by another file under the same name is noticed the same way.
#[test]
fn a_database_replaced_mid_run_stops_the_dialing() {
    dialing_stops_when(
        |ws| {
            std::fs::write(ws.path("other.db"), b"").unwrap();
            std::fs::rename(ws.path("other.db"), ws.path("campaign.db")).unwrap();
        },
        "was replaced while this run was using it",
    );
}

/// After a SIGKILL, the `-wal` holds the last commits; deleting it rolls the database back. The
/// next run sees it is behind what was committed and refuses to dial (exit 74).
#[test]
fn a_wal_deleted_after_a_crash_is_noticed_and_nobody_is_rung_again() {
    let sim = Sim::start(&["--answer-delay", "20ms"]);
    let ws = Workspace::new();
    ws.contacts(60);
    let campaign = slow_campaign(&ws, "");
    let mut run = ws.test().against(&sim).args(["run", &campaign]).spawn();
    wait_for_calls(&sim, &mut run, 12);
    run.child.kill().unwrap(); // SIGKILL
    run.child.wait().unwrap();
    let wal = ws.path("campaign.db-wal");
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "the commits since the import are in the -wal"
    );
    std::fs::remove_file(&wal).unwrap();
    let _ = std::fs::remove_file(ws.path("campaign.db-shm"));
    let dialled = sim.journal().len();

    ws.test()
        .against(&sim)
        .args(["run", &campaign])
        .stderr_contains("has lost commits")
        .status(74);
    assert_eq!(sim.journal().len(), dialled, "nobody was rung again");
    assert!(sim.dial_counts().values().all(|&n| n == 1));
}

/// Two campaign files reaching one database, one through a symlink: the second run is refused
/// (exit 75), and the first run's calls in flight are never relabelled or redialled.
#[test]
fn a_symlinked_state_path_is_the_same_database_and_locked() {
    let sim = Sim::start(&["--answer-delay", "100ms"]);
    let ws = Workspace::new();
    ws.contacts(20);
    let campaign = slow_campaign(&ws, "state: real.db\n");
    std::os::unix::fs::symlink(ws.path("real.db"), ws.path("link.db")).unwrap();
    let text_of = std::fs::read_to_string(&campaign).unwrap();
    let other = ws.write(
        "through-link.yaml",
        &text_of.replace("state: real.db", "state: link.db"),
    );
    let mut first = ws
        .test()
        .against(&sim)
        .args(["run", &campaign])
        .stdout_any()
        .stderr_any()
        .spawn();
    wait_for_calls(&sim, &mut first, 2);
    // Stopped, the first run holds its lock for as long as the second takes to start, however
    // slowly a loaded machine starts it.
    first.signal(libc::SIGSTOP);
    ws.test()
        .against(&sim)
        .arg("run")
        .arg(&other)
        .arg("--redial-uncertain")
        .stderr_contains(&format!("pid {}", first.id()))
        .status(75);
    first.signal(libc::SIGCONT);
    first.status(0);
    assert!(sim.dial_counts().values().all(|&n| n == 1));
    assert_eq!(sim.journal().len(), 20);
}

/// Deleting the lock file beside a running database does not let a second run in: the lock is
/// on the database file itself.
#[test]
fn a_deleted_lock_file_does_not_let_a_second_run_in() {
    let sim = Sim::start(&["--answer-delay", "100ms"]);
    let ws = Workspace::new();
    ws.contacts(20);
    let campaign = slow_campaign(&ws, "");
    let mut first = ws
        .test()
        .against(&sim)
        .args(["run", &campaign])
        .stdout_any()
        .stderr_any()
        .spawn();
    wait_for_calls(&sim, &mut first, 2);
    // Stopped, the first run holds its lock for as long as the second takes (see above).
    first.signal(libc::SIGSTOP);
    std::fs::remove_file(ws.path("campaign.db.lock")).unwrap();
    ws.test()
        .against(&sim)
        .args(["run", &campaign, "--redial-uncertain"])
        .stderr_contains("another stepcall run of this campaign is in progress")
        .status(75);
    let db = rusqlite::Connection::open(ws.path("campaign.db")).unwrap();
    let relabelled: i64 = db
        .query_row(
            "SELECT count(*) FROM contacts WHERE state = 'uncertain'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        relabelled, 0,
        "the first run's calls in flight were left alone"
    );
    first.signal(libc::SIGCONT);
    first.status(0);
    assert!(sim.dial_counts().values().all(|&n| n == 1));
    assert_eq!(sim.journal().len(), 20);
}
