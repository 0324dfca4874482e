//! `validate` finds what would go wrong before anyone is rung.

use crate::harness::{Workspace, assert_exit, text};

#[test]
fn a_template_variable_missing_from_the_list_is_named() {
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: Call {{ name }} about {{ doctor }}\n",
    );
    let out = ws.stepcall(&["validate", campaign.to_str().unwrap()]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`doctor`") && stderr.contains("contacts.csv"),
        "{stderr}"
    );
    assert!(
        stderr.contains("name, phone, date"),
        "the available columns are listed: {stderr}"
    );
}

#[test]
fn bad_numbers_and_duplicates_are_reported_with_their_rows() {
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("");
    let out = ws.stepcall(&["validate", campaign.to_str().unwrap()]);
    assert_exit(&out, 4);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("5 rows · 3 valid · 1 invalid · 1 duplicate · 0 suppressed"),
        "{stdout}"
    );
    assert!(stdout.contains("row 5, column phone: `12345`"), "{stdout}");
    assert!(
        stdout.contains("row 6, column phone: duplicate"),
        "{stdout}"
    );
    assert!(!ws.path("campaign.db").exists(), "validate writes nothing");
}

#[test]
fn an_unknown_key_is_reported_with_file_line_and_column() {
    let ws = Workspace::new();
    ws.contacts(1);
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: hi\nlimits:\n  calls_per_minit: 5\n",
    );
    let out = ws.stepcall(&["validate", campaign.to_str().unwrap()]);
    assert_exit(&out, 2);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("c.yaml:5:3") && stderr.contains("calls_per_minit"),
        "{stderr}"
    );
}

#[test]
fn a_row_whose_requirement_renders_empty_is_invalid() {
    let ws = Workspace::new();
    ws.write(
        "contacts.csv",
        "phone,note\n13800138000,hello\n13900139000,\n",
    );
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: \"{{ note }}\"\n",
    );
    let out = ws.stepcall(&["validate", campaign.to_str().unwrap()]);
    assert_exit(&out, 4);
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("row 3, column user_requirement: the rendered user_requirement is empty"),
        "{stdout}"
    );
}

#[test]
fn a_column_named_like_an_export_column_is_refused() {
    let ws = Workspace::new();
    ws.write("contacts.csv", "phone,call_state\n13800138000,x\n");
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: hi\n",
    );
    let out = ws.stepcall(&["validate", campaign.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        text(&out.stderr).contains("call_state"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_ragged_row_is_reported_and_strict_makes_it_fatal() {
    let ws = Workspace::new();
    ws.contacts(20);
    let mut csv = std::fs::read_to_string(ws.path("contacts.csv")).unwrap();
    csv.push_str("ragged,13912345678\n");
    ws.write("contacts.csv", &csv);
    let campaign = ws.campaign("");
    let c = campaign.to_str().unwrap();
    let out = ws.stepcall(&["validate", c]);
    assert_exit(&out, 4);
    assert!(
        text(&out.stdout).contains("row 24, column -: this row has 2 cells but the header has 3"),
        "{}",
        text(&out.stdout)
    );
    let out = ws.stepcall(&["validate", c, "--strict"]);
    assert_exit(&out, 2);
    assert!(
        !ws.path("campaign.db").exists(),
        "validate writes no database"
    );
}
