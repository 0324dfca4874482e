//! Exports people act on: safe to open in Excel, filterable, and complete as JSON lines.

use std::io::Read;

use calamine::{Data, Reader, Xlsx, open_workbook};

use crate::harness::{Sim, Workspace, json_lines, text};

fn campaign_with_a_hostile_name(ws: &Workspace) -> String {
    ws.write(
        "contacts.csv",
        "name,phone,date\n=HYPERLINK(\"http://x\"),13800130000,12月1日\n王芳,13800130001,12月2日\n李娜,13800130002,12月3日\n",
    );
    ws.campaign("").to_str().unwrap().to_string()
}

/// That campaign, run to its end against a simulator of its own (kept alive with it).
fn run_with_a_hostile_name() -> (Sim, Workspace, String) {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let c = campaign_with_a_hostile_name(&ws);
    ws.test()
        .against(&sim)
        .args(["run", &c])
        .stdout_any()
        .stderr_any()
        .status(0);
    (sim, ws, c)
}

#[test]
fn csv_cells_are_never_formulas_and_excel_gets_a_bom_and_text_numbers() {
    let (_sim, ws, c) = run_with_a_hostile_name();

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
    let (_sim, ws, c) = run_with_a_hostile_name();

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

/// A list with what Excel mangles in a CSV: an 18-digit ID number (15 significant digits
/// survive a number cell), ids with leading zeros, a landline, and Chinese names.
fn campaign_excel_mangles(ws: &Workspace) -> String {
    ws.write(
        "contacts.csv",
        "name,phone,id_number,member,date\n王芳,13800130000,110101199003070012,000123,12月1日\n张伟,010-6552 9988,44030119851231002X,0042,12月2日\n李娜,13800130002,320102197001010015,7,12月3日\n",
    );
    ws.campaign("hours: { timezone: Asia/Shanghai, windows: [\"00:00-23:59\"] }\n")
        .to_str()
        .unwrap()
        .to_string()
}

/// The zip part `name` of the workbook at `path`, as text.
fn part(path: &std::path::Path, name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut text = String::new();
    zip.by_name(name)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn an_xlsx_export_has_text_numbers_and_ids_date_cells_and_a_frozen_filtered_header() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let c = campaign_excel_mangles(&ws);
    let now = "2026-12-02T09:00:05+08:00";
    ws.test()
        .against(&sim)
        .now(now)
        .args(["run", &c])
        .stdout_contains(&format!(
            "export the results: {} export {c} -o results.xlsx",
            env!("CARGO_BIN_EXE_stepcall")
        ))
        .stderr_any()
        .status(0);
    let path = ws.path("results.xlsx");
    ws.test()
        .args(["export", &c, "-o"])
        .arg(&path)
        .stderr_contains(&format!("wrote 3 contacts to {}", path.display()))
        .status(0);

    let mut book: Xlsx<_> = open_workbook(&path).unwrap();
    let sheet = book.worksheet_range("results").unwrap();
    let rows: Vec<&[Data]> = sheet.rows().collect();
    let header: Vec<String> = rows[0].iter().map(|d| d.to_string()).collect();
    assert_eq!(
        &header[..6],
        ["name", "phone", "id_number", "member", "date", "call_phone"]
    );
    assert_eq!(header.last().unwrap(), "call_tags");
    assert_eq!(rows.len(), 4, "the header and three contacts");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let row_of = |name: &str| {
        rows[1..]
            .iter()
            .find(|r| r[col("name")] == Data::String(name.into()))
            .unwrap_or_else(|| panic!("no row for {name}: {rows:?}"))
    };
    let string = |s: &str| Data::String(s.into());
    for (name, column, want, why) in [
        ("王芳", "phone", "13800130000", "a mobile"),
        ("王芳", "call_phone", "13800130000", "the number dialled"),
        ("王芳", "id_number", "110101199003070012", "all 18 digits"),
        ("王芳", "member", "000123", "leading zeros"),
        ("张伟", "id_number", "44030119851231002X", "an X"),
        ("张伟", "member", "0042", "leading zeros"),
        ("张伟", "phone", "010-6552 9988", "the list's cell"),
        ("张伟", "call_phone", "01065529988", "a landline's 0"),
        ("李娜", "member", "7", "a list cell is text, always"),
    ] {
        assert_eq!(
            row_of(name)[col(column)],
            string(want),
            "{name} {column}: {why}"
        );
    }
    let (wang, zhang) = (row_of("王芳"), row_of("张伟"));
    assert!(
        matches!(&zhang[col("call_id")], Data::String(id) if !id.is_empty()),
        "{zhang:?}"
    );
    assert_eq!(
        wang[col("call_attempts")],
        Data::Float(1.0),
        "a count is a number"
    );

    // Times are date cells holding the campaign's wall-clock time, to the second.
    let start: jiff::Zoned = format!("{now}[Asia/Shanghai]").parse().unwrap();
    let epoch = jiff::civil::date(1899, 12, 30).at(0, 0, 0, 0);
    let serial = |z: &jiff::Zoned| z.datetime().duration_since(epoch).as_secs_f64() / 86_400.0;
    for row in &rows[1..] {
        for name in ["call_first_dialed_at", "call_updated_at"] {
            let Data::DateTime(at) = &row[col(name)] else {
                panic!("{name} is not a date cell: {row:?}");
            };
            let days = at.as_f64() - serial(&start);
            assert!(
                (0.0..120.0 / 86_400.0).contains(&days),
                "{name} is {days} days after the run started, not Shanghai's time: {row:?}"
            );
            let seconds = at.as_f64() * 86_400.0;
            assert!(
                (seconds - seconds.round()).abs() < 1e-3,
                "whole seconds: {seconds}"
            );
        }
    }
    let styles = part(&path, "xl/styles.xml");
    assert!(
        styles.contains("yyyy-mm-dd&quot;T&quot;hh:mm:ss&quot;+08:00&quot;"),
        "times show the offset: {styles}"
    );

    let xml = part(&path, "xl/worksheets/sheet1.xml");
    assert!(
        xml.contains("<autoFilter ref=\"A1:Q4\""),
        "a filter on the header: {xml}"
    );
    assert!(
        xml.contains("<pane ySplit=\"1\"") && xml.contains("state=\"frozen\""),
        "the header row is frozen: {xml}"
    );
    assert!(xml.contains("<cols>"), "columns have widths: {xml}");
    assert!(!xml.contains("<f>"), "no formula anywhere");
}

#[test]
fn the_export_format_comes_from_the_flag_or_the_extension_and_an_unknown_one_is_refused() {
    let (_sim, ws, c) = run_with_a_hostile_name();
    // --format names the format whatever the file is called; stdout is CSV unless told.
    let bin = ws.path("results.bin");
    ws.test()
        .args(["export", &c, "--format", "xlsx", "-o"])
        .arg(&bin)
        .stderr_contains("wrote 3 contacts")
        .status(0);
    assert!(std::fs::read(&bin).unwrap().starts_with(b"PK"), "a zip");
    let xlsx = ws
        .test()
        .args(["export", &c, "--format", "xlsx"])
        .stdout_any()
        .status(0);
    assert!(xlsx.stdout.starts_with(b"PK"), "a workbook on a pipe");
    // A hostile name is a text cell: never a formula, and not changed either.
    let mut book = Xlsx::new(std::io::Cursor::new(xlsx.stdout.clone())).unwrap();
    let sheet = book.worksheet_range("results").unwrap();
    assert_eq!(
        sheet.get((1, 0)),
        Some(&Data::String("=HYPERLINK(\"http://x\")".into()))
    );

    for (args, says) in [
        (vec!["-o", "results.txt"], "stepcall writes no `.txt` file"),
        (vec!["-o", "results.xls"], "stepcall writes no `.xls` file"),
        (
            vec!["--format", "csv", "-o", "results.xlsx"],
            "--format csv contradicts the name results.xlsx",
        ),
        (vec!["--format", "xls"], "invalid value 'xls'"),
    ] {
        ws.test()
            .args(["export", &c])
            .args(&args)
            .stderr_contains(says)
            .status(2);
    }
    for file in ["results.txt", "results.xls", "results.xlsx"] {
        assert!(!ws.path(file).exists(), "{file} was written");
    }
}

#[test]
fn exported_times_are_the_campaigns_to_the_second_and_agree_with_since() {
    let sim = Sim::start(&[]);
    let ws = Workspace::new();
    let c = campaign_excel_mangles(&ws);
    // Half past midnight in Shanghai is still the day before in UTC: a time written in UTC
    // would name 2026-12-01 for a row that `--since 2026-12-02` keeps.
    ws.test()
        .against(&sim)
        .now("2026-12-02T00:30:00+08:00")
        .args(["run", &c])
        .stdout_any()
        .stderr_any()
        .status(0);
    let export = ws.export(std::path::Path::new(&c));
    assert_eq!(export.len(), 3);
    let start: jiff::Timestamp = "2026-12-02T00:30:00+08:00".parse().unwrap();
    for row in &export {
        for name in ["call_first_dialed_at", "call_updated_at"] {
            let shown = &row[name];
            assert!(
                shown.len() == "2026-12-02T00:30:00+08:00".len()
                    && shown.starts_with("2026-12-02T00:3")
                    && shown.ends_with("+08:00"),
                "{name} reads {shown:?}, not like 2026-12-02T00:30:05+08:00"
            );
            let at: jiff::Timestamp = shown.parse().unwrap();
            assert!(at >= start && at < start + jiff::SignedDuration::from_secs(120));
        }
    }
    let rows = |since: &str| {
        let out = ws
            .test()
            .args(["export", &c, "--since", since])
            .stdout_any()
            .status(0);
        csv::Reader::from_reader(&out.stdout[..]).records().count()
    };
    assert_eq!(
        rows("2026-12-02"),
        3,
        "the day the rows name is the day --since means"
    );
    assert_eq!(rows("2026-12-03"), 0);
    // A row's shown second is one --since keeps: shown times are cut, never rounded up.
    let latest = export.iter().map(|r| &r["call_updated_at"]).max().unwrap();
    assert!(
        rows(latest) >= 1,
        "--since {latest} keeps the row that shows it"
    );

    // The JSON lines speak the same clock, attempts included.
    let jsonl = ws
        .test()
        .args(["export", &c, "--format", "jsonl"])
        .stdout_any()
        .status(0)
        .stdout();
    for line in json_lines(&jsonl) {
        let updated = line["call_updated_at"].as_str().unwrap();
        assert!(updated.ends_with("+08:00") && updated.len() == 25, "{line}");
        let started = line["attempts"][0]["started_at"].as_str().unwrap();
        assert!(started.ends_with("+08:00") && started.len() == 25, "{line}");
    }
}
