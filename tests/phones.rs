//! stepcall's reading of phone cells, held to Google's libphonenumber: a table of its verdicts
//! on 25,000 messy cells (`tests/fixtures/phones/`, made by `make_table.py` with the Python
//! `phonenumbers` package), not to a port that shares our mistakes.
//!
//! Two rules hold for every row: stepcall never dials a number libphonenumber calls invalid,
//! and never a different number than libphonenumber's dialling form. Where stepcall reads a
//! cell differently on purpose, the row's class says how (see `Policy`), and the README lists
//! each difference with its reason.

use serde_json::Value;

/// How a class of cells is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    /// stepcall dials exactly what libphonenumber dials from the cell, and refuses what it
    /// refuses.
    Agree,
    /// libphonenumber misreads the cell's artefact (Excel's `.0`, words it turns into keypad
    /// digits or takes as the end of the number): stepcall agrees with its verdict on the
    /// number as meant.
    Meant,
    /// stepcall refuses on purpose what libphonenumber may read (scientific notation, several
    /// numbers, extensions, letters as keypad digits); when it does read one, it agrees.
    MayRefuse,
}

fn policy(class: &str) -> Policy {
    match class {
        "excel_float" | "text_latin" | "text_cjk" => Policy::Meant,
        "excel_sci" | "several" | "extension" | "junk" => Policy::MayRefuse,
        "mobile_prefix" | "mobile_length" | "landline_3" | "landline_4" | "separators"
        | "prefix_intl" | "trunk_mobile" | "carrier" | "fullwidth" | "service" | "foreign"
        | "random_digits" => Policy::Agree,
        other => panic!("class {other} has no policy: name what stepcall does with it"),
    }
}

/// Why stepcall refuses, on purpose, a cell libphonenumber reads as one number. Each is a line
/// in the README's "Numbers" section. Only a refusal is ever excused: a number dialled must be
/// libphonenumber's.
fn deliberate(row: &Row, reason: &str) -> Option<&'static str> {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).count();
    if row.cell.contains(['/', '*']) {
        // `/` separates numbers in one cell (`138…/139…`), and a `*` is no part of a number.
        Some("a slash or star between digit groups")
    } else if reason.contains("decimal") {
        // `172.38403911`, `1.5.3.3…`: a dot before the last digits reads as a decimal point.
        Some("a dot read as a decimal point")
    } else if reason.contains("extension") {
        // `010-96-789-359`: `010 96789` is a number, and `359` may be its extension.
        Some("a last group that may be an extension")
    } else if row
        .meant
        .as_deref()
        .is_some_and(|m| digits(&row.cell) > digits(m))
    {
        // `… after 6pm`: digits beside the number, which stepcall never guesses about.
        Some("digits in the words beside the number")
    } else {
        None
    }
}

struct Row {
    class: String,
    cell: String,
    meant: Option<String>,
    valid: bool,
    dial: Option<String>,
    meant_valid: Option<bool>,
    meant_dial: Option<String>,
}

fn table() -> Vec<Row> {
    let text = include_str!("fixtures/phones/libphonenumber.jsonl");
    text.lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("a JSON line");
            let s = |k: &str| v[k].as_str().map(str::to_string);
            Row {
                class: s("class").expect("class"),
                cell: s("cell").expect("cell"),
                meant: s("meant"),
                valid: v["valid"].as_bool().expect("valid"),
                dial: s("dial"),
                meant_valid: v["meant_valid"].as_bool(),
                meant_dial: s("meant_dial"),
            }
        })
        .collect()
}

#[test]
fn phone_cells_are_read_as_libphonenumber_reads_them() {
    let rows = table();
    assert!(rows.len() >= 20_000, "the table has {} rows", rows.len());
    let mut failures = Vec::new();
    let mut agreed = 0;
    let mut differences: std::collections::BTreeMap<&str, usize> = Default::default();
    for row in &rows {
        let ours = stepcall::normalize_phone(&row.cell).ok();
        let policy = policy(&row.class);
        let (valid, dial) = match policy {
            Policy::Meant => (
                row.meant_valid.expect("a meant verdict"),
                row.meant_dial.clone(),
            ),
            _ => (row.valid, row.dial.clone()),
        };
        // The two rules every row keeps.
        if let Some(n) = &ours {
            let by_cell = row.valid && row.dial.as_deref() == Some(n.as_str());
            let by_meant = policy == Policy::Meant && dial.as_deref() == Some(n.as_str());
            if !(by_cell || by_meant) {
                failures.push(format!(
                    "{} {:?}: stepcall dials {n}, libphonenumber {:?}",
                    row.class, row.cell, dial
                ));
                continue;
            }
        }
        let same = ours == dial.clone().filter(|_| valid);
        if same {
            agreed += 1;
            continue;
        }
        let reason = stepcall::normalize_phone(&row.cell).err();
        let excuse = reason.as_deref().and_then(|r| deliberate(row, r));
        match (policy, excuse) {
            (Policy::MayRefuse, _) if ours.is_none() => {
                *differences.entry("refused on purpose").or_default() += 1
            }
            (_, Some(why)) => *differences.entry(why).or_default() += 1,
            _ => failures.push(format!(
                "{} {:?}: stepcall {:?}, libphonenumber {:?} ({})",
                row.class,
                row.cell,
                stepcall::normalize_phone(&row.cell),
                dial,
                if valid { "valid" } else { "invalid" }
            )),
        }
    }
    // A few examples of each class that fails, so one look shows every kind of mistake.
    let mut shown: std::collections::BTreeMap<&str, Vec<&String>> = Default::default();
    for failure in &failures {
        let class = failure.split(' ').next().unwrap_or("");
        shown.entry(class).or_default().push(failure);
    }
    let report: Vec<String> = shown
        .iter()
        .map(|(class, f)| {
            let examples: Vec<&str> = f.iter().take(6).map(|s| s.as_str()).collect();
            format!("{class}: {} cells\n  {}", f.len(), examples.join("\n  "))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cells read differently from libphonenumber (agreed: {agreed}, deliberate: {differences:?}):\n{}",
        failures.len(),
        rows.len(),
        report.join("\n")
    );
    eprintln!(
        "{agreed} of {} cells agree with libphonenumber; deliberate: {differences:?}",
        rows.len()
    );
    // The table is not mostly refusals: most rows agree outright.
    assert!(agreed * 10 >= rows.len() * 8, "only {agreed} rows agree");
}

#[test]
fn the_metadata_is_at_least_libphonenumber_9_0_43() {
    let version: Vec<u32> = stepcall::METADATA_VERSION
        .split('.')
        .map(|p| p.parse().expect("a number"))
        .collect();
    assert!(version >= vec![9, 0, 43], "{version:?}");
    // A mobile prefix that 9.0.33 did not know.
    assert_eq!(
        stepcall::normalize_phone("16107242769").as_deref(),
        Ok("16107242769")
    );
}
