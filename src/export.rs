//! `export`: every contact as one CSV row, original columns first, results after.
//!
//! The result columns have fixed names (`call_state`, `call_id`, ...) that downstream sheets and
//! CRMs key on; a contact list that already has a column of that name is refused at validate
//! time rather than silently overwritten. Rows stream from the database to the writer, so
//! exporting a million contacts takes constant memory.

use std::io::Write;

use crate::errors::{Error, Result};
use crate::store::{ExportRow, Store};

pub const EXPORT_COLUMNS: [&str; 10] = [
    "call_state",
    "call_id",
    "call_attempts",
    "call_status_raw",
    "call_duration_seconds",
    "call_cost",
    "call_transcript",
    "call_error",
    "call_first_dialed_at",
    "call_updated_at",
];

/// Writes the export of `store` to `out`. Returns the number of contacts written.
pub fn write_csv(store: &Store, out: impl Write) -> Result<u64> {
    let columns = store.columns()?;
    let mut csv = csv::Writer::from_writer(out);
    let io = |e: csv::Error| Error::WriteFile {
        path: "export".into(),
        cause: std::io::Error::other(e.to_string()),
    };
    let header: Vec<&str> = columns
        .iter()
        .map(String::as_str)
        .chain(EXPORT_COLUMNS.iter().copied())
        .collect();
    csv.write_record(&header).map_err(io)?;
    let mut written = 0;
    store.for_each_export_row(|row| {
        csv.write_record(record(&columns, &row)).map_err(io)?;
        written += 1;
        Ok(())
    })?;
    csv.flush().map_err(|source| Error::WriteFile {
        path: "export".into(),
        cause: source,
    })?;
    Ok(written)
}

fn record(columns: &[String], row: &ExportRow) -> Vec<String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let mut out: Vec<String> = columns
        .iter()
        .map(|c| {
            row.cells
                .get(c)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    out.extend([
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
    ]);
    out
}
