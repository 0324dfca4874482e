//! The smaller commands: the demo, one-off calls, and the guard rails around `run`.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{KEY, Sim, Test, Workspace};

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

#[test]
fn a_live_run_never_reuses_a_simulated_database() {
    let simulated = Test::new()
        .contacts(2)
        .campaign("")
        .args(["run", "campaign.yaml", "--simulate"])
        .stdout_any()
        .stderr_any()
        .status(0);
    let live = simulated
        .ws
        .test()
        .sim(&[])
        .args(["run", "campaign.yaml"])
        .stderr_contains("simulated")
        .status(2);
    assert!(live.sim().journal().is_empty());
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
    info("no-such-call")
        .stderr_contains("stepcall callinfo no-such-call")
        .status(3);
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
