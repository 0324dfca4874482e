//! Exports people act on: safe to open in Excel, filterable, and complete as JSON lines.

use crate::harness::{Sim, Workspace, json_lines, text};

fn campaign_with_a_hostile_name(ws: &Workspace) -> String {
    ws.write(
        "contacts.csv",
        "name,phone,date\n=HYPERLINK(\"http://x\"),13800130000,12月1日\n王芳,13800130001,12月2日\n李娜,13800130002,12月3日\n",
    );
    ws.campaign("").to_str().unwrap().to_string()
}

#[test]
fn csv_cells_are_never_formulas_and_excel_gets_a_bom_and_text_numbers() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let c = campaign_with_a_hostile_name(&ws);
    ws.test()
        .against(&sim)
        .args(["run", &c])
        .stdout_any()
        .stderr_any()
        .status(0);

    let plain = ws
        .test()
        .args(["export", &c])
        .stdout_any()
        .status(0)
        .stdout();
    assert!(plain.contains("'=HYPERLINK"), "{plain}");
    assert!(!plain.contains(",=HYPERLINK") && !plain.starts_with("=HYPERLINK"));

    let out = ws
        .test()
        .args(["export", &c, "--excel"])
        .stdout_any()
        .status(0);
    assert!(
        out.stdout.starts_with(&[0xef, 0xbb, 0xbf]),
        "a BOM for Excel"
    );
    let excel = text(&out.stdout);
    assert!(
        excel.contains("\"=\"\"13800130001\"\"\""),
        "the phone number stays text: {excel}"
    );
}

#[test]
fn jsonl_has_every_attempt_and_filters_work() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let c = campaign_with_a_hostile_name(&ws);
    ws.test()
        .against(&sim)
        .args(["run", &c])
        .stdout_any()
        .stderr_any()
        .status(0);

    let export = |args: &[&str]| {
        ws.test()
            .args(["export", &c])
            .args(args)
            .stdout_any()
            .status(0)
            .stdout()
    };
    let lines = json_lines(&export(&["--format", "jsonl"]));
    assert_eq!(lines.len(), 3);
    for line in &lines {
        assert_eq!(
            line["attempts"].as_array().unwrap().len() as u64,
            line["call_attempts"].as_u64().unwrap()
        );
        assert_eq!(line["attempts"][0]["call_id"], line["call_id"]);
    }
    let answered = lines
        .iter()
        .filter(|l| l["call_state"] == "answered")
        .count();

    let only = export(&["--format", "jsonl", "--only", "answered"]);
    assert_eq!(only.lines().count(), answered);
    let later = export(&["--since", "2099-01-01"]);
    assert_eq!(later.lines().count(), 1, "only the header");
    ws.test()
        .args(["export", &c, "--only", "ringing"])
        .stderr_contains("ringing")
        .status(2);
}

#[test]
fn outcome_tags_come_from_what_people_said_and_opt_outs_are_suppressed() {
    let sim = Sim::start(&["--outcome", "completed"]);
    let ws = Workspace::new();
    let phones = ws.contacts(3);
    let campaign = ws.campaign("outcomes:\n  confirmed: { user_says_any: [\"好的\", \"yes\"] }\n  reschedule: { user_says_any: [\"改时间\"] }\n");
    let c = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", c])
        .stdout_any()
        .stderr_any()
        .status(0);
    let export = ws.export(&campaign);
    let called: Vec<_> = export
        .iter()
        .filter(|r| r["call_state"] == "answered")
        .collect();
    assert_eq!(called.len(), 3);
    assert!(
        called.iter().all(|r| r["call_tags"] == "confirmed"),
        "{called:?}"
    );

    // The rules change: retag the past calls; an opt-out puts the number on the list.
    let edited = std::fs::read_to_string(&campaign).unwrap().replace(
        "reschedule: { user_says_any: [\"改时间\"] }",
        "opt_out: { user_says_any: [\"GOT IT\"] }",
    );
    std::fs::write(&campaign, edited).unwrap();
    ws.test()
        .args(["retag", c])
        .stdout(&format!("3 calls got new tags under the rules of {c}\n"))
        .status(0);
    let export = ws.export(&campaign);
    assert!(
        export
            .iter()
            .filter(|r| r["call_state"] == "answered")
            .all(|r| r["call_tags"] == "confirmed,opt_out")
    );
    // Already suppressed by the tag.
    ws.test()
        .args(["suppress", c, &phones[0]])
        .stdout("0 numbers added to the do-not-call list of `test-campaign` (1 already on it)\n")
        .status(0);
    ws.test()
        .args(["suppress", c, "13900139000", &phones[0]])
        .stdout("1 number added to the do-not-call list of `test-campaign` (1 already on it)\n")
        .status(0);
}

#[test]
fn the_export_names_the_number_dialled_right_after_the_lists_columns() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.write(
        "contacts.csv",
        "name,phone,date\n王芳,+86 138-0013-0000,12月1日\n张伟,0138-0013-0001,12月2日\n坏号码,12345,12月3日\n",
    );
    let c = ws.campaign("");
    ws.test()
        .against(&sim)
        .args(["run", c.to_str().unwrap()])
        .stdout_any()
        .stderr_any()
        .status(0);
    let csv = ws
        .test()
        .arg("export")
        .arg(&c)
        .stdout_any()
        .status(0)
        .stdout();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("name,phone,date,call_phone,call_state,"),
        "{csv}"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let phone_of = |name: &str| rows.iter().find(|r| r[0] == name).map(|r| r[3]);
    assert_eq!(phone_of("王芳"), Some("13800130000"));
    assert_eq!(phone_of("张伟"), Some("13800130001"));
    assert_eq!(
        phone_of("坏号码"),
        Some(""),
        "an invalid row was not and would not be dialled"
    );
    // What the export names is what was rung.
    let dialled = sim.dial_counts();
    assert_eq!(dialled.get("13800130001"), Some(&1), "{dialled:?}");
    assert_eq!(dialled.len(), 2, "{dialled:?}");
}
