//! The smaller commands: the demo, one-off calls, and the guard rails around `run`.

use crate::harness::{KEY, Sim, Workspace, assert_exit, bin, text};

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
    let out = ws.stepcall(&["run", campaign.to_str().unwrap(), "--simulate"]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains("no real phone call is made"),
        "{}",
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("simulated")
            && stdout.contains("invalid 2")
            && stdout.contains("duplicate 1"),
        "{stdout}"
    );
    let status: serde_json::Value = serde_json::from_slice(
        &ws.stepcall(&["status", campaign.to_str().unwrap(), "--json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(status["complete"], true, "{status}");
}

#[test]
fn a_live_run_never_reuses_a_simulated_database() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("");
    assert_exit(
        &ws.stepcall(&["run", campaign.to_str().unwrap(), "--simulate"]),
        0,
    );
    let out = ws.run(&sim, &["run", campaign.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("simulated"),
        "{}",
        text(&out.stderr)
    );
    assert!(sim.journal().is_empty());
}

#[test]
fn run_without_a_key_says_where_keys_come_from() {
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("");
    let out = ws.stepcall(&["run", campaign.to_str().unwrap()]);
    assert_exit(&out, 78);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("STEPONEAI_API_KEY")
            && stderr.contains("secrets.json")
            && stderr.contains("--simulate"),
        "{stderr}"
    );
}

#[test]
fn the_key_is_read_from_the_secrets_file() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path(".clawd")).unwrap();
    ws.write(
        ".clawd/secrets.json",
        &format!("{{\"steponeai_api_key\": \"{KEY}\"}}"),
    );
    let out = ws.stepcall(&["call", "138 0013 8000", "Say hello", "--base-url", &sim.url]);
    assert_exit(&out, 0);
    assert_eq!(sim.journal()[0]["phone"], "13800138000");
}

#[test]
fn call_wait_and_callinfo_report_a_clear_end_state() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let out = bin()
        .args([
            "call",
            "+86 138-0013-8000",
            "Remind about tomorrow's 9 AM meeting",
            "--wait",
            "--interval",
            "50ms",
        ])
        .args(["--base-url", &sim.url])
        .env("STEPONEAI_API_KEY", KEY)
        .env("HOME", ws.dir.path())
        .output()
        .unwrap();
    assert_exit(&out, 0);
    let stdout = text(&out.stdout);
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
        bin()
            .args([
                "callinfo",
                id,
                "--retries",
                "2",
                "--interval",
                "10ms",
                "--base-url",
                &sim.url,
            ])
            .env("STEPONEAI_API_KEY", KEY)
            .env("HOME", ws.dir.path())
            .output()
            .unwrap()
    };
    let out = info(&call_id);
    assert_exit(&out, 0);
    assert!(text(&out.stdout).starts_with(&format!("call {call_id}: ")));
    let out = info("no-such-call");
    assert_exit(&out, 3);
    assert!(
        text(&out.stderr).contains("stepcall callinfo no-such-call"),
        "{}",
        text(&out.stderr)
    );
}
