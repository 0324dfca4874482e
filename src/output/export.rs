//! `export`: every contact with its result, as CSV for spreadsheets, an Excel workbook
//! (`xlsx.rs`), or JSON lines for programs.
//!
//! The result columns have fixed names (`call_state`, `call_id`, ...) that downstream sheets and
//! CRMs key on; a contact list that already has a column of that name is refused at validate
//! time rather than silently overwritten. Transcripts hold what strangers said, so every CSV
//! cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR)
//! is neutralised with a leading `'`, as OWASP describes for CSV injection; with `--excel` the
//! file starts with a BOM (so Chinese opens correctly) and numbers that Excel would mangle
//! (13800138000 → 1.38E+10, 010… → 10…) are written as text. Times are written for people
//! (`clock::for_people`, in the campaign's zone), in every format, so an exported row agrees
//! with `--since` and the calling hours. A row is typed once (`Cell`), here, so the CSV and the
//! workbook cannot disagree on a column. Rows stream from the database, so a large export
//! takes constant memory.

use std::io::Write;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::errors::{Error, Result};
use crate::state::machine::{CallState, RESULT_COLUMNS};
use crate::state::{ExportRow, Store};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Jsonl,
    Xlsx,
}

/// What to export, and how.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub format: Format,
    /// UTF-8 with a BOM, numbers kept as text: for opening in Excel.
    pub excel: bool,
    /// Only contacts in these states.
    pub only: Option<Vec<CallState>>,
    /// Only contacts updated at or after this instant.
    pub since: Option<Timestamp>,
    /// The campaign's zone (its `hours:`), in which times are written.
    pub zone: TimeZone,
}

impl ExportOptions {
    pub(super) fn keeps(&self, row: &ExportRow) -> bool {
        let state_ok = self
            .only
            .as_ref()
            .is_none_or(|only| only.iter().any(|s| s.as_str() == row.state));
        let time_ok = self.since.is_none_or(|since| {
            row.updated_at
                .parse::<Timestamp>()
                .is_ok_and(|t| t >= since)
        });
        state_ok && time_ok
    }
}

pub(super) fn io(e: impl std::fmt::Display) -> Error {
    Error::WriteFile {
        path: "export".into(),
        cause: std::io::Error::other(e.to_string()),
    }
}

/// Writes the export of `store` to `out`. Returns the number of contacts written.
pub fn write(store: &Store, mut out: impl Write + Send, options: &ExportOptions) -> Result<u64> {
    let time = |stored: &str| people_time(stored, &options.zone);
    match options.format {
        Format::Csv => write_csv(store, out, options),
        Format::Xlsx => crate::output::xlsx::write(store, out, options),
        Format::Jsonl => {
            let mut written = 0;
            store.for_each_export_row(|row| {
                if !options.keeps(&row) {
                    return Ok(());
                }
                let mut attempts = store.attempts_of(row.contact_id)?;
                for attempt in &mut attempts {
                    attempt.started_at = time(&attempt.started_at);
                }
                let line = json!({
                    "row": row.cells,
                    "phone": row.phone,
                    "call_phone": row.phone,
                    "call_state": row.state,
                    "call_id": row.call_id,
                    "call_attempts": row.attempts,
                    "call_status_raw": row.status_raw,
                    "call_duration_seconds": row.duration_seconds,
                    "call_cost": row.cost,
                    "call_transcript": row.transcript,
                    "call_error": row.error,
                    "call_first_dialed_at": row.first_dialed_at.as_deref().map(time),
                    "call_updated_at": time(&row.updated_at),
                    "call_tags": row.tags.as_deref().map(|t| t.split(',').collect::<Vec<_>>()).unwrap_or_default(),
                    "attempts": attempts,
                });
                writeln!(out, "{line}").map_err(io)?;
                written += 1;
                Ok(())
            })?;
            out.flush().map_err(io)?;
            Ok(written)
        }
    }
}

fn write_csv(store: &Store, mut out: impl Write, options: &ExportOptions) -> Result<u64> {
    if options.excel {
        out.write_all(&[0xef, 0xbb, 0xbf]).map_err(io)?;
    }
    let columns = store.columns()?;
    let mut csv = csv::Writer::from_writer(out);
    csv.write_record(header(&columns)).map_err(io)?;
    let mut written = 0;
    store.for_each_export_row(|row| {
        if !options.keeps(&row) {
            return Ok(());
        }
        let cells: Vec<String> = record(&columns, &row)
            .into_iter()
            .map(|c| cell(c.text(&options.zone), options.excel))
            .collect();
        csv.write_record(&cells).map_err(io)?;
        written += 1;
        Ok(())
    })?;
    csv.flush().map_err(io)?;
    Ok(written)
}

/// A cell as a spreadsheet must see it: never a formula, and with `excel`, a long or
/// zero-led number as text.
pub fn cell(value: String, excel: bool) -> String {
    let digits = value.len() > 1 && value.bytes().all(|b| b.is_ascii_digit());
    if excel && digits && (value.len() >= 11 || value.starts_with('0')) {
        return format!("=\"{value}\"");
    }
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value,
    }
}

/// A stored instant as `clock::for_people` writes it.
fn people_time(stored: &str, zone: &TimeZone) -> String {
    stored_time(stored).text(zone)
}

/// A stored instant; one that does not parse is shown as stored rather than lost.
fn stored_time(stored: &str) -> Cell {
    stored
        .parse::<Timestamp>()
        .map_or_else(|_| Cell::Text(stored.to_string()), Cell::Time)
}

/// One exported value, typed, so the workbook can give it the cell it needs (numbers a
/// number cell, times a date cell, every text a text cell) and the CSV its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Time(Timestamp),
}

impl Cell {
    /// The cell as CSV writes it, before `cell`'s spreadsheet safety.
    pub fn text(self, zone: &TimeZone) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text,
            Cell::Number(n) => n.to_string(),
            Cell::Time(at) => crate::clock::for_people(at, zone),
        }
    }
}

/// The header: the list's own columns, then `RESULT_COLUMNS`, as `record` fills them.
pub fn header(columns: &[String]) -> Vec<&str> {
    columns
        .iter()
        .map(String::as_str)
        .chain(RESULT_COLUMNS.iter().copied())
        .collect()
}

/// The row's cells: the list's own columns (always text, as the list had them), then
/// `RESULT_COLUMNS` in their order.
pub fn record(columns: &[String], row: &ExportRow) -> Vec<Cell> {
    let text = |v: &Option<String>| v.clone().map_or(Cell::Empty, Cell::Text);
    let mut out: Vec<Cell> = columns
        .iter()
        .map(|c| {
            let value = row.cells.get(c).and_then(Value::as_str).unwrap_or("");
            Cell::Text(value.to_string())
        })
        .collect();
    out.extend([
        text(&row.phone),
        Cell::Text(row.state.clone()),
        text(&row.call_id),
        Cell::Number(row.attempts as f64),
        text(&row.status_raw),
        row.duration_seconds
            .map_or(Cell::Empty, |d| Cell::Number(d as f64)),
        row.cost.map_or(Cell::Empty, Cell::Number),
        text(&row.transcript),
        text(&row.error),
        row.first_dialed_at
            .as_deref()
            .map_or(Cell::Empty, stored_time),
        stored_time(&row.updated_at),
        text(&row.tags),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formulas_are_neutralised_and_numbers_stay_text_for_excel() {
        for risky in ["=1+1", "+86 138", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(risky.into(), false).starts_with('\''), "{risky:?}");
        }
        assert_eq!(cell("user: 好的".into(), false), "user: 好的");
        assert_eq!(cell("13800138000".into(), true), "=\"13800138000\"");
        assert_eq!(cell("01065529988".into(), true), "=\"01065529988\"");
        assert_eq!(cell("13800138000".into(), false), "13800138000");
        assert_eq!(cell("42".into(), true), "42");
    }
}
