//! `validate` finds what would go wrong before anyone is rung.

use crate::harness::Workspace;

#[test]
fn a_template_variable_missing_from_the_list_is_named() {
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: Call {{ name }} about {{ doctor }}\n",
    );
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("`doctor`")
        .stderr_contains("contacts.csv")
        // The available columns are listed.
        .stderr_contains("name, phone, date")
        .status(2);
}

#[test]
fn bad_numbers_and_duplicates_are_reported_with_their_rows() {
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = ws.campaign("");
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stdout_contains("5 rows · 3 valid · 1 invalid · 1 duplicate · 0 suppressed")
        .stdout_contains("row 5, column phone: `12345`")
        .stdout_contains("row 6, column phone: duplicate")
        .status(4);
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
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("c.yaml:5:3")
        .stderr_contains("calls_per_minit")
        .stderr_contains("did you mean `calls_per_minute`?")
        .status(2);
    let top = ws.write(
        "top.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: hi\nlimit: { calls_per_minute: 5 }\n",
    );
    ws.test()
        .arg("validate")
        .arg(&top)
        .stderr_contains("did you mean `limits`?")
        .status(2);
}

/// A clinic's list calls its phone column 手机号: the error names it, and the line to write.
#[test]
fn a_missing_phone_column_suggests_the_one_that_looks_like_phones() {
    let ws = Workspace::new();
    ws.write(
        "clinic.csv",
        "姓名,手机号,预约日期\n张三,13800138000,12月1日\n",
    );
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: clinic.csv\nuser_requirement: 您好 {{ 姓名 }}\n",
    );
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("the phone column `phone` is not in the header")
        .stderr_contains("put `phone_column: 手机号` in")
        .status(2);
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
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stdout_contains("row 3, column user_requirement: the rendered user_requirement is empty")
        .status(4);
}

#[test]
fn a_column_named_like_an_export_column_is_refused() {
    let ws = Workspace::new();
    ws.write("contacts.csv", "phone,call_state\n13800138000,x\n");
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: hi\n",
    );
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("call_state")
        .status(2);
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
    ws.test()
        .args(["validate", c])
        .stdout_contains("row 24, column -: this row has 2 cells but the header has 3")
        .status(4);
    ws.test()
        .args(["validate", c, "--strict"])
        .stdout_contains("cannot run with --strict: some rows are invalid")
        .status(2);
    assert!(
        !ws.path("campaign.db").exists(),
        "validate writes no database"
    );
}
