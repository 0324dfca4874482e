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
//! the row where it opened, since every row after it would vanish into one cell.

pub(crate) mod cell_text;
mod ods;
mod xls;

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

/// The delimiter of a text list: whichever of `,`, `;`, tab and `|` its first row holds most
/// of outside quoted cells (`"Wang, Fang";138…` is `;`-separated), `,` if none.
fn guess_delimiter(text: &str) -> u8 {
    let mut counts = [0usize; 4];
    const CANDIDATES: [char; 4] = [',', ';', '\t', '|'];
    let mut quoted = false;
    let mut at_cell_start = true;
    // The last character closed a quoted cell, or began a `""` inside it.
    let mut just_closed = false;
    for c in text.chars() {
        if std::mem::take(&mut just_closed) && c == '"' {
            quoted = true;
            continue;
        }
        if quoted {
            if c == '"' {
                quoted = false;
                just_closed = true;
            }
            continue;
        }
        match c {
            '"' if at_cell_start => quoted = true,
            '\n' | '\r' => break,
            c => {
                if let Some(i) = CANDIDATES.iter().position(|&d| d == c) {
                    counts[i] += 1;
                    at_cell_start = true;
                    continue;
                }
            }
        }
        at_cell_start = false;
    }
    let (best, count) = counts
        .iter()
        .enumerate()
        .max_by_key(|&(i, n)| (*n, std::cmp::Reverse(i)))
        .expect("four candidates");
    if *count == 0 {
        b','
    } else {
        CANDIDATES[best] as u8
    }
}

/// What the first bytes of a file say it is, when they say it is a workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workbook {
    /// Office Open XML (.xlsx, .xlsm) or its binary form (.xlsb): a zip.
    OfficeOpen,
    /// OpenDocument (.ods): a zip whose first entry names its kind.
    OpenDocument,
    /// Excel 97-2003 (.xls), also WPS's .et: a compound file.
    Compound,
}

fn workbook_kind(start: &[u8]) -> Option<Workbook> {
    if start.starts_with(b"PK\x03\x04") {
        let names_ods = start.len() > 38
            && &start[30..38] == b"mimetype"
            && memchr::memmem::find(&start[..start.len().min(200)], b"opendocument.spreadsheet")
                .is_some();
        Some(if names_ods {
            Workbook::OpenDocument
        } else {
            Workbook::OfficeOpen
        })
    } else if start.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        Some(Workbook::Compound)
    } else {
        None
    }
}

/// Where the byte at `at` is (line and column), and the error that says so. The file is read
/// up to that byte a chunk at a time, however far into it the byte is.
fn undecodable(
    path: &Path,
    file: &mut File,
    encoding: &'static Encoding,
    at: u64,
    delimiter: u8,
    source: crate::input::decoding::Source,
) -> Error {
    let mut decoder = encoding.new_decoder();
    let mut locator = Locator::new(delimiter);
    let mut header = String::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut text = String::with_capacity(chunk.len() * 3);
    let mut left = at;
    let mut read_ok = true;
    while left > 0 {
        let want = chunk.len().min(left as usize);
        let n = match file.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => {
                read_ok = false;
                break;
            }
            Ok(n) => n,
        };
        left -= n as u64;
        text.clear();
        let _ = decoder.decode_to_string(&chunk[..n], &mut text, left == 0);
        if locator.line == 1 && header.len() < 64 * 1024 {
            header.push_str(text.split(['\n', '\r']).next().unwrap_or(""));
        }
        locator.feed(&text);
    }
    let mut byte = [0u8; 1];
    let value = file.read_exact(&mut byte).map(|_| byte[0]);
    let (line, column) = if read_ok {
        (locator.line, locator.column)
    } else {
        (0, 0)
    };
    let header_cells: Vec<String> = header
        .split(delimiter as char)
        .map(|h| {
            h.trim_start_matches('\u{feff}')
                .trim()
                .trim_matches('"')
                .to_string()
        })
        .collect();
    let column_name = match header_cells.get(column) {
        Some(name) if line > 1 && !name.is_empty() => format!("column `{name}`"),
        _ => format!("column {}", column_letter(column)),
    };
    let byte = value.map_or(String::new(), |b| format!(" (0x{b:02X})"));
    let how = match source {
        crate::input::decoding::Source::Bom => "its byte-order mark says",
        crate::input::decoding::Source::Campaign => "the campaign's `encoding:` says",
        crate::input::decoding::Source::Detected => "the rest of the file is",
    };
    Error::ContactsFormat {
        path: path.to_path_buf(),
        line,
        message: format!(
            "{column_name} holds a byte{byte} that is not {} text, which {how}; no row of the list is read until it is",
            encoding.name()
        ),
        help: "retype that cell, or save the list again from Excel as \"CSV UTF-8\"; if the file is in another encoding, set `encoding:` in the campaign".to_string(),
    }
}

/// The line (1-based) and column (0-based) reached by the text fed so far, counted as a CSV
/// reader does: line breaks and delimiters inside quoted cells belong to the cell.
struct Locator {
    delimiter: char,
    line: u64,
    column: usize,
    quoted: bool,
    at_cell_start: bool,
    /// The last character was a `\r`: a line end, unless a `\n` follows.
    pending_cr: bool,
    /// The last character closed a quoted cell, or began a `""` inside it.
    just_closed: bool,
}

impl Locator {
    fn new(delimiter: u8) -> Locator {
        Locator {
            delimiter: delimiter as char,
            line: 1,
            column: 0,
            quoted: false,
            at_cell_start: true,
            pending_cr: false,
            just_closed: false,
        }
    }

    fn feed(&mut self, text: &str) {
        for c in text.chars() {
            if std::mem::take(&mut self.pending_cr) && c != '\n' {
                self.line_end();
            }
            if std::mem::take(&mut self.just_closed) && c == '"' {
                // `""`: a quote inside the cell, which goes on.
                self.quoted = true;
                continue;
            }
            if self.quoted {
                match c {
                    '"' => {
                        self.quoted = false;
                        self.just_closed = true;
                    }
                    '\n' => self.line += 1,
                    '\r' => self.pending_cr = true,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' if self.at_cell_start => self.quoted = true,
                c if c == self.delimiter => {
                    self.column += 1;
                    self.at_cell_start = true;
                    continue;
                }
                '\n' => {
                    self.line_end();
                    continue;
                }
                '\r' => {
                    self.pending_cr = true;
                    continue;
                }
                _ => {}
            }
            self.at_cell_start = false;
        }
    }

    fn line_end(&mut self) {
        self.line += 1;
        if !self.quoted {
            self.column = 0;
            self.at_cell_start = true;
        }
    }
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

/// The most a workbook may unpack to. A million contacts are a few hundred MB of XML; a
/// workbook declaring more is refused before a byte of it is unpacked (the zip reader holds
/// every part to its declared size, so the declaration is the bound).
const MAX_WORKBOOK_UNPACKED: u64 = 512 << 20;
/// The most cells a sheet may span (header width × rows): every row is widened to the header.
const MAX_SHEET_CELLS: u64 = 50_000_000;
/// The most cells an .ods may hold once its repeated rows and columns are expanded: a small
/// file can repeat one cell a billion times.
const MAX_ODS_CELLS: u64 = 10_000_000;
/// The most cells merged cells may fill with their value: a column merged down a million rows.
const MAX_SPREAD_CELLS: usize = 2_000_000;

/// [`read_workbook`], whose readers (calamine's among them) parse files from anywhere: a panic
/// on a malformed one ends as this list's error, not the process, and prints nothing of its own.
fn open_workbook(
    path: &Path,
    file: File,
    kind: Workbook,
    sheet: Option<&str>,
) -> Result<ContactReader> {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_workbook(path, file, kind, sheet)
    }));
    std::panic::set_hook(previous);
    read.unwrap_or_else(|_| {
        Err(Error::ContactsFormat {
            path: path.to_path_buf(),
            line: 0,
            message: "the workbook is malformed: its reader stopped inside it".into(),
            help: "open it in Excel, WPS or LibreOffice and save it again (as .xlsx or CSV UTF-8)"
                .into(),
        })
    })
}

fn read_workbook(
    path: &Path,
    file: File,
    kind: Workbook,
    sheet: Option<&str>,
) -> Result<ContactReader> {
    use calamine::Reader;
    let bad = |message: String, help: &str| Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message,
        help: help.to_string(),
    };
    let mut file = file;
    let rewind = |file: &mut File| {
        file.seek(SeekFrom::Start(0))
            .map_err(|cause| Error::ReadFile {
                path: path.to_path_buf(),
                cause,
            })
    };
    rewind(&mut file)?;
    let (binary, mut xls_formats) = match kind {
        Workbook::Compound => (false, crate::input::contacts::xls::check(path, &file)?),
        _ => (
            check_unpacked_size(path, &file)?,
            crate::input::contacts::xls::Formats::default(),
        ),
    };
    // The checks read through a handle that shares this one's position.
    rewind(&mut file)?;
    let unreadable = |e: &dyn std::fmt::Display| {
        bad(
            format!("the workbook cannot be read: {e}"),
            "save it again from Excel or WPS as .xlsx",
        )
    };
    use crate::input::contacts::cell_text::{NumberFormat, shown};
    let reader = BufReader::new(file);
    let mut cells = SparseSheet::default();
    let (name, merged) = match kind {
        Workbook::OfficeOpen if !binary => {
            let mut book = calamine::Xlsx::new(reader).map_err(|e| unreadable(&e))?;
            let name = choose_sheet(path, book.sheets_metadata(), sheet)?;
            let merged = book
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| unreadable(&e))?;
            let mut sheet = book
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(&e))?;
            // Parsed once per style: a million cells share a handful.
            let formats: Vec<Option<NumberFormat>> = sheet
                .styles()
                .iter()
                .map(|s| {
                    s.number_format
                        .as_ref()
                        .map(|n| NumberFormat::parse(&n.format_code))
                })
                .collect();
            while let Some((cell, style)) = sheet
                .next_cell_with_style_id()
                .map_err(|e| unreadable(&e))?
            {
                let value = calamine::Data::from(cell.get_value().clone());
                let format = formats.get(style).and_then(Option::as_ref);
                cells.add(path, cell.get_position(), shown(&value, format))?;
            }
            (name, merged)
        }
        Workbook::OfficeOpen => {
            let mut book = calamine::Xlsb::new(reader).map_err(|e| unreadable(&e))?;
            let name = choose_sheet(path, book.sheets_metadata(), sheet)?;
            let mut sheet = book
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(&e))?;
            while let Some(cell) = sheet.next_cell().map_err(|e| unreadable(&e))? {
                let value = calamine::Data::from(cell.get_value().clone());
                cells.add(path, cell.get_position(), shown(&value, None))?;
            }
            (name, Vec::new())
        }
        Workbook::Compound => {
            let mut book = calamine::Xls::new(reader).map_err(|e| unreadable(&e))?;
            let name = choose_sheet(path, book.sheets_metadata(), sheet)?;
            let merged = book
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| unreadable(&e))?;
            let range = book.worksheet_range(&name).map_err(|e| unreadable(&e))?;
            let (styles, codes) = xls_formats.of_sheet(&name);
            let parsed: Vec<Option<NumberFormat>> = codes
                .iter()
                .map(|c| c.as_deref().map(NumberFormat::parse))
                .collect();
            cells.add_range(path, &range, |at| {
                styles
                    .get(&at)
                    .and_then(|&xf| parsed.get(xf as usize))
                    .and_then(Option::as_ref)
            })?;
            (name, merged)
        }
        Workbook::OpenDocument => {
            let mut chosen = None;
            let book = crate::input::contacts::ods::read(
                reader,
                |sheets| {
                    let found = choose_ods_sheet(path, sheets, sheet);
                    let index = found.as_ref().ok().copied();
                    chosen = Some(found);
                    index
                },
                MAX_ODS_CELLS,
                MAX_COLUMNS as u32,
            )
            .map_err(|e| unreadable(&e))?;
            let index = chosen.expect("the sheet is chosen")?;
            cells.rows = book.rows;
            let merged = book
                .merged
                .iter()
                .map(|&(top, left, bottom, right)| {
                    calamine::Dimensions::new((top, left), (bottom, right))
                })
                .collect();
            (book.sheets[index].name.clone(), merged)
        }
    };
    cells.spread(path, &merged)?;
    let mut rows = std::mem::take(&mut cells.rows).into_iter();
    let Some((_, header)) = rows.next() else {
        return Err(bad(
            format!("sheet `{name}` is empty"),
            "put the header in the first row and one contact per row",
        ));
    };
    let width = header
        .iter()
        .map(|(c, _)| *c as usize + 1)
        .max()
        .unwrap_or(0);
    let header = dense(header, width).0;
    let headers = clean_headers(path, &header)?;
    if (headers.len() as u64).saturating_mul(rows.len() as u64) > MAX_SHEET_CELLS {
        return Err(bad(
            format!(
                "sheet `{name}` spans {} columns by {} rows, more cells than stepcall reads",
                headers.len(),
                rows.len()
            ),
            "delete the empty columns at the right of the sheet, or save it as CSV",
        ));
    }
    let format = Format {
        encoding: None,
        bom: false,
        delimiter: b',',
        detected: false,
        sheet: Some(name),
    };
    Ok(ContactReader {
        path: path.to_path_buf(),
        named_width: named_width(&header),
        headers,
        format,
        source: Source::Sheet { rows },
    })
}

/// Refuses a zip-based workbook that declares more unpacked bytes than stepcall reads, and
/// tells whether it is the binary form (.xlsb) of Office Open XML.
fn check_unpacked_size(path: &Path, file: &File) -> Result<bool> {
    let Ok(copy) = file.try_clone() else {
        return Ok(false);
    };
    // Not a zip at all: the workbook reader says so in its own words.
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(copy)) else {
        return Ok(false);
    };
    let binary = zip.index_for_name("xl/workbook.bin").is_some();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        if let Ok(entry) = zip.by_index_raw(i) {
            total = total.saturating_add(entry.size());
        }
    }
    if total > MAX_WORKBOOK_UNPACKED {
        return Err(Error::ContactsFormat {
            path: path.to_path_buf(),
            line: 0,
            message: format!(
                "the workbook would unpack to {} MB, more than the {} MB stepcall reads",
                total >> 20,
                MAX_WORKBOOK_UNPACKED >> 20
            ),
            help: "save the list as CSV (UTF-8) instead; if it came from elsewhere, it may not be a real contact list".into(),
        });
    }
    Ok(binary)
}

/// The sheet named by `sheet:`, or else the first one a person sees when opening the workbook
/// (a hidden first sheet is often an old list).
fn choose_sheet(path: &Path, sheets: &[calamine::Sheet], wanted: Option<&str>) -> Result<String> {
    let bad = |message: String, help: &str| Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message,
        help: help.to_string(),
    };
    let names = || {
        sheets
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match wanted {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.name == wanted)
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                bad(
                    format!("the workbook has no sheet `{wanted}` (sheets: {})", names()),
                    "set `sheet:` to one of those names",
                )
            }),
        None => sheets
            .iter()
            .find(|s| {
                s.visible == calamine::SheetVisible::Visible
                    && s.typ == calamine::SheetType::WorkSheet
            })
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                bad(
                    format!(
                        "the workbook has no visible worksheet (sheets: {})",
                        names()
                    ),
                    "unhide the sheet with the contacts, or name it with `sheet:` in the campaign",
                )
            }),
    }
}

/// [`choose_sheet`] for an OpenDocument workbook's sheets: the index of the one to read.
fn choose_ods_sheet(
    path: &Path,
    sheets: &[crate::input::contacts::ods::Sheet],
    wanted: Option<&str>,
) -> Result<usize> {
    let as_calamine: Vec<calamine::Sheet> = sheets
        .iter()
        .map(|s| calamine::Sheet {
            name: s.name.clone(),
            typ: calamine::SheetType::WorkSheet,
            visible: if s.visible {
                calamine::SheetVisible::Visible
            } else {
                calamine::SheetVisible::Hidden
            },
        })
        .collect();
    let name = choose_sheet(path, &as_calamine, wanted)?;
    Ok(sheets.iter().position(|s| s.name == name).unwrap_or(0))
}

/// The cells of a sheet that hold something, by row: as many as the file has, never the
/// rectangle they span (one cell at XFD1048576 is one cell, not seventeen billion).
#[derive(Default)]
struct SparseSheet {
    rows: std::collections::BTreeMap<u32, Vec<(u32, String)>>,
}

impl SparseSheet {
    /// Adds every cell of a sheet read whole (.xls, .ods), as the sheet shows it with the
    /// number format `format_at` gives for its (row, column).
    fn add_range<'f>(
        &mut self,
        path: &Path,
        range: &calamine::Range<calamine::Data>,
        format_at: impl Fn((u32, u32)) -> Option<&'f crate::input::contacts::cell_text::NumberFormat>,
    ) -> Result<()> {
        let (r0, c0) = range.start().unwrap_or((0, 0));
        for (row, col, value) in range.used_cells() {
            let at = (r0 + row as u32, c0 + col as u32);
            let text = crate::input::contacts::cell_text::shown(value, format_at(at));
            self.add(path, at, text)?;
        }
        Ok(())
    }

    fn add(&mut self, path: &Path, (row, col): (u32, u32), text: String) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        if col as usize >= MAX_COLUMNS {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: u64::from(row) + 1,
                message: format!(
                    "a cell is in column {}, past the {MAX_COLUMNS} columns a sheet has",
                    col + 1
                ),
                help: "save the workbook again from Excel or WPS".into(),
            });
        }
        self.rows.entry(row).or_default().push((col, text));
        Ok(())
    }

    /// A merged cell's value in every cell it spans: a clinic merged over three rows is the
    /// clinic of each of them. Only rows that exist gain cells (a merge over a million empty
    /// rows adds nothing), only columns of the header, and at most `MAX_SPREAD_CELLS` in all.
    fn spread(&mut self, path: &Path, merged: &[calamine::Dimensions]) -> Result<()> {
        let width = self
            .rows
            .values()
            .next()
            .and_then(|header| header.iter().map(|(c, _)| *c).max())
            .map_or(0, |c| c.saturating_add(1));
        let mut added = 0usize;
        let mut touched = std::collections::BTreeSet::new();
        for region in merged {
            let (top, left) = region.start;
            let (bottom, right) = region.end;
            let right = right.min(width.saturating_sub(1));
            let Some(value) = self
                .rows
                .get(&top)
                .and_then(|cells| cells.iter().find(|(c, _)| *c == left))
                .map(|(_, v)| v.clone())
            else {
                continue;
            };
            if left > right {
                continue;
            }
            for (&row, cells) in self.rows.range_mut(top..=bottom.max(top)) {
                added += (right - left + 1) as usize;
                if added > MAX_SPREAD_CELLS {
                    return Err(Error::ContactsFormat {
                        path: path.to_path_buf(),
                        line: u64::from(row) + 1,
                        message: format!(
                            "the sheet's merged cells span more than {MAX_SPREAD_CELLS} cells"
                        ),
                        help: "unmerge the cells (Excel: Home > Merge & Center > Unmerge Cells) and save again".into(),
                    });
                }
                cells.extend((left..=right).map(|col| (col, value.clone())));
                touched.insert(row);
            }
        }
        // A cell of the file comes before the copies pushed after it: a stable sort keeps it
        // first, and it is the one kept.
        for row in touched {
            if let Some(cells) = self.rows.get_mut(&row) {
                cells.sort_by_key(|(c, _)| *c);
                cells.dedup_by_key(|(c, _)| *c);
            }
        }
        Ok(())
    }
}

/// A sparse row as `width` cells, and how far right its last cell is when that is past them.
fn dense(cells: Vec<(u32, String)>, width: usize) -> (Vec<String>, Option<usize>) {
    let mut out = vec![String::new(); width];
    let mut beyond = None;
    for (col, text) in cells {
        let col = col as usize;
        if col < width {
            out[col] = text;
        } else {
            beyond = Some(beyond.unwrap_or(0).max(col + 1));
        }
    }
    (out, beyond)
}

fn format_error(path: &Path, err: &csv::Error, lines: &Lines) -> Error {
    if let Some(line) = lines.unclosed() {
        return Error::ContactsFormat {
            path: path.to_path_buf(),
            line,
            message: "a cell here starts with a quotation mark (\") that is never closed, so every row after it would be read into that one cell".to_string(),
            help: format!("remove the stray \" at the start of the cell on line {line}, or close the quote where the cell ends"),
        };
    }
    if let Some(line) = lines.oversized() {
        return Error::ContactsFormat {
            path: path.to_path_buf(),
            line,
            message: format!(
                "the row starting here holds more than {} MiB, so the list cannot be read past it",
                MAX_RECORD_BYTES >> 20
            ),
            help: "look for a cell starting with a quotation mark (\") that is never closed; no contact needs that much text".to_string(),
        };
    }
    let line = err.position().map_or(0, |p| lines.first_line_at(p.byte()));
    let (message, help) = match err.kind() {
        csv::ErrorKind::Utf8 { .. } => (
            "the file is not text in the encoding it seems to be in".to_string(),
            "set `encoding:` in the campaign (e.g. gbk, utf-8, utf-16), or save it from Excel as \"CSV UTF-8\"".to_string(),
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

/// Where rows start, for the rows the csv reader has not reached yet.
///
/// The csv crate reports a record's position as where it *started looking*: after a CRLF that
/// is the `\n` of the line before, and blank lines in between are skipped without a trace. So
/// the reader's input passes through `LineTracker`, which notes the start offset of each line a
/// row can start on, and whether it is blank; a record's line is the first non-blank one at or
/// after its position. Lines inside a quoted cell are counted but not noted: no row starts
/// there, and a cell of a million line breaks must not cost a million entries.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<LineTable>>);

#[derive(Default)]
struct LineTable {
    /// Finished lines not yet claimed by a record: (start offset, line number, blank).
    done: VecDeque<(u64, u64, bool)>,
    current_start: u64,
    current_line: u64,
    current_blank: bool,
    /// The current line began inside a quoted cell: no row starts on it.
    current_quoted: bool,
    /// The line of the row whose cell (or which row) ran past the bounds, if one did.
    oversized: Option<u64>,
    /// The line where a quoted cell opened that ran across line breaks to the end of the file
    /// or past the cell limit: a stray quote, which would swallow the rows after it.
    unclosed: Option<u64>,
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

    fn oversized(&self) -> Option<u64> {
        self.0.lock().expect("line table").oversized
    }

    fn unclosed(&self) -> Option<u64> {
        self.0.lock().expect("line table").unclosed
    }
}

/// Whether the tracker is inside a quoted cell, as the csv crate reads one: a quote opens it
/// only at the start of a cell, and a doubled quote inside it is a quote.
#[derive(Clone, Copy, PartialEq)]
enum Quotes {
    Outside,
    Inside,
}

struct LineTracker<R> {
    inner: R,
    offset: u64,
    lines: Lines,
    delimiter: u8,
    quotes: Quotes,
    /// The bytes of the row being read so far.
    record_bytes: u64,
    /// The line the row being read started on.
    row_line: u64,
    /// The byte before the next one: a quote opens a cell only after a delimiter or a line end.
    prev: u8,
    /// The last byte was a `\r` outside quotes: a line break unless a `\n` follows.
    pending_cr: bool,
    /// The same inside a quoted cell: a line of the cell ends (CR-only files have no `\n`).
    pending_cr_quoted: bool,
    /// The last byte was a quote inside a quoted cell: the cell's end, or half of `""`.
    pending_quote: bool,
    /// Where the quoted cell being read opened, its bytes so far, and whether it spans lines.
    quote_line: u64,
    quoted_bytes: u64,
    quoted_lines: bool,
}

impl<R: Read> LineTracker<R> {
    fn new(inner: R, lines: Lines, delimiter: u8) -> LineTracker<R> {
        LineTracker {
            inner,
            offset: 0,
            lines,
            delimiter,
            quotes: Quotes::Outside,
            record_bytes: 0,
            row_line: 1,
            prev: b'\n',
            pending_cr: false,
            pending_cr_quoted: false,
            pending_quote: false,
            quote_line: 0,
            quoted_bytes: 0,
            quoted_lines: false,
        }
    }

    /// A line ends (a `\n`, or a `\r` alone, the old Mac way) and the next starts at `start`.
    fn line_break(&mut self, t: &mut LineTable, start: u64, in_quotes: bool) {
        let finished = (t.current_start, t.current_line, t.current_blank);
        if !t.current_quoted {
            t.done.push_back(finished);
        }
        t.current_quoted = in_quotes;
        t.current_start = start;
        t.current_line += 1;
        t.current_blank = true;
        if !in_quotes {
            self.row_line = t.current_line;
        }
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let lines = self.lines.clone();
        let mut t = lines.0.lock().expect("line table");
        if n == 0 && self.quotes == Quotes::Inside && !self.pending_quote && self.quoted_lines {
            t.unclosed = Some(self.quote_line);
            return Err(std::io::Error::other("a quoted cell is never closed"));
        }
        if self.offset == 0 && n > 0 {
            t.current_line = 1;
            t.current_blank = true;
        }
        let mut i = 0;
        // Only quotes and line ends matter here, and memchr finds them: most of a list is
        // plain text, and this reader sees every byte of it.
        while i < n {
            let at = self.offset + i as u64;
            if std::mem::take(&mut self.pending_cr) && buf[i] != b'\n' {
                // The `\r` before this byte ended its line by itself.
                self.line_break(&mut t, at, false);
            }
            if std::mem::take(&mut self.pending_cr_quoted) && buf[i] != b'\n' {
                self.line_break(&mut t, at, true);
            }
            if std::mem::take(&mut self.pending_quote) {
                if buf[i] == b'"' {
                    // `""`: a quote inside the cell, which goes on.
                    self.record_bytes += 1;
                    i += 1;
                    continue;
                }
                self.quotes = Quotes::Outside;
                self.prev = b'"';
            }
            let found = match self.quotes {
                Quotes::Outside => memchr::memchr3(b'"', b'\n', b'\r', &buf[i..n]),
                Quotes::Inside => memchr::memchr3(b'"', b'\n', b'\r', &buf[i..n]),
            };
            if self.quotes == Quotes::Inside {
                self.quoted_bytes += found.map_or(n - i, |skip| skip + 1) as u64;
                if self.quoted_lines && self.quoted_bytes > 4 * MAX_CELL_CHARS as u64 {
                    t.unclosed = Some(self.quote_line);
                    return Err(std::io::Error::other(
                        "a quoted cell runs past the cell limit",
                    ));
                }
            }
            let Some(skip) = found else {
                self.record_bytes += (n - i) as u64;
                t.current_blank = false;
                self.prev = buf[n - 1];
                if self.record_bytes > MAX_RECORD_BYTES {
                    t.oversized = Some(self.row_line);
                    return Err(std::io::Error::other("a row is too large"));
                }
                break;
            };
            if skip > 0 {
                t.current_blank = false;
                self.prev = buf[i + skip - 1];
            }
            self.record_bytes += skip as u64 + 1;
            i += skip;
            let at = self.offset + i as u64;
            match (self.quotes, buf[i]) {
                (Quotes::Outside, b'"') => {
                    t.current_blank = false;
                    let starts_cell =
                        matches!(self.prev, b'\n' | b'\r') || self.prev == self.delimiter;
                    if starts_cell {
                        self.quotes = Quotes::Inside;
                        self.quote_line = t.current_line;
                        self.quoted_bytes = 0;
                        self.quoted_lines = false;
                    }
                    self.prev = b'"';
                }
                (Quotes::Outside, b'\n') => {
                    self.record_bytes = 0;
                    self.prev = b'\n';
                    self.line_break(&mut t, at + 1, false);
                }
                (Quotes::Outside, _) => {
                    // `\r`: the row ends; the line too, unless a `\n` follows.
                    self.record_bytes = 0;
                    self.prev = b'\r';
                    self.pending_cr = true;
                }
                (Quotes::Inside, b'\n') => {
                    self.quoted_lines = true;
                    self.line_break(&mut t, at + 1, true);
                }
                (Quotes::Inside, b'\r') => {
                    self.quoted_lines = true;
                    self.pending_cr_quoted = true;
                }
                (Quotes::Inside, _) => self.pending_quote = true,
            }
            i += 1;
            if self.record_bytes > MAX_RECORD_BYTES {
                t.oversized = Some(self.row_line);
                return Err(std::io::Error::other("a row is too large"));
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
