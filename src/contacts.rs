//! Reading a contact list: a CSV file in, header and rows of text out, one row at a time.
//!
//! Every cell stays text (a phone number is never a float, a leading zero is never dropped), the
//! header is trimmed of spaces and a byte-order mark, and rows are streamed so a list of a
//! million contacts never has to fit in memory. Problems are reported with the file and the line
//! a text editor or spreadsheet shows.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::errors::{Error, Result};

/// One data row. `line` is where it starts in the file (the header is line 1).
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
}

pub struct ContactReader {
    path: PathBuf,
    headers: Vec<String>,
    reader: csv::Reader<BufReader<File>>,
    record: csv::StringRecord,
}

impl ContactReader {
    pub fn open(path: &Path) -> Result<ContactReader> {
        let file = File::open(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            cause: source,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(BufReader::new(file));
        let raw = reader
            .headers()
            .map_err(|e| format_error(path, &e))?
            .clone();
        let headers: Vec<String> = raw
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.trim_start_matches('\u{feff}')
                } else {
                    h
                };
                h.trim().to_string()
            })
            .collect();
        if headers.iter().all(String::is_empty) {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: 1,
                message: "the file has no header row".to_string(),
                help: "the first line must name the columns, e.g. `name,phone,date`".to_string(),
            });
        }
        for (i, h) in headers.iter().enumerate() {
            if !h.is_empty() && headers[..i].contains(h) {
                return Err(Error::ContactsFormat {
                    path: path.to_path_buf(),
                    line: 1,
                    message: format!("the column name `{h}` appears twice in the header"),
                    help: "give every column its own name".to_string(),
                });
            }
        }
        Ok(ContactReader {
            path: path.to_path_buf(),
            headers,
            reader,
            record: csv::StringRecord::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next non-blank row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        loop {
            let more = self
                .reader
                .read_record(&mut self.record)
                .map_err(|e| format_error(&self.path, &e))?;
            if !more {
                return Ok(None);
            }
            if self.record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let line = self.record.position().map_or(0, |p| p.line());
            let cells = self.record.iter().map(str::to_string).collect();
            return Ok(Some(Row { line, cells }));
        }
    }
}

fn format_error(path: &Path, err: &csv::Error) -> Error {
    let line = err.position().map_or(0, |p| p.line());
    let (message, help) = match err.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => (
            format!("this row has {len} cells but the header has {expected_len}"),
            "make every row have as many cells as the header (check for stray commas or unquoted text)".to_string(),
        ),
        csv::ErrorKind::Utf8 { .. } => (
            "the file is not UTF-8 text".to_string(),
            "save it from Excel as \"CSV UTF-8 (Comma delimited)\"".to_string(),
        ),
        csv::ErrorKind::Io(e) => (format!("reading failed: {e}"), "check the file is readable".to_string()),
        _ => (err.to_string(), "check the CSV syntax at that line".to_string()),
    };
    Error::ContactsFormat {
        path: path.to_path_buf(),
        line,
        message,
        help,
    }
}
