//! Templates that cannot work, and inputs made to hang or exhaust stepcall: each is answered
//! with a clear message, no call, and bounded memory (each run here under a data limit of
//! 500 MB; the benchmark's `hostile` part times them).

use std::process::Command;

use crate::harness::{KEY, Sim, Test, Workspace, declare_size, write_xlsx};

/// The most data memory a command here may take (KiB, for `ulimit -d`).
const DATA_LIMIT_KIB: u64 = 500 * 1024;

/// `stepcall args…` under the data limit, killed (and the test failed) if it outlives the
/// harness's watchdog: a hang shows as a failure, never as a stuck test.
fn bounded(ws: &Workspace, args: &[&str]) -> Test {
    ws.test()
        .key(KEY)
        .ulimit(&format!("-d {DATA_LIMIT_KIB}"))
        .args(args)
}

fn campaign_over(ws: &Workspace, contacts: &str, template: &str, extra: &str) -> String {
    let limits = if extra.contains("limits:") {
        ""
    } else {
        "limits: { calls_per_second: 200 }\n"
    };
    ws.write(
        "campaign.yaml",
        &format!(
            "name: bounds\ncontacts: {contacts}\nuser_requirement: \"{template}\"\nhours: always\n\
             api: {{ timeout: 60s, poll_interval: 50ms }}\n{limits}{extra}"
        ),
    )
    .to_str()
    .unwrap()
    .to_string()
}

/// Refused with exit 2, saying `says`.
#[track_caller]
fn refused(test: Test, says: &str) {
    test.stderr_contains(says).status(2);
}

/// An unknown filter is found only while rendering: it is a campaign error naming the filter,
/// for `validate` and `run` alike, and nothing is dialled.
#[test]
fn an_unknown_filter_stops_the_campaign_and_is_named() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(5);
    let campaign = campaign_over(&ws, "contacts.csv", "Call {{ name|uppercase }}", "");
    refused(ws.test().args(["validate", &campaign]), "uppercase");
    refused(
        ws.test().against(&sim).args(["run", &campaign]),
        "uppercase",
    );
    assert!(sim.journal().is_empty());
}

/// A template that fails on every row is a campaign error too, though each row fails alone.
#[test]
fn a_template_that_fails_on_every_row_is_a_campaign_error() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.contacts(5);
    let campaign = campaign_over(&ws, "contacts.csv", "Call {{ name|int + 1 }}", "");
    refused(
        ws.test().args(["validate", &campaign]),
        "fails on every row",
    );
    let too_long = campaign_over(
        &ws,
        "contacts.csv",
        "Call {{ name }} about {{ date }}",
        "limits: { calls_per_second: 200, max_requirement_chars: 10 }\n",
    );
    refused(
        ws.test().args(["validate", &too_long]),
        "max_requirement_chars",
    );
    refused(
        ws.test().against(&sim).args(["run", &too_long]),
        "fails on every row",
    );
    assert!(sim.journal().is_empty());
}

/// A requirement over `limits.max_requirement_chars` makes its row invalid, with the reason.
#[test]
fn a_requirement_over_the_limit_makes_its_row_invalid() {
    let ws = Workspace::new();
    ws.contacts(12);
    // "Call 客户N about 12月D日" is 20 to 22 characters long.
    let campaign = campaign_over(
        &ws,
        "contacts.csv",
        "Call {{ name }} about {{ date }}",
        "limits: { calls_per_second: 200, max_requirement_chars: 21 }\n",
    );
    ws.test()
        .args(["validate", &campaign])
        .stdout_contains("requirement too long")
        .stdout_contains("column user_requirement: the rendered user_requirement is 22 characters long, over the limit of 21")
        .status(4);
}

/// Rows that were invalid only because of the template are judged again when it changes;
/// once calls were made, with `--accept-changes`.
#[test]
fn rows_invalid_only_by_the_template_are_judged_again_when_it_changes() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let mut csv = String::from("name,phone,n\n");
    for i in 0..10 {
        csv.push_str(&format!("客户{i},1380013{i:04},{}\n", i % 2));
    }
    ws.write("contacts.csv", &csv);
    let campaign = campaign_over(
        &ws,
        "contacts.csv",
        "Call {{ name }}: {{ 10 // (n|int) }}",
        "",
    );
    ws.test()
        .against(&sim)
        .args(["run", &campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(
        sim.journal().len(),
        5,
        "the rows with n = 0 cannot be rendered"
    );

    campaign_over(&ws, "contacts.csv", "Call {{ name }}.", "");
    ws.test()
        .against(&sim)
        .args(["run", &campaign])
        .stderr_contains("--accept-changes")
        .status(2);
    ws.test()
        .against(&sim)
        .args(["run", &campaign, "--accept-changes"])
        .stdout_any()
        .stderr_any()
        .status(0);
    assert_eq!(sim.journal().len(), 10, "the other five are dialled now");
    assert!(sim.dial_counts().values().all(|&n| n == 1));
    for entry in sim.journal().iter().skip(5) {
        assert!(
            entry["user_requirement"].as_str().unwrap().ends_with('.'),
            "{entry}"
        );
    }
}

/// A loop inside a loop is stopped by the engine's fuel, at once, as a campaign error.
#[test]
fn a_nested_loop_in_the_template_is_stopped() {
    let ws = Workspace::new();
    ws.contacts(3);
    let campaign = campaign_over(
        &ws,
        "contacts.csv",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}{{ name }}",
        "",
    );
    refused(bounded(&ws, &["validate", &campaign]), "fuel");
}

/// Devices, pipes and folders as the contact list are refused before a byte is read: a FIFO
/// would block forever, `/dev/zero` never ends.
#[test]
fn a_device_a_pipe_or_a_folder_is_not_a_contact_list() {
    let ws = Workspace::new();
    let fifo = ws.path("contacts.fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    std::fs::create_dir(ws.path("folder.csv")).unwrap();
    for (contacts, says) in [
        ("/dev/zero", "is a device"),
        ("contacts.fifo", "is a named pipe"),
        ("folder.csv", "is a folder"),
    ] {
        let campaign = campaign_over(&ws, contacts, "Call {{ name }}", "");
        refused(bounded(&ws, &["validate", &campaign]), says);
    }
    ws.contacts(3);
    let campaign = campaign_over(
        &ws,
        "contacts.csv",
        "Call {{ name }}",
        "suppress: [/dev/zero]\n",
    );
    refused(bounded(&ws, &["validate", &campaign]), "is a device");
    refused(bounded(&ws, &["validate", "/dev/zero"]), "is a device");
}

/// A header of more columns than a spreadsheet has is refused, at once (the check of the
/// names is linear).
#[test]
fn a_header_of_a_hundred_thousand_columns_is_refused() {
    let ws = Workspace::new();
    let mut csv = String::from("name,phone");
    for i in 0..100_000 {
        csv.push_str(&format!(",c{i}"));
    }
    csv.push_str("\n王芳,13800138000\n");
    ws.write("wide.csv", &csv);
    let campaign = campaign_over(&ws, "wide.csv", "Call {{ name }}", "");
    refused(bounded(&ws, &["validate", &campaign]), "100002 columns");
}

/// A 200 MB cell of line breaks (a quotation mark never closed) is refused at its row, in
/// bounded memory.
#[test]
fn a_cell_of_two_hundred_megabytes_of_line_breaks_is_refused() {
    let ws = Workspace::new();
    let path = ws.path("broken.csv");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        f.write_all("name,phone\n王芳,13800138000\n\"".as_bytes())
            .unwrap();
        let chunk = vec![b'\n'; 1 << 20];
        for _ in 0..200 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\",13900139000\n").unwrap();
    }
    let campaign = campaign_over(&ws, "broken.csv", "Call {{ name }}", "");
    bounded(&ws, &["validate", &campaign])
        .stderr_contains("broken.csv, line 3")
        .stderr_contains("never closed")
        .status(2);
}

/// An .xlsx that declares absurd sizes (a sheet spanning every cell, a part unpacking to
/// gigabytes) is read in bounded memory or refused with a message.
#[test]
fn an_xlsx_with_absurd_dimensions_or_unpacked_size_is_bounded() {
    let ws = Workspace::new();
    let rows = r#"<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c><c r="B1" t="inlineStr"><is><t>phone</t></is></c></row><row r="2"><c r="A2" t="inlineStr"><is><t>王芳</t></is></c><c r="B2"><v>13800138000</v></c></row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>"#;
    write_xlsx(
        &ws.path("far.xlsx"),
        "Sheet1",
        rows,
        &[("dimension", "A1:XFD1048576")],
    );
    let campaign = campaign_over(&ws, "far.xlsx", "Call {{ name }}", "");
    bounded(&ws, &["validate", &campaign])
        .stdout_contains("2 rows · 1 valid · 1 invalid")
        .stdout_contains("row 1048576")
        .status(4);

    let padding = "x".repeat(1 << 16);
    write_xlsx(
        &ws.path("bomb.xlsx"),
        "Sheet1",
        rows,
        &[("xl/media/padding.bin", &padding)],
    );
    declare_size(&ws.path("bomb.xlsx"), "xl/media/padding.bin", 3_000_000_000);
    let campaign = campaign_over(&ws, "bomb.xlsx", "Call {{ name }}", "");
    refused(bounded(&ws, &["validate", &campaign]), "would unpack to");
}

/// Two rows with one number, the first invalid only by the template: once the template is
/// fixed, the first gets the number (list order) and the second is its duplicate. Neither is
/// lost to the other's old verdict.
#[test]
fn a_number_freed_by_a_fixed_template_goes_to_its_first_row() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    ws.write(
        "contacts.csv",
        "name,phone,n\n王芳,13800138000,0\n李雷,13900139000,1\n韩梅,13800138000,1\n",
    );
    let campaign = campaign_over(
        &ws,
        "contacts.csv",
        "Call {{ name }}: {{ 10 // (n|int) }}",
        "",
    );
    ws.test()
        .against(&sim)
        .args(["run", &campaign, "--max-calls", "0"])
        .stdout_any()
        .stderr_any()
        .status(0);
    campaign_over(&ws, "contacts.csv", "Call {{ name }}.", "");
    ws.test()
        .against(&sim)
        .args(["run", &campaign])
        .stdout_any()
        .stderr_any()
        .status(0);
    let journal = sim.journal();
    assert_eq!(journal.len(), 2, "{journal:?}");
    let to_first = journal
        .iter()
        .find(|e| e["phone"] == "13800138000")
        .unwrap();
    assert_eq!(to_first["user_requirement"], "Call 王芳.");
}

/// A tiny .ods that repeats one cell across a billion rows: refused at once, not expanded.
#[test]
fn an_ods_repeating_one_cell_a_billion_times_is_refused_quickly() {
    use std::io::Write;
    let ws = Workspace::new();
    let path = ws.path("contacts.ods");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("content.xml", stored).unwrap();
    zip.write_all(
        br#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet><table:table table:name="s"><table:table-row><table:table-cell><text:p>name</text:p></table:table-cell><table:table-cell><text:p>phone</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="1000000000"><table:table-cell table:number-columns-repeated="2"><text:p>13800138000</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#,
    )
    .unwrap();
    zip.finish().unwrap();
    let campaign = ws.write(
        "c.yaml",
        "name: t\ncontacts: contacts.ods\nuser_requirement: Hello {{ name }}\n",
    );
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("more cells than stepcall reads")
        .status(2);
}
