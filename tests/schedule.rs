//! Calling hours, redials, do-not-call lists and per-run limits, with stepcall's clock moved by
//! STEPCALL_NOW so hours and days pass in milliseconds.

use serde_json::Value;

use crate::harness::{API, Sim, Test, Workspace};

const HOURS: &str = "hours:\n  timezone: Asia/Shanghai\n  windows: [\"09:00-12:00\", \"14:00-20:30\"]\n  \
                     days: [mon, tue, wed, thu, fri, sat]\n  skip_dates: [2026-10-01]\n";

/// The `--json` summary of a run that ended 0.
fn summary(run: Test) -> Value {
    run.stdout_any().stderr_any().status(0).json()
}

#[test]
fn a_window_that_closes_mid_run_stops_new_calls_until_the_next_one() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(30);
    let campaign = ws.campaign_with(API, "{ calls_per_second: 10, concurrency: 1 }", HOURS);
    let c = campaign.to_str().unwrap();

    // Tuesday 11:59:59 in Shanghai: about ten calls fit before noon.
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T11:59:59+08:00")
            .args(["run", c, "--json"]),
    );
    let dialled = sim.journal().len();
    assert!(
        dialled > 0 && dialled < 30,
        "the window closed mid-run after {dialled} calls"
    );
    assert_eq!(s["stopped"], "outside calling hours");
    assert_eq!(s["next_due"], "2026-12-01T14:00:00+08:00[Asia/Shanghai]");
    assert_eq!(
        s["counts"]["dialed"], 0,
        "calls started inside the window still get their results"
    );
    assert_eq!(s["complete"], false);
    // By stepcall's own clock, every call started before noon, and only those were placed.
    let noon: jiff::Timestamp = "2026-12-01T12:00:00+08:00".parse().unwrap();
    let export = ws.export(&campaign);
    let started: Vec<jiff::Timestamp> = export
        .iter()
        .filter(|r| !r["call_first_dialed_at"].is_empty())
        .map(|r| r["call_first_dialed_at"].parse().unwrap())
        .collect();
    assert_eq!(started.len(), dialled, "each call placed is in the export");
    assert!(
        started.iter().all(|at| *at < noon),
        "a call started after the window closed: {started:?}"
    );

    // At lunch nobody is rung; the run says when the next window opens and exits 0.
    ws.test()
        .against(&sim)
        .now("2026-12-01T13:00:00+08:00")
        .args(["run", c])
        .stdout_contains("next call due: 2026-12-01 14:00 Asia/Shanghai")
        .stderr_any()
        .status(0);
    assert_eq!(sim.journal().len(), dialled);

    // Nor on a holiday, nor on Sunday.
    for closed in ["2026-10-01T10:00:00+08:00", "2026-12-06T10:00:00+08:00"] {
        let s = summary(
            ws.test()
                .against(&sim)
                .now(closed)
                .args(["run", c, "--json"]),
        );
        assert_eq!(s["stopped"], "outside calling hours", "{closed}");
        assert_eq!(sim.journal().len(), dialled, "{closed}");
    }

    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T14:00:01+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(s["complete"], true, "{s}");
    let counts = sim.dial_counts();
    assert!(phones.iter().all(|p| counts.get(p) == Some(&1)));
}

#[test]
fn a_no_answer_is_redialled_after_the_spacing_and_at_most_max_attempts_times() {
    let sim = Sim::start(&["--outcome", "no_answer"]);
    let ws = Workspace::new();
    ws.contacts(4);
    let campaign = ws.campaign("redial: { max_attempts: 3, when: [no_answer, busy], after: 2h }\n");
    let c = campaign.to_str().unwrap();
    let dials = |sim: &Sim| sim.journal().len();

    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T09:00:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(dials(&sim), 4);
    assert_eq!(s["redials_waiting"], 4);
    let due = s["next_due"].as_str().unwrap();
    assert!(
        due.starts_with("2026-12-01T11:00:0"),
        "the next redial is due two hours later: {due}"
    );

    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:59:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(dials(&sim), 4, "not before `after`");
    assert_eq!(s["complete"], false);
    assert_eq!(s["stopped"], "redials waiting", "{s}");
    ws.test()
        .args(["status", c])
        .stdout_contains("4 waiting to redial; the next is due 2026-12-01 11:00 Asia/Shanghai")
        .status(0);
    let status = ws
        .test()
        .now("2026-12-01T10:59:00+08:00")
        .args(["status", c, "--json"])
        .stdout_any()
        .status(0)
        .json();
    assert_eq!(status["redials_waiting"], 4);
    // One vocabulary for scripts: `status --json` has the run's names, `stopped` aside, and
    // the same `next_due`.
    let mut run_keys: Vec<_> = s.as_object().unwrap().keys().collect();
    run_keys.retain(|k| *k != "stopped");
    let status_keys: Vec<_> = status.as_object().unwrap().keys().collect();
    assert_eq!(run_keys, status_keys);
    assert_eq!(status["next_due"], s["next_due"], "{status}");
    assert!(
        status["next_redial_at"]
            .as_str()
            .unwrap()
            .starts_with("2026-12-01T11:00:0"),
        "{status}"
    );

    summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T11:01:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(dials(&sim), 8, "the second attempt");
    summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T13:02:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(dials(&sim), 12, "the third attempt");
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T18:00:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(dials(&sim), 12, "never more than max_attempts");
    assert_eq!(s["redials_waiting"], 0);
    assert_eq!(s["complete"], true);

    let export = ws.export(&campaign);
    let called: Vec<_> = export
        .iter()
        .filter(|r| r["phone"].starts_with("1380013"))
        .filter(|r| r["name"] != "重复")
        .collect();
    assert!(
        called
            .iter()
            .all(|r| r["call_attempts"] == "3" && r["call_state"] == "no_answer"),
        "{called:?}"
    );
    let ids: std::collections::HashSet<_> = sim
        .journal()
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 12, "each attempt has its own idempotency key");
}

#[test]
fn suppressed_numbers_are_never_dialled_even_when_the_list_grows_between_runs() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(10);
    ws.write("dnc.csv", &format!("name,phone\nx,+86 {}\n", phones[1]));
    ws.write("dnc.txt", &format!("# opted out\n{}\n", phones[2]));
    let campaign = ws.campaign("suppress: [dnc.csv, dnc.txt]\n");
    let c = campaign.to_str().unwrap();
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:00:00+08:00")
            .args(["run", c, "--json", "--max-calls", "4"]),
    );
    assert_eq!(s["counts"]["suppressed"], 2);

    // Between runs: the text list grows, and one number is suppressed by hand.
    ws.write(
        "dnc.txt",
        &format!("# opted out\n{}\n{}\n", phones[2], phones[8]),
    );
    ws.test()
        .args([
            "suppress",
            c,
            &format!("{} {}", &phones[9][..3], &phones[9][3..]),
        ])
        .stdout_any()
        .status(0);
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:05:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(s["counts"]["suppressed"], 4, "{s}");
    let counts = sim.dial_counts();
    for listed in [1, 2, 8, 9] {
        assert!(
            !counts.contains_key(&phones[listed]),
            "suppressed {} was dialled",
            phones[listed]
        );
    }
    assert_eq!(counts.len(), 6);
}

#[test]
fn max_calls_and_daily_max_hold_across_runs() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(12);
    let campaign = ws.campaign_with(
        API,
        "{ calls_per_second: 200, concurrency: 4, daily_max: 5 }",
        "",
    );
    let c = campaign.to_str().unwrap();

    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:00:00+08:00")
            .args(["run", c, "--json", "--max-calls", "0"]),
    );
    assert_eq!(sim.journal().len(), 0, "--max-calls 0 dials nobody");
    assert_eq!(s["counts"]["pending"], 12, "but loads the list: {s}");

    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:01:00+08:00")
            .args(["run", c, "--json", "--max-calls", "3"]),
    );
    assert_eq!(sim.journal().len(), 3);
    assert_eq!(s["stopped"], "--max-calls 3 reached");
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T10:02:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(
        sim.journal().len(),
        5,
        "daily_max counts the earlier run's calls"
    );
    assert_eq!(s["stopped"], "limits.daily_max (5 calls today) reached");
    assert_eq!(
        s["next_due"], "2026-12-02T00:00:00+08:00[Asia/Shanghai]",
        "tomorrow, in the campaign's zone"
    );
    summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T23:59:00+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(sim.journal().len(), 5, "still the same day in Shanghai");
    summary(
        ws.test()
            .against(&sim)
            .now("2026-12-02T00:00:30+08:00")
            .args(["run", c, "--json"]),
    );
    assert_eq!(sim.journal().len(), 10, "a new day, a new quota");
    assert!(sim.dial_counts().values().all(|&n| n == 1));
}

#[test]
fn wait_for_window_waits_for_the_next_window_instead_of_exiting() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("hours: { windows: [\"09:00-11:59\", \"12:00-13:00\"] }\n");
    // stepcall's clock starts at 11:59:58 when stepcall first reads it, after this instant,
    // and runs at the machine's pace (the monotonic clock this instant is read from): 12:00 is
    // two seconds after it by either clock. Load only delays, so it can lengthen the wait, never
    // shorten it.
    let started = std::time::Instant::now();
    let s = summary(
        ws.test()
            .against(&sim)
            .now("2026-12-01T11:59:58+08:00")
            .args([
                "run",
                campaign.to_str().unwrap(),
                "--json",
                "--wait-for-window",
            ]),
    );
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(sim.journal().len(), 3);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "it waited for 12:00"
    );
    let noon: jiff::Timestamp = "2026-12-01T12:00:00+08:00".parse().unwrap();
    for row in ws
        .export(&campaign)
        .iter()
        .filter(|r| r["call_attempts"] == "1")
    {
        let started: jiff::Timestamp = row["call_first_dialed_at"].parse().unwrap();
        assert!(started >= noon, "no call before 12:00 in Shanghai: {row:?}");
    }
}

#[test]
fn a_do_not_call_list_that_cannot_be_read_stops_the_run_before_any_call() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(3);
    ws.write("dnc.csv", &format!("name,tel\nx,{}\n", phones[0]));
    let campaign = ws.campaign("suppress: [dnc.csv]\n");
    ws.test()
        .against(&sim)
        .now("2026-12-01T10:00:00+08:00")
        .arg("run")
        .arg(&campaign)
        .stderr_contains("is a phone column")
        .status(2);
    assert!(
        sim.journal().is_empty(),
        "nobody is rung while the list is unreadable"
    );
}

/// Calls never run ahead of the quota: at 20 calls a second, the k-th call to reach the
/// simulator (counting from 0) arrives no earlier than k/20 s after the test started stepcall.
/// The pacer (`pacer::Pacer`) lets the first call go at once, a burst of one, and gives each
/// later call the slot a period (1/20 s and a margin) after the one before, counted from the
/// schedule, never from a late caller; so t seconds after the start at most 1 + ⌊20t⌋ calls
/// can have been sent, and the k-th arrival (by arrival time) is among the calls numbered k or
/// later. The two clocks agree: the simulator stamps arrivals with the machine's real-time
/// clock (see `Sim::received_at`), and the start is read from the same clock before the spawn.
///
/// A loaded machine only delays a run, its sends and their arrivals, so it can make every time
/// here later and none earlier: the bound holds however busy the machine is. The spacing of
/// arrivals would not (a request delayed in transit arrives together with the next), nor would
/// any upper bound. That the quota is also used, each call going as soon as its slot comes, is
/// an upper bound, proven where no load can reach it: on tokio's paused clock in `pacer::tests`
/// (a caller late by up to the tolerance keeps the schedule, so no slot is lost), and measured
/// in the benchmark's `rate` part.
#[test]
fn calls_never_run_ahead_of_the_quota() {
    const RATE: u64 = 20;
    const CALLS: usize = 45;
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(CALLS);
    let run = ws
        .test()
        .against(&sim)
        .campaign_with(
            API,
            &format!("{{ calls_per_second: {RATE}, concurrency: 4 }}"),
            "",
        )
        .args(["run", "campaign.yaml", "--no-wait"])
        .stdout_any()
        .stderr_any();
    let started = jiff::Timestamp::try_from(std::time::SystemTime::now()).unwrap();
    run.status(0);

    let arrivals = sim.received_at();
    assert_eq!(arrivals.len(), CALLS);
    let counts = sim.dial_counts();
    assert!(
        phones.iter().all(|p| counts.get(p) == Some(&1)),
        "each of the {CALLS} arrived exactly once: {counts:?}"
    );
    for (k, at) in arrivals.iter().enumerate() {
        let earliest = started
            .checked_add(std::time::Duration::from_millis(1000 * k as u64 / RATE))
            .unwrap();
        assert!(
            *at >= earliest,
            "call {k} arrived {} after the start, before the quota allowed ({} s)",
            at.duration_since(started),
            k as f64 / RATE as f64
        );
    }
}
