//! Contact lists read as the programs that made them read them: CSV as Python's `csv` module
//! reads it (`tests/fixtures/csv/`, made by `make_csv.py`), workbooks as LibreOffice shows them
//! (`tests/fixtures/sheets/`, saved by LibreOffice headless and openpyxl).

use crate::harness::Workspace;
use serde_json::Value;
use std::path::{Path, PathBuf};
use stepcall::{ContactReader, ReadOptions};

/// A campaign over `contacts.csv` whose template uses only the name.
fn hello(ws: &Workspace) -> PathBuf {
    ws.write(
        "hello.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: Hello {{ name }}\n",
    )
}

fn fixture(folder: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(folder)
        .join(name)
}

fn expected(folder: &str) -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(fixture(folder, "expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("JSON")
}

fn strings(row: &Value) -> Vec<String> {
    row.as_array()
        .expect("a row")
        .iter()
        .map(|c| c.as_str().expect("a cell").to_string())
        .collect()
}

/// Every row of a list, header first, with trailing empty cells dropped (a padded row and a
/// short one are the same row), and each row's problem.
type Read = (Vec<Vec<String>>, Vec<Option<String>>);

fn read_all(path: &Path) -> Result<Read, String> {
    let mut reader =
        ContactReader::open_with(path, &ReadOptions::default()).map_err(|e| format!("{e}"))?;
    let trim = |mut cells: Vec<String>| {
        while cells.last().is_some_and(String::is_empty) {
            cells.pop();
        }
        cells
    };
    let mut rows = vec![trim(reader.headers().to_vec())];
    let mut problems = Vec::new();
    while let Some(row) = reader.next_row().map_err(|e| format!("{e}"))? {
        rows.push(trim(row.cells));
        problems.push(row.problem);
    }
    Ok((rows, problems))
}

#[test]
fn text_lists_are_read_as_pythons_csv_module_reads_them() {
    let mut checked = 0;
    for (name, want) in expected("csv") {
        if want["invalid_bytes"] == true || name == "stray_quote.csv" {
            continue;
        }
        let (rows, problems) =
            read_all(&fixture("csv", &name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let python: Vec<Vec<String>> = want["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(strings)
            .collect();
        let trimmed = |mut cells: Vec<String>| {
            while cells.last().is_some_and(String::is_empty) {
                cells.pop();
            }
            cells
        };
        let python_rows: Vec<Vec<String>> = python[1..].iter().cloned().map(trimmed).collect();
        // Python keeps blank names; stepcall names an unnamed column by its letter.
        let mut header = python[0].clone();
        for (i, h) in header.iter_mut().enumerate() {
            if h.trim().is_empty() {
                *h = format!("column_{}", (b'A' + i as u8) as char);
            }
        }
        assert_eq!(rows[0], header, "{name}: header");
        assert_eq!(rows[1..], python_rows[..], "{name}: rows");
        assert!(
            problems.iter().all(Option::is_none),
            "{name}: every row is whole: {problems:?}"
        );
        checked += 1;
    }
    assert!(checked >= 14, "only {checked} lists compared");
}

#[test]
fn a_byte_no_encoding_explains_is_named_with_its_row_and_column() {
    let mut checked = 0;
    for (name, want) in expected("csv") {
        if want["invalid_bytes"] != true {
            continue;
        }
        let err = read_all(&fixture("csv", &name)).expect_err(&name);
        let row = want["bad_byte"]["row"].as_u64().expect("row");
        let column = want["bad_byte"]["column"].as_str().expect("column");
        assert!(
            err.contains(&format!("line {row}:")) && err.contains(&format!("`{column}`")),
            "{name}: {err}"
        );
        assert!(err.contains("0xFF"), "{name}: {err}");
        checked += 1;
    }
    // One stray byte early in the file and one after the first 64 KiB.
    assert!(checked >= 2, "only {checked} lists with a bad byte checked");
}

#[test]
fn a_quote_never_closed_makes_the_list_unreadable_at_the_row_it_opened() {
    let want = &expected("csv")["stray_quote.csv"];
    let line = want["quote_opens_at_line"].as_u64().expect("line");
    // Python reads the 994 rows after the stray quote as one cell: stepcall refuses the list.
    assert_eq!(want["python_rows"], 7);
    let err = read_all(&fixture("csv", "stray_quote.csv")).expect_err("unreadable");
    assert!(err.contains(&format!("line {line}:")), "{err}");
    assert!(err.contains("never closed"), "{err}");

    let ws = Workspace::new();
    std::fs::copy(fixture("csv", "stray_quote.csv"), ws.path("contacts.csv")).unwrap();
    let campaign = hello(&ws);
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains(&format!("line {line}"))
        .status(2);
}

#[test]
fn the_delimiter_ignores_quoted_cells_and_the_campaign_can_name_it() {
    let path = fixture("csv", "semicolon_commas_in_quotes.csv");
    let reader = ContactReader::open(&path).unwrap();
    assert_eq!(reader.format().delimiter, b';');
    // A campaign that says otherwise is obeyed.
    let options = ReadOptions {
        delimiter: Some(b','),
        ..ReadOptions::default()
    };
    let reader = ContactReader::open_with(&path, &options).unwrap();
    assert_eq!(reader.format().delimiter, b',');

    let ws = Workspace::new();
    std::fs::copy(fixture("csv", "tab.csv"), ws.path("contacts.csv")).unwrap();
    let campaign = ws.write(
        "semi.yaml",
        "name: t\ncontacts: contacts.csv\nuser_requirement: Hello {{ name }}\ndelimiter: \";\"\n",
    );
    // Read with `;`, the tab-separated header is one column, with no `phone` among them.
    ws.test()
        .arg("validate")
        .arg(&campaign)
        .stderr_contains("phone column")
        .status(2);
}

#[test]
fn a_duplicated_column_is_an_error_only_when_the_campaign_uses_it() {
    let ws = Workspace::new();
    std::fs::copy(
        fixture("csv", "duplicate_header.csv"),
        ws.path("contacts.csv"),
    )
    .unwrap();
    let validate = |template: &str| {
        let campaign = ws.write(
            "campaign.yaml",
            &format!("name: t\ncontacts: contacts.csv\nuser_requirement: {template}\n"),
        );
        ws.test().arg("validate").arg(campaign)
    };
    validate("Hello {{ name }}")
        .stdout_contains("王芳")
        .status(0);
    // Used by name, or through `row`, which can reach every column: no header may stand for two.
    for used in ["Hello {{ name }}, {{ note }}", "Hello {{ row[\"name\"] }}"] {
        validate(used)
            .stderr_contains("`note` appears twice")
            .status(2);
    }
}

#[test]
fn utf16_without_a_byte_order_mark_and_tiny_gbk_are_read_as_what_they_are() {
    let (rows, _) = read_all(&fixture("csv", "utf16le_nobom.csv")).unwrap();
    let python = strings(&expected("csv")["utf16le_nobom.csv"]["rows"][1]);
    assert_eq!(rows[1], python);
    let (rows, _) = read_all(&fixture("csv", "gbk_tiny.csv")).unwrap();
    assert_eq!(rows[1][0], "卢梅");
}

#[test]
fn validate_shows_the_first_names_as_decoded() {
    let ws = Workspace::new();
    std::fs::copy(fixture("csv", "gbk.csv"), ws.path("contacts.csv")).unwrap();
    let campaign = hello(&ws);
    let stdout = ws
        .test()
        .arg("validate")
        .arg(&campaign)
        .stdout_any()
        .status(0)
        .stdout();
    let rows = &expected("csv")["gbk.csv"]["rows"];
    let names: Vec<String> = (1..=3).map(|i| strings(&rows[i])[0].clone()).collect();
    let want = format!("column `name` reads: {}", names.join(", "));
    assert!(stdout.contains(&want), "want `{want}` in: {stdout}");
}

/// What LibreOffice shows, except where stepcall reads a sheet differently on purpose (each is
/// in the README's "Contact lists"): a merged cell's value is every spanned row's (LibreOffice
/// shows it once, at the top); an .xls boolean is `TRUE` as Excel shows it (LibreOffice shows
/// the `1` it stores); a text file named .xlsx is read as the text it is (LibreOffice's import
/// retypes `12月3日` as a date of its own format).
fn as_stepcall_reads(name: &str, mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    if name == "csv_named.xlsx" {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo.csv");
        return read_all(&demo).expect("the demo list").0;
    }
    if name.ends_with(".xls") {
        let flag = rows[0].iter().position(|h| h == "flag");
        for row in rows[1..].iter_mut() {
            if let Some(cell) = flag.and_then(|i| row.get_mut(i)) {
                *cell = match cell.as_str() {
                    "1" => "TRUE".into(),
                    "0" => "FALSE".into(),
                    other => other.into(),
                };
            }
        }
    }
    if name.starts_with("merged.") {
        for row in &mut rows[2..4] {
            row.resize(3, String::new());
            row[2] = "东区诊所".to_string();
        }
    }
    rows
}

#[test]
fn workbooks_are_read_as_libreoffice_shows_them() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, want) in expected("sheets") {
        let python: Vec<Vec<String>> = want["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .map(strings)
            .map(|mut cells| {
                while cells.last().is_some_and(String::is_empty) {
                    cells.pop();
                }
                cells
            })
            .collect();
        let shown = as_stepcall_reads(&name, python);
        match read_all(&fixture("sheets", &name)) {
            Ok((rows, _)) if rows == shown => checked += 1,
            Ok((rows, _)) => {
                for (ours, theirs) in rows.iter().zip(&shown) {
                    if ours != theirs {
                        failures.push(format!(
                            "{name}: stepcall {ours:?}\n   LibreOffice {theirs:?}"
                        ));
                        break;
                    }
                }
                if rows.len() != shown.len() {
                    failures.push(format!(
                        "{name}: {} rows, LibreOffice {}",
                        rows.len(),
                        shown.len()
                    ));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 14, "only {checked} workbooks compared");
}

#[test]
fn the_hidden_old_list_in_a_workbook_is_never_rung() {
    let sim = crate::harness::Sim::start(&[]);
    for name in ["hidden_first.xlsx", "hidden_first.ods", "hidden_first.xls"] {
        let ws = Workspace::new();
        // Named .csv on purpose: what the bytes are decides how the list is read.
        std::fs::copy(fixture("sheets", name), ws.path("list.csv")).unwrap();
        let campaign = ws.write(
            "c.yaml",
            "name: t\ncontacts: list.csv\nuser_requirement: Hello {{ name }}\n\
             api: { timeout: 60s, poll_interval: 50ms }\nlimits: { calls_per_second: 200 }\nhours: always\n",
        );
        ws.test()
            .against(&sim)
            .args(["run", campaign.to_str().unwrap(), "--no-wait"])
            .stdout_any()
            .stderr_any()
            .status(0);
    }
    let rung = sim.dial_counts();
    assert_eq!(rung.get("13800138000"), Some(&3), "{rung:?}");
    assert_eq!(rung.get("13912345678"), Some(&3), "{rung:?}");
    assert!(
        !rung.contains_key("13900000001"),
        "the old list's number: {rung:?}"
    );
}
