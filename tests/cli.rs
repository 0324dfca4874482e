//! The smaller commands: the demo, one-off calls, and the guard rails around `run`.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::{get, post};

use crate::harness::{API, KEY, Sim, Test, Workspace};

#[test]
fn the_shipped_demo_runs_against_the_built_in_simulator() {
    let ws = Workspace::new();
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/demo.yaml");
    let campaign = ws.path("demo.yaml");
    let text_of = std::fs::read_to_string(&demo).unwrap();
    std::fs::write(
        &campaign,
        text_of.replace(
            "../examples/demo.csv",
            demo.parent()
                .unwrap()
                .join("../examples/demo.csv")
                .to_str()
                .unwrap(),
        ),
    )
    .unwrap();
    ws.test()
        .arg("run")
        .arg(&campaign)
        .arg("--simulate")
        .stdout_contains("simulated")
        .stdout_contains("invalid 2")
        .stdout_contains("duplicate 1")
        .stderr_contains("no real phone call is made")
        .status(0);
    let status = ws
        .test()
        .arg("status")
        .arg(&campaign)
        .arg("--json")
        .stdout_any()
        .status(0)
        .json();
    assert_eq!(status["complete"], true, "{status}");
}

/// A provider that does not say it is a simulator is a real one: its calls never go into a
/// database of rehearsals. The provider here is the test's own, not stepcall's simulator.
#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_never_reuses_a_simulated_database() {
    let dialled = Arc::new(AtomicUsize::new(0));
    let counter = dialled.clone();
    let app = Router::new()
        .route(
            stepcall::SKILL_VERSION_PATH,
            get(|| async { r#"{"skill_version":"1.0.0"}"# }),
        )
        .route(
            stepcall::INITIATE_PATH,
            post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { r#"{"success":true,"call_ids":["real-1"]}"# }
            }),
        );
    let url = crate::harness::serve(app).await;
    tokio::task::spawn_blocking(move || {
        let simulated = Test::new()
            .contacts(2)
            .campaign("")
            .args(["run", "campaign.yaml", "--simulate"])
            .stdout_any()
            .stderr_any()
            .status(0);
        simulated
            .ws
            .test()
            .provider(&url)
            .args(["run", "campaign.yaml"])
            .stderr_contains("simulated and real calls never share a database")
            .status(2);
    })
    .await
    .unwrap();
    assert_eq!(
        dialled.load(Ordering::SeqCst),
        0,
        "a real provider was dialled"
    );
}

/// A simulator that comes up after the run began (its probe got a plain answer) is caught at
/// its first answer: the run stops, and the call it placed is kept, not filed away as real
/// with `simulated: false` for the CRM.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_began_live_stops_when_a_simulator_answers() {
    let dialled = Arc::new(AtomicUsize::new(0));
    let counter = dialled.clone();
    let app = Router::new()
        .route(
            stepcall::SKILL_VERSION_PATH,
            get(|| async { r#"{"skill_version":"1.0.0"}"# }),
        )
        .route(
            stepcall::INITIATE_PATH,
            post(move || {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    (
                        [("X-Stepcall-Simulator", "1")],
                        format!(r#"{{"success":true,"call_ids":["sim-{n}"]}}"#),
                    )
                }
            }),
        );
    let url = crate::harness::serve(app).await;
    let ran = tokio::task::spawn_blocking(move || {
        Test::new()
            .contacts(4)
            .campaign_with(API, "{ calls_per_second: 200, concurrency: 1 }", "")
            .provider(&url)
            .args(["run", "campaign.yaml"])
            .stdout_any()
            .stderr_contains("answered as stepcall's simulator, but this run began as a live run")
            .status(78)
    })
    .await
    .unwrap();
    let placed = dialled.load(Ordering::SeqCst);
    assert_eq!(
        placed, 1,
        "one call at a time, and none after the first answer"
    );
    let export = ran.ws.export(&ran.ws.path("campaign.yaml"));
    let kept: Vec<_> = export
        .iter()
        .map(|r| r["call_id"].as_str())
        .filter(|id| !id.is_empty())
        .collect();
    assert_eq!(kept, ["sim-0"], "the call id is kept: {export:?}");
}

/// The README's example: `stepcall sim` on its own, and a run pointed at it with `--base-url`.
/// The simulator says what it is, so the run is a rehearsal, shares the database of
/// `--simulate`, and is marked as one.
#[test]
fn a_run_against_stepcall_sim_is_a_rehearsal() {
    let first = Test::new()
        .contacts(3)
        .campaign("")
        .sim(&[])
        .args(["run", "campaign.yaml"])
        .stdout_contains("(simulated: no real call was made)")
        .stderr_contains("REHEARSAL")
        .status(0);
    assert_eq!(first.sim().journal().len(), 3);
    let status = first
        .ws
        .test()
        .args(["status", "campaign.yaml", "--json"])
        .stdout_any()
        .status(0)
        .json();
    assert_eq!(status["simulated"], true, "{status}");
    first
        .ws
        .test()
        .args(["status", "campaign.yaml"])
        .stdout_contains("campaign `test-campaign` (simulated: no real call was made): 5 contacts")
        .status(0);
    first
        .ws
        .test()
        .args(["export", "campaign.yaml", "-o", "results.csv"])
        .stderr("wrote 5 contacts to results.csv (simulated: no real call was made)\n")
        .status(0);
    first
        .ws
        .test()
        .args(["run", "campaign.yaml", "--simulate"])
        .stdout_contains("simulated")
        .stderr_any()
        .status(0);
}

#[test]
fn run_without_a_key_says_where_keys_come_from() {
    Test::new()
        .contacts(2)
        .campaign("")
        .args(["run", "campaign.yaml"])
        .stderr_contains("STEPONEAI_API_KEY")
        .stderr_contains("secrets.json")
        .stderr_contains("--simulate")
        .status(78);
}

#[test]
fn the_key_is_read_from_the_secrets_file() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path(".clawd")).unwrap();
    let secrets = ws.write(
        ".clawd/secrets.json",
        &format!("{{\"steponeai_api_key\": \"{KEY}\"}}"),
    );
    // Private, as it should be: nothing is said about it (a file others can read draws a
    // warning, see `secrets::a_secrets_file_readable_by_others_draws_a_warning`).
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The key comes from the file alone: `provider` would set it, so the URL is an argument.
    ws.test()
        .args(["call", "138 0013 8000", "Say hello", "--base-url", &sim.url])
        .stdout_contains("call_id: ")
        .status(0);
    assert_eq!(sim.journal()[0]["phone"], "13800138000");
}

#[test]
fn call_wait_and_callinfo_report_a_clear_end_state() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let out = ws
        .test()
        .against(&sim)
        .args([
            "call",
            "+86 138-0013-8000",
            "Remind about tomorrow's 9 AM meeting",
            "--wait",
            "--interval",
            "50ms",
        ])
        .stdout_any()
        .stderr_any()
        .status(0);
    let stdout = out.stdout();
    let call_id = stdout
        .lines()
        .next()
        .unwrap()
        .strip_prefix("call_id: ")
        .unwrap()
        .to_string();
    assert_eq!(sim.journal()[0]["call_id"], call_id.as_str());
    assert!(stdout.contains(&format!("call {call_id}: ")), "{stdout}");

    let info = |id: &str| {
        ws.test()
            .against(&sim)
            .args(["callinfo", id, "--retries", "2", "--interval", "10ms"])
    };
    let out = info(&call_id).stdout_any().status(0);
    assert!(out.stdout().starts_with(&format!("call {call_id}: ")));
    // An id the provider answers 404 for is said to be unknown, at once, not "not ready".
    info("no-such-call")
        .stderr_contains("the provider knows no call with the id no-such-call")
        .status(2);
}

/// As the skill's own example: several numbers separated by commas, one call each, each
/// number printed with its call id; `--wait` waits for all of them.
#[test]
fn call_takes_several_numbers_and_waits_for_all_of_them() {
    let sim = Sim::start(&[]);
    let out = Test::new()
        .against(&sim)
        .args([
            "call",
            "13800138000,139-0013-9000",
            "Remind about tomorrow's 9 AM meeting",
            "--wait",
            "--interval",
            "50ms",
        ])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 2, "one call per number");
    let stdout = out.stdout();
    for (entry, phone) in journal.iter().zip(["13800138000", "13900139000"]) {
        assert_eq!(entry["phone"], phone, "one number per request, in order");
        let id = entry["call_id"].as_str().unwrap();
        assert!(
            stdout.contains(&format!("{phone} call_id: {id}\n")),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("call {id}: ")),
            "not waited for: {stdout}"
        );
    }

    // A bad number anywhere refuses the command before anyone is rung.
    Test::new()
        .against(&sim)
        .args(["call", "13800138000,12345", "Say hello"])
        .stderr_contains("\"12345\" is not a number stepcall will dial")
        .status(2);
    Test::new()
        .against(&sim)
        .args(["call", "13800138000, 138 0013 8000", "Say hello"])
        .stderr_contains("given twice")
        .status(2);
    assert_eq!(sim.journal().len(), 2);
}

/// Hints name commands that work where they are printed: the program as it was started (a
/// newcomer who followed the README's `cargo run` has no `stepcall` on PATH), and never a flag
/// the command does not take.
#[test]
fn hints_name_commands_that_work_where_they_are_printed() {
    let program = env!("CARGO_BIN_EXE_stepcall");
    let sim = Sim::start(&["--record-delay", "1h"]);
    let call_id = Test::new()
        .against(&sim)
        .args(["call", "13800138000", "Say hello"])
        .stdout_any()
        .status(0)
        .stdout()
        .trim()
        .strip_prefix("call_id: ")
        .unwrap()
        .to_string();
    Test::new()
        .against(&sim)
        .args(["callinfo", &call_id, "--retries", "1"])
        .stderr_contains(&format!(
            "try again later with `{program} callinfo {call_id}`"
        ))
        .stderr_any()
        .status(3);
    let no_key = Test::new()
        .args(["callinfo", &call_id])
        .stderr_contains("STEPONEAI_API_KEY")
        .status(78);
    assert!(
        !no_key.stderr().contains("--simulate"),
        "{}",
        no_key.stderr()
    );
    Test::new()
        .contacts(1)
        .campaign("")
        .args(["run", "campaign.yaml", "--simulate"])
        .stdout_contains(&format!(
            "export the results: {program} export campaign.yaml"
        ))
        .stderr_any()
        .status(0);
}

/// The harness itself: an output the test declared nothing about must be empty.
#[test]
#[should_panic(expected = "stdout was declared empty")]
fn output_a_test_did_not_declare_fails_it() {
    Test::new().arg("--version").status(0);
}

#[test]
fn declared_output_is_checked_exactly_or_in_part() {
    let version = format!("stepcall {}\n", env!("CARGO_PKG_VERSION"));
    Test::new().arg("--version").stdout(&version).status(0);
    Test::new()
        .arg("--version")
        .stdout_contains("stepcall")
        .stdout_contains(env!("CARGO_PKG_VERSION"))
        .status(0);
}

/// Away from a terminal (cron, a pipe, a log file) a log line is read later, so it starts with
/// its time: stepcall's clock, in the campaign's zone, to the second, as the export writes it.
#[test]
fn a_log_line_away_from_a_terminal_starts_with_the_time_in_the_campaigns_zone() {
    let ran = Test::new()
        .contacts(2)
        .campaign("hours: { timezone: Asia/Shanghai, windows: [\"00:00-23:59\"] }\n")
        .now("2026-12-02T00:30:00+08:00")
        .args(["run", "campaign.yaml", "--simulate", "--max-calls", "0"])
        .stdout_any()
        .stderr_contains("new rows imported")
        .status(0);
    let stderr = ran.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("new rows imported"))
        .unwrap();
    let (stamp, rest) = line.split_once(' ').unwrap();
    assert!(
        stamp.starts_with("2026-12-02T00:3") && stamp.ends_with("+08:00") && stamp.len() == 25,
        "{line:?} does not start with a time like 2026-12-02T00:30:00+08:00"
    );
    let at: jiff::Timestamp = stamp.parse().unwrap();
    let start: jiff::Timestamp = "2026-12-02T00:30:00+08:00".parse().unwrap();
    assert!(at >= start && at < start + jiff::SignedDuration::from_secs(120));
    assert!(rest.trim_start().starts_with("INFO "), "{line:?}");
}

/// On a terminal a person watches the lines arrive: they stay without a time. `script` gives
/// stepcall a terminal for its stderr.
#[test]
fn a_log_line_on_a_terminal_has_no_time() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` (util-linux) to give stepcall a terminal");
        return;
    }
    let test = Test::new()
        .contacts(2)
        .campaign("")
        .now("2026-12-02T00:30:00+08:00")
        .args(["run", "campaign.yaml", "--simulate", "--max-calls", "0"]);
    let inner = test.command();
    let line: Vec<String> = std::iter::once(inner.get_program())
        .chain(inner.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', "'\\''")))
        .collect();
    let mut outer = std::process::Command::new("script");
    outer
        .args(["-qefc", &line.join(" "), "/dev/null"])
        .current_dir(inner.get_current_dir().unwrap());
    for (name, value) in inner.get_envs() {
        match value {
            Some(value) => outer.env(name, value),
            None => outer.env_remove(name),
        };
    }
    let out = outer.stdin(std::process::Stdio::null()).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    let log = shown
        .lines()
        .find(|l| l.contains("new rows imported"))
        .unwrap_or_else(|| panic!("no log line on the terminal: {shown:?}"));
    assert!(!log.contains("2026-12-02T"), "{log:?}");
    assert!(out.status.success(), "{shown}");
}
