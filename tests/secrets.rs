//! The API key never appears in any output, log level, database or export.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{KEY, Sim, Workspace, assert_exit, bin, text};

#[test]
fn the_key_is_in_no_output_log_database_or_export() {
    let sim = Sim::start(&[
        "--rate-429",
        "0.2",
        "--retry-after",
        "10ms",
        "--rate-500",
        "0.1",
    ]);
    let ws = Workspace::new();
    ws.contacts(10);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    let mut seen = String::new();
    for args in [
        vec!["run", campaign, "-vv"],
        vec!["status", campaign, "--json"],
        vec!["validate", campaign],
    ] {
        let out = bin()
            .args(&args)
            .args(["--base-url", &sim.url].iter().filter(|_| args[0] == "run"))
            .env("STEPONEAI_API_KEY", KEY)
            .env("HOME", ws.dir.path())
            .output()
            .unwrap();
        seen.push_str(&text(&out.stdout));
        seen.push_str(&text(&out.stderr));
    }
    assert!(
        seen.contains("[redacted]"),
        "-vv logs the requests, with the key redacted"
    );
    let call_id = sim.journal()[0]["call_id"].as_str().unwrap().to_string();
    let out = bin()
        .args([
            "callinfo",
            &call_id,
            "--json",
            "-vv",
            "--retries",
            "3",
            "--interval",
            "50ms",
            "--base-url",
            &sim.url,
        ])
        .env("STEPONEAI_API_KEY", KEY)
        .output()
        .unwrap();
    seen.push_str(&text(&out.stdout));
    seen.push_str(&text(&out.stderr));
    let export = bin().args(["export", campaign]).output().unwrap();
    seen.push_str(&text(&export.stdout));
    for file in ["campaign.db", "campaign.db-wal", "campaign.db.lock"] {
        seen.push_str(&text(&std::fs::read(ws.path(file)).unwrap_or_default()));
    }
    assert!(!seen.contains(KEY), "the key leaked");
    assert!(!seen.contains(&KEY[8..]), "part of the key leaked");
}

#[test]
fn a_secrets_file_readable_by_others_draws_a_warning() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path(".clawd")).unwrap();
    let secrets = ws.write(
        ".clawd/secrets.json",
        &format!("{{\"steponeai_api_key\": \"{KEY}\"}}"),
    );
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ws.stepcall(&["call", "13800138000", "Say hello", "--base-url", &sim.url]);
    assert_exit(&out, 0);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("can be read by other users") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY));

    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = ws.stepcall(&["call", "13800138001", "Say hello", "--base-url", &sim.url]);
    assert!(!text(&out.stderr).contains("can be read by other users"));
}
