//! The HTML report: one self-contained file that a real browser shows without errors.

use std::process::Command;
use std::time::Duration;

use crate::harness::{Sim, Workspace, text};

#[test]
fn the_report_is_self_contained_and_shows_the_campaign() {
    let sim = Sim::start(&["--rate-drop", "0.2"]);
    let ws = Workspace::new();
    ws.write(
        "contacts.csv",
        "name,phone,date\n<script>alert(1)</script>,13800130000,12月1日\n王芳,13800130001,12月2日\n李娜,13800130002,12月3日\n赵敏,13800130003,12月4日\n",
    );
    let campaign = ws.campaign("outcomes:\n  confirmed: { user_says_any: [\"好的\"] }\n");
    let c = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", c])
        .stdout_any()
        .stderr_any()
        .status(0);
    let out_path = ws.path("report.html");
    ws.test()
        .args(["report", c, "-o", out_path.to_str().unwrap()])
        .stderr(&format!("wrote {}\n", out_path.display()))
        .status(0);
    let html = std::fs::read_to_string(&out_path).unwrap();
    for part in [
        "Funnel",
        "Outcomes by hour of day",
        "Call durations",
        "Cost so far",
        "Tags",
        "Calls that need a person",
        "<svg",
    ] {
        assert!(html.contains(part), "the report has {part}");
    }
    assert!(
        !html.contains("<script"),
        "no scripts, and names are escaped"
    );
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "nothing is fetched from the network"
    );
    assert!(!html.contains("src="), "no external resources at all");

    // A real browser, when the machine has one (`.ci/run` installs Debian's chromium).
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|b| {
        Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("SKIPPED: no chromium on this machine; the report's browser check did not run");
        return;
    };
    let shot = ws.path("report.png");
    let profile = ws.path("chromium-profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .args([
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1000,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out_path.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A bound on hangs only.
    let deadline = std::time::Instant::now() + crate::harness::WATCHDOG;
    while child.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "chromium did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let log = text(&out.stderr);
    let console_errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console_errors.is_empty(),
        "console errors: {console_errors:?}"
    );
    let png = std::fs::read(&shot).expect("chromium wrote a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    // A blank 1000×1400 page compresses to a few KiB; charts and text do not.
    assert!(
        png.len() > 20_000,
        "the screenshot is not blank ({} bytes)",
        png.len()
    );
}
