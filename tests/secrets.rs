//! The API key never appears in any output, log level, database or export.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{KEY, Sim, Test, Workspace, text};

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
    for (test, code) in [
        (ws.test().against(&sim).args(["run", campaign, "-vv"]), 0),
        (ws.test().key(KEY).args(["status", campaign, "--json"]), 0),
        (ws.test().key(KEY).args(["validate", campaign]), 4),
    ] {
        let out = test.stdout_any().stderr_any().status(code);
        seen.push_str(&out.stdout());
        seen.push_str(&out.stderr());
    }
    assert!(
        seen.contains("[redacted]"),
        "-vv logs the requests, with the key redacted"
    );
    let call_id = sim.journal()[0]["call_id"].as_str().unwrap().to_string();
    let out = ws
        .test()
        .against(&sim)
        .args(["callinfo", &call_id, "--json", "-vv"])
        // A fault is drawn for every request, and how many the run made depends on timing:
        // enough tries that 30% of faults in a row cannot exhaust them (0.3^40).
        .args(["--retries", "40", "--interval", "10ms"])
        .stdout_any()
        .stderr_any()
        .status(0);
    seen.push_str(&out.stdout());
    seen.push_str(&out.stderr());
    let export = ws.test().args(["export", campaign]).stdout_any().status(0);
    seen.push_str(&export.stdout());
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
    // The key comes from the file alone, so the URL is an argument (`against` would set it).
    let call = |phone: &str| {
        ws.test()
            .args(["call", phone, "Say hello", "--base-url", &sim.url])
            .stdout_contains("call_id: ")
    };
    let out = call("13800138000")
        .stderr_contains("can be read by other users")
        .stderr_contains("chmod 600")
        .status(0);
    assert!(!out.stderr().contains(KEY));

    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Nothing is said once it is private: stderr is empty.
    call("13800138001").status(0);
}

/// What stepcall writes holds personal data and transcripts: exports, the report and the
/// rejected rows are readable by their owner only, like the database, whatever the umask.
#[test]
fn exports_the_report_and_rejected_rows_are_created_private() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    // A file already there, open to all, is replaced by a private one.
    ws.write("results.csv", "old");
    std::fs::set_permissions(
        ws.path("results.csv"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let outputs = [
        (vec!["export", campaign, "-o"], "results.csv", 0),
        (
            vec!["export", campaign, "--format", "jsonl", "-o"],
            "results.jsonl",
            0,
        ),
        (vec!["export", campaign, "-o"], "results.xlsx", 0),
        (vec!["report", campaign, "-o"], "report.html", 0),
        (vec!["validate", campaign, "--invalid-out"], "bad.csv", 4),
    ];
    for (args, file, code) in outputs {
        let path = ws.path(file);
        ws.test()
            .args(&args)
            .arg(&path)
            .stdout_any()
            .stderr_any()
            .status(code);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file} is mode {mode:o}");
    }
    let db = std::fs::metadata(ws.path("campaign.db")).unwrap();
    assert_eq!(db.permissions().mode() & 0o777, 0o600);
}

/// A stepcall process is not dumpable: no core file holds the key, and other processes of the
/// same user cannot read its memory. The kernel shows it: the /proc files of a process that is
/// not dumpable belong to root, whoever runs it.
#[test]
fn the_process_is_not_dumpable() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running stepcall as another user needs root");
        return;
    }
    let mut child = Test::new()
        .args(["sim", "--addr", "127.0.0.1:0"])
        .command()
        .uid(65534)
        .gid(65534)
        .current_dir("/")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    let owner = std::fs::metadata(format!("/proc/{}/status", child.id()))
        .unwrap()
        .uid();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        owner, 0,
        "a dumpable process's /proc files belong to its user (65534)"
    );
}
