//! `export`: every contact with its result, as CSV for spreadsheets or JSON lines for programs.
//!
//! The result columns have fixed names (`call_state`, `call_id`, ...) that downstream sheets and
//! CRMs key on; a contact list that already has a column of that name is refused at validate
//! time rather than silently overwritten. Transcripts hold what strangers said, so every CSV
//! cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR)
//! is neutralised with a leading `'`, as OWASP describes for CSV injection; with `--excel` the
//! file starts with a BOM (so Chinese opens correctly) and numbers that Excel would mangle
//! (13800138000 → 1.38E+10, 010… → 10…) are written as text. Rows stream from the database,
//! so a large export takes constant memory.

use std::io::Write;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::errors::{Error, Result};
use crate::state::machine::{CallState, RESULT_COLUMNS};
use crate::state::{ExportRow, Store};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Csv,
    Jsonl,
}

/// What to export, and how.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub format: Format,
    /// UTF-8 with a BOM, numbers kept as text: for opening in Excel.
    pub excel: bool,
    /// Only contacts in these states.
    pub only: Option<Vec<CallState>>,
    /// Only contacts updated at or after this instant.
    pub since: Option<Timestamp>,
}

impl ExportOptions {
    fn keeps(&self, row: &ExportRow) -> bool {
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

fn io(e: impl std::fmt::Display) -> Error {
    Error::WriteFile {
        path: "export".into(),
        cause: std::io::Error::other(e.to_string()),
    }
}

/// Writes the export of `store` to `out`. Returns the number of contacts written.
pub fn write(store: &Store, mut out: impl Write, options: &ExportOptions) -> Result<u64> {
    match options.format {
        Format::Csv => write_csv(store, out, options),
        Format::Jsonl => {
            let mut written = 0;
            store.for_each_export_row(|row| {
                if !options.keeps(&row) {
                    return Ok(());
                }
                let attempts = store.attempts_of(row.contact_id)?;
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
                    "call_first_dialed_at": row.first_dialed_at,
                    "call_updated_at": row.updated_at,
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
    let header: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .chain(RESULT_COLUMNS.iter().copied())
        .collect();
    csv.write_record(&header).map_err(io)?;
    let mut written = 0;
    store.for_each_export_row(|row| {
        if !options.keeps(&row) {
            return Ok(());
        }
        let cells: Vec<String> = record(&columns, &row)
            .into_iter()
            .map(|c| cell(c, options.excel))
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

fn record(columns: &[String], row: &ExportRow) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut out: Vec<String> = columns
        .iter()
        .map(|c| {
            row.cells
                .get(c)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    out.extend([
        text(&row.phone),
        row.state.clone(),
        text(&row.call_id),
        row.attempts.to_string(),
        text(&row.status_raw),
        row.duration_seconds
            .map(|d| d.to_string())
            .unwrap_or_default(),
        row.cost.map(|c| c.to_string()).unwrap_or_default(),
        text(&row.transcript),
        text(&row.error),
        text(&row.first_dialed_at),
        row.updated_at.clone(),
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
