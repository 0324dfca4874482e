//! A campaign edited between runs: refused once calls were made, unless the user accepts it.

use crate::harness::{Sim, TEMPLATE, Workspace};

#[test]
fn a_changed_template_is_refused_after_calls_then_accepted_on_request() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("");
    let campaign_arg = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stdout_any()
        .stderr_any()
        .status(0);

    let edited = std::fs::read_to_string(&campaign)
        .unwrap()
        .replace(TEMPLATE, "Hello {{ name }}, see you on {{ date }}.");
    std::fs::write(&campaign, edited).unwrap();
    let mut csv = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    csv.push_str("新客户,13912345678,12月9日\n");
    ws.write("contacts.csv", &csv);

    let out = ws
        .test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stderr_contains("--accept-changes")
        .status(2);
    let stderr = out.stderr();
    assert!(
        stderr.contains("user_requirement was «Call {{ name }}"),
        "the message shows the old template: {stderr}"
    );
    assert!(
        stderr.contains("now «Hello {{ name }}"),
        "and the new one: {stderr}"
    );
    assert_eq!(sim.journal().len(), 3, "nobody was dialled");

    ws.test()
        .against(&sim)
        .args(["run", campaign_arg, "--accept-changes"])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 4, "only the new row is dialled");
    assert_eq!(
        journal[3]["user_requirement"],
        "Hello 新客户, see you on 12月9日."
    );
}

#[test]
fn contacts_not_dialled_yet_get_the_new_template() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("");
    let campaign_arg = campaign.to_str().unwrap();
    // A run that dials nobody (wrong key) still imports the contacts.
    ws.test()
        .against(&sim)
        .key("aicall_wrong")
        .args(["run", campaign_arg])
        .stderr_contains("rejected the API key")
        .stdout_contains("2 not dialled yet")
        .status(77);
    let edited = std::fs::read_to_string(&campaign)
        .unwrap()
        .replace(TEMPLATE, "Fixed: {{ name }}");
    std::fs::write(&campaign, edited).unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 2);
    assert!(
        journal.iter().all(|e| e["user_requirement"]
            .as_str()
            .unwrap()
            .starts_with("Fixed: ")),
        "{journal:?}"
    );
}

#[test]
fn a_row_deleted_or_corrected_in_the_list_is_never_dialled() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let phones = ws.contacts(6);
    let campaign = ws.campaign("");
    let c = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", c, "--max-calls", "2"])
        .stdout_any()
        .stderr_any()
        .status(0);

    // Row 5 deleted, row 6's number corrected, row 4's name edited.
    let csv = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    let edited: Vec<String> = csv
        .lines()
        .filter(|l| !l.contains(&phones[4]))
        .map(|l| {
            l.replace(&phones[5], "13999999999")
                .replace("客户3,", "客户三,")
        })
        .collect();
    ws.write("contacts.csv", &(edited.join("\n") + "\n"));
    ws.test()
        .against(&sim)
        .args(["run", c])
        .stdout_any()
        .stderr_contains("no longer in")
        .status(0);

    let counts = sim.dial_counts();
    assert!(
        !counts.contains_key(&phones[4]),
        "the deleted row was dialled"
    );
    assert!(
        !counts.contains_key(&phones[5]),
        "the old, wrong number was dialled"
    );
    assert_eq!(
        counts.get("13999999999"),
        Some(&1),
        "the corrected number is dialled"
    );
    assert_eq!(
        counts.get(&phones[3]),
        Some(&1),
        "an edited name is still the same person, dialled once"
    );
    assert!(counts.values().all(|&n| n == 1));
    let status = ws
        .test()
        .args(["status", c, "--json"])
        .stdout_any()
        .status(0)
        .json();
    assert_eq!(status["counts"]["removed"], 3, "{status}");
    assert_eq!(status["complete"], true);
}

#[test]
fn a_row_that_comes_back_with_a_new_template_gets_the_new_words() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("");
    let campaign_arg = campaign.to_str().unwrap();
    let full = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg, "--max-calls", "1"])
        .stdout_any()
        .stderr_any()
        .status(0);
    // The second contact leaves the list (it becomes `removed`)...
    let without: String = full
        .lines()
        .filter(|l| !l.starts_with("客户1,"))
        .map(|l| format!("{l}\n"))
        .collect();
    ws.write("contacts.csv", &without);
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(sim.journal().len(), 1);
    // ...and comes back in the run that also changes the template.
    ws.write("contacts.csv", &full);
    let edited = std::fs::read_to_string(&campaign)
        .unwrap()
        .replace(TEMPLATE, "New words for {{ name }}");
    std::fs::write(&campaign, edited).unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg, "--accept-changes"])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 2, "{journal:?}");
    assert_eq!(journal[1]["user_requirement"], "New words for 客户1");
}

#[test]
fn an_unchanged_list_is_not_imported_again_and_an_edited_one_is() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(2);
    let campaign = ws.campaign("");
    let campaign_arg = campaign.to_str().unwrap();
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stdout_any()
        .stderr_any()
        .status(0);
    ws.test()
        .against(&sim)
        .args(["-vv", "run", campaign_arg])
        .stdout_any()
        .stderr_contains("unchanged since the last import")
        .status(0);
    let mut csv = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    csv.push_str("新客户,13912345678,12月9日\n");
    ws.write("contacts.csv", &csv);
    ws.test()
        .against(&sim)
        .args(["run", campaign_arg])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 3, "the new row is dialled: {journal:?}");
    assert_eq!(journal[2]["phone"], "13912345678");
}
