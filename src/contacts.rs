//! Reading a contact list: a CSV file in, header and rows of text out, one row at a time.
//!
//! Every cell stays text (a phone number is never a float, a leading zero is never dropped), the
//! header is trimmed of spaces and a byte-order mark, and rows are streamed so a list of a
//! million contacts never has to fit in memory. Problems are reported with the file and the line
//! a text editor or spreadsheet shows.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    reader: csv::Reader<LineTracker<BufReader<File>>>,
    record: csv::StringRecord,
    lines: Lines,
}

impl ContactReader {
    pub fn open(path: &Path) -> Result<ContactReader> {
        let file = File::open(path).map_err(|source| Error::ReadFile {
            path: path.to_path_buf(),
            cause: source,
        })?;
        let lines = Lines::default();
        let tracker = LineTracker {
            inner: BufReader::new(file),
            offset: 0,
            lines: lines.clone(),
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(tracker);
        let raw = reader
            .headers()
            .map_err(|e| format_error(path, &e, &lines))?
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
                match h.trim() {
                    // Excel leaves trailing columns without a name; call them by their letter.
                    "" => format!("column_{}", column_letter(i)),
                    name => name.to_string(),
                }
            })
            .collect();
        if raw
            .iter()
            .all(|h| h.trim().trim_start_matches('\u{feff}').is_empty())
        {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: 1,
                message: "the file has no header row".to_string(),
                help: "the first line must name the columns, e.g. `name,phone,date`".to_string(),
            });
        }
        for (i, h) in headers.iter().enumerate() {
            if headers[..i].contains(h) {
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
            lines,
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
                .map_err(|e| format_error(&self.path, &e, &self.lines))?;
            if !more {
                return Ok(None);
            }
            if self.record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let line = self
                .record
                .position()
                .map_or(0, |p| self.lines.first_line_at(p.byte()));
            let cells = self.record.iter().map(str::to_string).collect();
            return Ok(Some(Row { line, cells }));
        }
    }
}

fn format_error(path: &Path, err: &csv::Error, lines: &Lines) -> Error {
    let line = err.position().map_or(0, |p| lines.first_line_at(p.byte()));
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

/// `A`, `B`, …, `Z`, `AA`: the spreadsheet's name for column `index` (0-based).
fn column_letter(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

/// Where lines start, for the rows the csv reader has not reached yet.
///
/// The csv crate reports a record's position as where it *started looking*: after a CRLF that
/// is the `\n` of the line before, and blank lines in between are skipped without a trace. So
/// the reader's input passes through `LineTracker`, which notes each line's start offset and
/// whether it is blank; a record's line is the first non-blank line at or after its position.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<LineTable>>);

#[derive(Default)]
struct LineTable {
    /// Finished lines not yet claimed by a record: (start offset, line number, blank).
    done: VecDeque<(u64, u64, bool)>,
    current_start: u64,
    current_line: u64,
    current_blank: bool,
}

impl Lines {
    fn first_line_at(&self, byte: u64) -> u64 {
        let mut t = self.0.lock().expect("line table");
        while t
            .done
            .front()
            .is_some_and(|&(start, _, blank)| start < byte || blank)
        {
            t.done.pop_front();
        }
        match t.done.front() {
            Some(&(_, line, _)) => line,
            None => t.current_line.max(1),
        }
    }
}

struct LineTracker<R> {
    inner: R,
    offset: u64,
    lines: Lines,
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.lines.0.lock().expect("line table");
        if self.offset == 0 && n > 0 {
            t.current_line = 1;
            t.current_blank = true;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                let finished = (t.current_start, t.current_line, t.current_blank);
                t.done.push_back(finished);
                t.current_start = self.offset + i as u64 + 1;
                t.current_line += 1;
                t.current_blank = true;
            } else if b != b'\r' {
                t.current_blank = false;
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(text: &str) -> Vec<(u64, Vec<String>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, text).unwrap();
        let mut reader = ContactReader::open(&path).unwrap();
        let mut out = Vec::new();
        while let Some(row) = reader.next_row().unwrap() {
            out.push((row.line, row.cells));
        }
        out
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        for text in [
            "a,b\n1,2\n\n3,4\n",
            "a,b\r\n1,2\r\n\r\n3,4\r\n",
            "a,b\r\n1,2\r\n\r\n3,4",
        ] {
            let rows = lines_of(text);
            assert_eq!(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                [2, 4],
                "{text:?}"
            );
            assert_eq!(rows[1].1, ["3", "4"]);
        }
        let rows = lines_of("a,b\n\"two\nlines\",1\n3,4\n");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn a_ragged_row_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "a,b\r\n1,2\r\n\r\n3\r\n").unwrap();
        let mut reader = ContactReader::open(&path).unwrap();
        reader.next_row().unwrap();
        match reader.next_row() {
            Err(Error::ContactsFormat { line, .. }) => assert_eq!(line, 4),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unnamed_columns_are_named_by_their_letter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "name,phone,,\nx,1,,\n").unwrap();
        let reader = ContactReader::open(&path).unwrap();
        assert_eq!(reader.headers(), ["name", "phone", "column_C", "column_D"]);
        assert_eq!(column_letter(26), "AA");
    }
}
