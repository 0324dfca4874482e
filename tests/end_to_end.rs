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
