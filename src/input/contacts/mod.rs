//! Reading a contact list: a CSV, text or workbook file in, header and rows of text out.
//!
//! What a file is comes from its bytes, not its name: a zip is an .xlsx/.xlsb or an .ods, a
//! compound file an .xls (WPS's .et is one), anything else text. People keep contacts in Excel
//! and WPS and export them in whatever encoding those use, so text is UTF-8 (with or without a
//! BOM), GB18030/GBK or UTF-16, decided from the whole file by `decoding` unless the campaign
//! names one; a byte the encoding cannot explain refuses the list with its line and column.
//! The delimiter (`,`, `;`, tab or `|`) is what the first row holds most of outside quoted cells,
//! unless the campaign's `delimiter:` says. A workbook's cells read as the sheet shows them
//! (`cell_text`), from the first visible sheet, a merged cell's value in every cell it spans.
//! Every cell stays text. CSV rows are streamed so a large list never has to fit in memory, and
//! are numbered as a spreadsheet shows them. A row that cannot be read (ragged, or a cell too
//! large) is reported with its row, not fatal for the list; a quote never closed is fatal, at
//! the row where it opened, since every row after it would vanish into one cell. `text` reads
//! text lists, `workbook` spreadsheets; this file is the reader both feed.

pub(crate) mod cell_text;
mod ods;
mod text;
mod workbook;
mod xls;

use text::*;
use workbook::*;

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use encoding_rs::Encoding;

use crate::errors::{Error, Result};

/// The largest cell stepcall accepts: no name, date or note comes close.
pub const MAX_CELL_CHARS: usize = 4096;
/// The most columns a list may have: as many as Excel and WPS sheets have.
pub const MAX_COLUMNS: usize = 16_384;
/// The most bytes one CSV row may hold before the list is refused. A cell over
/// `MAX_CELL_CHARS` makes only its row invalid; a row this large is a quotation mark never
/// closed, and reading on would take the rest of the file into one cell.
const MAX_RECORD_BYTES: u64 = 8 << 20;

/// One data row. `line` is the row number a spreadsheet shows (the header is row 1).
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub cells: Vec<String>,
    /// Why this row cannot be used, when it cannot (its cells are then best effort).
    pub problem: Option<String>,
}

/// How the file was read, for messages and for writing rejected rows back the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct Format {
    /// `None` for a workbook.
    pub encoding: Option<&'static Encoding>,
    pub bom: bool,
    pub delimiter: u8,
    pub detected: bool,
    pub sheet: Option<String>,
}

impl Format {
    pub fn describe(&self) -> String {
        match (&self.sheet, self.encoding) {
            (Some(sheet), _) => format!("Excel workbook, sheet `{sheet}`"),
            (None, Some(enc)) => {
                let how = if self.bom {
                    "byte-order mark"
                } else if self.detected {
                    "detected"
                } else {
                    "from the campaign"
                };
                let delimiter = match self.delimiter {
                    b'\t' => "tab".to_string(),
                    d => format!("`{}`", d as char),
                };
                format!("{} ({how}), {delimiter}-separated", enc.name())
            }
            (None, None) => "unknown".into(),
        }
    }
}

/// What the campaign says about reading its list.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    pub encoding: Option<&'static Encoding>,
    pub sheet: Option<String>,
    /// The campaign's `delimiter:`, over what the header line suggests.
    pub delimiter: Option<u8>,
}

pub struct ContactReader {
    path: PathBuf,
    headers: Vec<String>,
    /// The columns up to the last one the header names: a row may stop there, since Excel
    /// writes `name,phone,` for a header with an empty cell after it but not for its rows.
    named_width: usize,
    format: Format,
    source: Source,
}

enum Source {
    Csv {
        reader: Box<csv::Reader<LineTracker<Box<dyn Read + Send>>>>,
        record: csv::StringRecord,
        lines: Lines,
    },
    Sheet {
        rows: std::collections::btree_map::IntoIter<u32, Vec<(u32, String)>>,
    },
}

impl ContactReader {
    pub fn open(path: &Path) -> Result<ContactReader> {
        ContactReader::open_with(path, &ReadOptions::default())
    }

    /// Opens a contact list as what its bytes say it is, whatever its name: a workbook
    /// (.xlsx, .xlsb, .xls, WPS's .et, .ods) or text.
    pub fn open_with(path: &Path, options: &ReadOptions) -> Result<ContactReader> {
        let mut file = crate::input::files::open_regular(path)?;
        let mut start = [0u8; 256];
        let n = read_up_to(&mut file, &mut start).map_err(|cause| Error::ReadFile {
            path: path.to_path_buf(),
            cause,
        })?;
        if let Some(kind) = workbook_kind(&start[..n]) {
            return open_workbook(path, file, kind, options.sheet.as_deref());
        }
        if options.sheet.is_some() {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: 0,
                message: "`sheet:` is set but the contact list is text, not a workbook".into(),
                help: "remove `sheet:` or point `contacts:` at the workbook".into(),
            });
        }
        let read_err = |cause| Error::ReadFile {
            path: path.to_path_buf(),
            cause,
        };
        file.seek(SeekFrom::Start(0)).map_err(read_err)?;
        let mut sample = vec![0; 64 * 1024];
        let n = read_up_to(&mut file, &mut sample).map_err(read_err)?;
        sample.truncate(n);
        file.seek(SeekFrom::Start(0)).map_err(read_err)?;
        let decision = crate::input::decoding::decide(&mut file, Encoding::for_bom(&sample), options.encoding)
            .map_err(|e| match e {
                crate::input::decoding::Undecided::Io(cause) => read_err(cause),
                crate::input::decoding::Undecided::Utf16WithoutBom => Error::ContactsFormat {
                    path: path.to_path_buf(),
                    line: 0,
                    message: "the file looks like UTF-16 text without a byte-order mark, in no byte order stepcall can tell".into(),
                    help: "save it again from Excel as \"CSV UTF-8\", or set `encoding: utf-16le` (or utf-16be) in the campaign".into(),
                },
            })?;
        let encoding = decision.encoding;
        let bom = decision.source == crate::input::decoding::Source::Bom;
        let detected = decision.source == crate::input::decoding::Source::Detected;
        let (text, _, _) = encoding.decode(&sample);
        let delimiter = options
            .delimiter
            .unwrap_or_else(|| guess_delimiter(text.trim_start_matches('\u{feff}')));
        if let Some(at) = decision.bad_byte {
            file.seek(SeekFrom::Start(0)).map_err(read_err)?;
            return Err(undecodable(
                path,
                &mut file,
                encoding,
                at,
                delimiter,
                decision.source,
            ));
        }
        // The same file, read again from its start: a path re-opened could be another file.
        file.seek(SeekFrom::Start(0)).map_err(read_err)?;
        let decoded: Box<dyn Read + Send> = Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_override(true)
                .strip_bom(true)
                .build(BufReader::new(file)),
        );
        let lines = Lines::default();
        let tracker = LineTracker::new(decoded, lines.clone(), delimiter);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(tracker);
        let raw: Vec<String> = reader
            .headers()
            .map_err(|e| format_error(path, &e, &lines))?
            .iter()
            .map(str::to_string)
            .collect();
        let format = Format {
            encoding: Some(encoding),
            bom,
            delimiter,
            detected,
            sheet: None,
        };
        let headers = clean_headers(path, &raw)?;
        let source = Source::Csv {
            reader: Box::new(reader),
            record: csv::StringRecord::new(),
            lines,
        };
        Ok(ContactReader {
            path: path.to_path_buf(),
            named_width: named_width(&raw),
            headers,
            format,
            source,
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// The column names the header has more than once. Reading such a list is fine; using one
    /// of those names (as the phone column, or in the template) is an error, since it names
    /// no one column.
    pub fn duplicated(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::with_capacity(self.headers.len());
        let mut twice: Vec<&str> = Vec::new();
        for h in &self.headers {
            if !seen.insert(h.as_str()) && !twice.contains(&h.as_str()) {
                twice.push(h);
            }
        }
        twice
    }

    /// The next non-blank row, or `None` at the end of the file.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        let width = self.headers.len();
        loop {
            let (line, mut cells, beyond) = match &mut self.source {
                Source::Csv {
                    reader,
                    record,
                    lines,
                } => {
                    let more = reader
                        .read_record(record)
                        .map_err(|e| format_error(&self.path, &e, lines))?;
                    if !more {
                        return Ok(None);
                    }
                    let line = record
                        .position()
                        .map_or(0, |p| lines.first_line_at(p.byte()));
                    let cells = record.iter().map(str::to_string).collect::<Vec<_>>();
                    (line, cells, None)
                }
                Source::Sheet { rows } => match rows.next() {
                    Some((row, cells)) => {
                        let (cells, beyond) = dense(cells, width);
                        (u64::from(row) + 1, cells, beyond)
                    }
                    None => return Ok(None),
                },
            };
            if beyond.is_none() && cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let mut problem = beyond.map(|n| {
                format!(
                    "this row has {n} cells but the header has {width}: check for a stray value right of the table"
                )
            });
            if cells.len() != width {
                // Trailing empty cells are how spreadsheets pad; anything else is a broken row.
                let used = cells
                    .iter()
                    .rposition(|c| !c.trim().is_empty())
                    .map_or(0, |i| i + 1);
                if used > width || cells.len() < self.named_width {
                    let n = used.max(cells.len().min(width));
                    problem = Some(format!(
                        "this row has {n} cell{} but the header has {width}: check for a missing or stray delimiter, or an unquoted comma",
                        if n == 1 { "" } else { "s" }
                    ));
                }
                cells.resize(width, String::new());
            }
            if let Some(i) = cells
                .iter()
                .position(|c| c.chars().count() > MAX_CELL_CHARS)
            {
                problem = Some(format!(
                    "the cell in column `{}` is longer than {MAX_CELL_CHARS} characters",
                    self.headers[i]
                ));
                cells[i] = cells[i].chars().take(64).collect();
            }
            return Ok(Some(Row {
                line,
                cells,
                problem,
            }));
        }
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// How many columns the header names, up to the last one with a name.
fn named_width(raw: &[String]) -> usize {
    raw.iter()
        .rposition(|h| !h.trim_start_matches('\u{feff}').trim().is_empty())
        .map_or(0, |i| i + 1)
}

/// Trims names and a BOM, and names unnamed columns by their letter.
fn clean_headers(path: &Path, raw: &[String]) -> Result<Vec<String>> {
    if raw
        .iter()
        .all(|h| h.trim().trim_start_matches('\u{feff}').is_empty())
    {
        return Err(Error::ContactsFormat {
            path: path.to_path_buf(),
            line: 1,
            message: "the file has no header row".to_string(),
            help: "the first row must name the columns, e.g. `name,phone,date`".to_string(),
        });
    }
    if raw.len() > MAX_COLUMNS {
        return Err(Error::ContactsFormat {
            path: path.to_path_buf(),
            line: 1,
            message: format!(
                "the header has {} columns; stepcall reads at most {MAX_COLUMNS}, as many as a spreadsheet has",
                raw.len()
            ),
            help: "check the delimiter (it is taken from the header line), or delete the empty columns".to_string(),
        });
    }
    let headers: Vec<String> = raw
        .iter()
        .enumerate()
        .map(|(i, h)| match h.trim_start_matches('\u{feff}').trim() {
            // Excel leaves trailing columns without a name; call them by their letter.
            "" => format!("column_{}", column_letter(i)),
            name => name.to_string(),
        })
        .collect();
    Ok(headers)
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
        // A doubled quote inside a quoted cell, and a quote inside an unquoted one.
        let rows = lines_of("a,b\n\"x\"\"y\nz\",1\nq\"r,2\n\"\"\"\",3\n");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4, 5]);
        assert_eq!(rows[0].1, ["x\"y\nz", "1"]);
        // Classic Mac line ends: a `\r` alone, also inside a quoted cell.
        let rows = lines_of("a,b\r1,2\r\r3,4\r");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4]);
        let rows = lines_of("a,b\r\"x\ry\",1\r3,4\r");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn a_quote_never_closed_in_a_cr_only_file_is_found_where_it_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "a,b\r1,2\r\"3,4\r5,6\r7,8\r").unwrap();
        let mut reader = ContactReader::open(&path).unwrap();
        let mut failure = None;
        while failure.is_none() {
            match reader.next_row() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => failure = Some(e.to_string()),
            }
        }
        let failure = failure.expect("the list is refused");
        assert!(
            failure.contains("line 3") && failure.contains("never closed"),
            "{failure}"
        );
    }

    #[test]
    fn a_ragged_row_is_a_problem_of_that_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "a,b\r\n1,2\r\n\r\n3,4,5\r\n6,,\r\n7\r\n").unwrap();
        let mut reader = ContactReader::open(&path).unwrap();
        assert!(reader.next_row().unwrap().unwrap().problem.is_none());
        let ragged = reader.next_row().unwrap().unwrap();
        assert_eq!(ragged.line, 4);
        assert!(ragged.problem.unwrap().contains("3 cells"));
        assert!(
            reader.next_row().unwrap().unwrap().problem.is_none(),
            "trailing empty cells are padding"
        );
        assert!(
            reader
                .next_row()
                .unwrap()
                .unwrap()
                .problem
                .unwrap()
                .contains("1 cell but"),
            "a short row"
        );
    }

    #[test]
    fn a_position_is_counted_as_a_csv_reader_counts_it() {
        let at = |text: &str| {
            let mut l = Locator::new(b',');
            // Fed in two pieces: a chunk may end anywhere.
            let (a, b) = text.split_at(text.len() / 2);
            l.feed(a);
            l.feed(b);
            (l.line, l.column)
        };
        assert_eq!(at("name,phone\n王芳,"), (2, 1));
        assert_eq!(at("name,phone\r\n\"a,\"\"b\nc\",x,"), (3, 2));
        assert_eq!(at("a,b\r1,2\r3,"), (3, 1));
        assert_eq!(at("a,b\n\"x\"\",\"\",y"), (2, 0));
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
