//! A whole campaign against the simulator: what was dialled, with which words, and what the
//! export says about it.

use std::collections::HashMap;

use crate::harness::{KEY, Sim, Workspace, text};

/// phone → requirement, parsed from `preview` output.
fn previews(ws: &Workspace, campaign: &str, n: usize) -> HashMap<String, String> {
    let stdout = ws
        .test()
        .args(["preview", campaign, "-n", &n.to_string()])
        .stdout_any()
        .status(0)
        .stdout();
    let mut map = HashMap::new();
    for block in stdout.split("── row ").skip(1) {
        let (head, body) = block.split_once('\n').unwrap();
        let phone = head
            .split(" · ")
            .nth(1)
            .unwrap()
            .trim_end_matches(" ──")
            .to_string();
        map.insert(phone, body.trim_end().to_string());
    }
    map
}

#[test]
fn every_valid_contact_is_dialled_once_with_the_previewed_words() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(50);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();

    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);

    let journal = sim.journal();
    let counts = sim.dial_counts();
    assert_eq!(journal.len(), 50, "one call per valid contact");
    assert!(
        phones.iter().all(|p| counts.get(p) == Some(&1)),
        "every valid number exactly once: {counts:?}"
    );
    assert!(
        !counts.contains_key("12345"),
        "the invalid row is never dialled"
    );

    let preview = previews(&ws, campaign, 100);
    assert_eq!(preview.len(), 50);
    for entry in &journal {
        let phone = entry["phone"].as_str().unwrap();
        assert_eq!(
            entry["user_requirement"].as_str(),
            Some(preview[phone].as_str()),
            "{phone}"
        );
    }

    let export = ws.export(campaign.as_ref());
    assert_eq!(
        export.len(),
        52,
        "every row of the list, invalid and duplicate included"
    );
    let by_call: HashMap<&str, &str> = journal
        .iter()
        .map(|e| (e["call_id"].as_str().unwrap(), e["phone"].as_str().unwrap()))
        .collect();
    for row in &export {
        match row["call_state"].as_str() {
            "invalid" => assert_eq!(row["phone"], "12345"),
            "duplicate" => assert_eq!(row["name"], "重复"),
            state => {
                assert!(
                    ["answered", "no_answer", "busy", "failed"].contains(&state),
                    "final state, not {state}"
                );
                assert_eq!(
                    by_call.get(row["call_id"].as_str()),
                    Some(&row["phone"].as_str()),
                    "export call id is the journal's"
                );
                assert_eq!(row["call_attempts"], "1");
            }
        }
    }
    let answered = export
        .iter()
        .find(|r| r["call_state"] == "answered")
        .expect("some call answered");
    assert!(
        answered["call_transcript"].starts_with("assistant: "),
        "{}",
        answered["call_transcript"]
    );
    assert!(
        !answered["call_transcript"].contains("internal prompt"),
        "system turns are not exported"
    );
}

#[test]
fn a_second_run_dials_nobody_and_new_rows_are_imported() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(5);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(
        sim.journal().len(),
        5,
        "a finished campaign run again dials nobody"
    );

    let mut csv = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    csv.push_str("新客户,13912345678,12月9日\n");
    ws.write("contacts.csv", &csv);
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let counts = sim.dial_counts();
    assert_eq!(sim.journal().len(), 6);
    assert_eq!(counts["13912345678"], 1, "the appended row is dialled");
}

#[test]
fn the_database_is_private_and_never_holds_the_key() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("");
    let out = ws
        .test()
        .against(&sim)
        .args(["run", campaign.to_str().unwrap(), "-v"])
        .stdout_any()
        .stderr_any()
        .status(0);

    let db = ws.path("campaign.db");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
    for file in [db.clone(), ws.path("campaign.db-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(
                !text(&bytes).contains(KEY),
                "{} holds the key",
                file.display()
            );
        }
    }
    assert!(
        !text(&out.stdout).contains(KEY) && !text(&out.stderr).contains(KEY),
        "output holds the key"
    );
}

#[test]
fn status_json_counts_every_state() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(4);
    let campaign = ws.campaign("");
    let campaign = campaign.to_str().unwrap();
    let status = || {
        ws.test()
            .args(["status", campaign, "--json"])
            .stdout_any()
            .status(0)
            .json()
    };
    let before = status();
    assert_eq!(before["started"], false);
    assert!(
        !ws.path("campaign.db").exists(),
        "status does not create a database"
    );
    ws.test()
        .against(&sim)
        .args(["run", campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let after = status();
    assert_eq!(after["total"], 6);
    assert_eq!(after["counts"]["invalid"], 1);
    assert_eq!(after["counts"]["duplicate"], 1);
    assert_eq!(after["counts"]["pending"], 0);
    assert_eq!(after["complete"], true);
}

/// A rehearsal stopped early and resumed runs on a new simulator each time. Each contact
/// still gets a call id of its own (the ids of one simulator never recur in the next) and the
/// result of its own call (the simulator remembers the calls of the first run).
#[test]
fn a_rehearsal_resumed_gives_every_contact_its_own_call_and_result() {
    let ws = Workspace::new();
    let phones = ws.contacts(6);
    ws.campaign("");
    let rehearse = |extra: &[&str]| {
        ws.test()
            .args(["run", "campaign.yaml", "--simulate"])
            .args(extra)
            .stdout_any()
            .stderr_any()
            .status(0)
    };
    rehearse(&["--max-calls", "3", "--no-wait"]);
    rehearse(&[]);
    let export = ws.export(&ws.path("campaign.yaml"));
    let called: Vec<_> = export.iter().filter(|r| !r["call_id"].is_empty()).collect();
    assert_eq!(called.len(), phones.len(), "{export:?}");
    let ids: std::collections::HashSet<_> = called.iter().map(|r| &r["call_id"]).collect();
    assert_eq!(
        ids.len(),
        phones.len(),
        "two contacts share a call id: {called:?}"
    );
    // Each id is the one the simulator issued for that contact's number.
    let journal = std::fs::read_to_string(ws.path("campaign.db-simulator.jsonl")).unwrap();
    let issued: HashMap<String, String> = crate::harness::json_lines(&journal)
        .into_iter()
        .map(|e| {
            (
                e["call_id"].as_str().unwrap().into(),
                e["phone"].as_str().unwrap().into(),
            )
        })
        .collect();
    for row in &called {
        assert_eq!(issued[&row["call_id"]], row["call_phone"], "{row:?}");
        assert!(
            !row["call_status_raw"].is_empty(),
            "the first run's call never got its result: {row:?}"
        );
    }
}

/// The simulated person answers like people do, the same way on every rehearsal of the same
/// numbers: most confirm, some want another time or a call tomorrow afternoon, some ask not to
/// be called again, some say nothing; a redial may reach someone the first call missed.
#[test]
fn a_rehearsal_meets_every_kind_of_answer_and_redials_reach_some_who_missed() {
    let ws = Workspace::new();
    ws.contacts(60);
    ws.campaign(
        "outcomes:\n  confirmed: { user_says_any: [\"我知道了\"] }\n  reschedule: { user_says_any: [\"改时间\"] }\n  \
         callback: { user_says_any: [\"明天下午\"] }\n  opt_out: { user_says_any: [\"别再打\"] }\n\
         redial: { max_attempts: 2, when: [no_answer, busy], after: 2h }\n",
    );
    let rehearse = |at: &str| {
        ws.test()
            .now(at)
            .args(["run", "campaign.yaml", "--simulate"])
            .stdout_any()
            .stderr_any()
            .status(0)
    };
    rehearse("2026-12-01T09:00:00+08:00");
    rehearse("2026-12-01T11:30:00+08:00");
    let export = ws.export(&ws.path("campaign.yaml"));
    let answered: Vec<_> = export
        .iter()
        .filter(|r| r["call_state"] == "answered")
        .collect();
    for tag in ["confirmed", "reschedule", "callback", "opt_out"] {
        assert!(
            answered.iter().any(|r| r["call_tags"] == tag),
            "nobody was tagged {tag}: {answered:?}"
        );
    }
    assert!(
        answered
            .iter()
            .any(|r| r["call_tags"].is_empty() && !r["call_transcript"].contains("user:")),
        "nobody stayed silent: {answered:?}"
    );
    assert!(
        answered.iter().any(|r| r["call_attempts"] == "2"),
        "no redial reached someone the first call missed: {export:?}"
    );
    // The same numbers play out the same way on a fresh rehearsal.
    let tags = |export: &[HashMap<String, String>]| -> Vec<(String, String)> {
        let mut v: Vec<_> = export
            .iter()
            .map(|r| (r["call_phone"].clone(), r["call_tags"].clone()))
            .collect();
        v.sort();
        v
    };
    let first = tags(&export);
    // `rm campaign.db*`, as the README says to start a rehearsal over.
    for entry in std::fs::read_dir(ws.path("")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("campaign.db")
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    rehearse("2026-12-01T09:00:00+08:00");
    rehearse("2026-12-01T11:30:00+08:00");
    assert_eq!(tags(&ws.export(&ws.path("campaign.yaml"))), first);
}

/// A resumed run's progress counts the whole campaign, not only this run's share, at a rate
/// in calls per minute; away from a terminal even a short run logs where it stands.
#[test]
fn a_resumed_runs_progress_counts_the_whole_campaign() {
    let ws = Workspace::new();
    ws.contacts(12);
    ws.campaign("");
    ws.test()
        .args(["run", "campaign.yaml", "--simulate", "--max-calls", "5"])
        .stdout_any()
        .stderr_contains("progress: 5/12 dialled, ")
        .status(0);
    let resumed = ws
        .test()
        .args(["run", "campaign.yaml", "--simulate"])
        .stdout_any()
        .stderr_contains("progress: 12/12 dialled, ")
        .status(0);
    let line = resumed
        .stderr()
        .lines()
        .find(|l| l.contains("progress: 12/12"))
        .unwrap()
        .to_string();
    let rate = line
        .split(", ")
        .find(|p| p.ends_with(" calls/min"))
        .unwrap();
    let number = rate.trim_end_matches(" calls/min");
    assert!(
        number.split_once('.').is_some_and(|(_, d)| d.len() == 1),
        "one decimal: {line}"
    );
}
