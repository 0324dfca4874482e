//! Reading a contact list: a CSV, text or Excel file in, header and rows of text out.
//!
//! People keep contacts in Excel and export them in whatever encoding their Excel uses, so the
//! reader takes CSV in UTF-8 (with or without a BOM), GB18030/GBK and UTF-16 (Excel's "Unicode
//! text", tab-separated), detecting the encoding (BOM, then valid UTF-8, then chardetng hinted
//! for Chinese) unless the campaign names one, and the delimiter (`,`, `;` or tab) from the
//! header line; and `.xlsx` workbooks directly, where a number typed as a number comes back as
//! the digits typed. Every cell stays text. Rows are streamed (CSV) so a large list never has
//! to fit in memory, and are numbered as a spreadsheet shows them. A row that cannot be read
//! (ragged, or a cell too large) is reported with its row, not fatal for the list.

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
}

pub struct ContactReader {
    path: PathBuf,
    headers: Vec<String>,
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

    pub fn open_with(path: &Path, options: &ReadOptions) -> Result<ContactReader> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_lowercase();
        if matches!(ext.as_str(), "xlsx" | "xlsm" | "xls" | "xlsb" | "ods") {
            return open_workbook(path, &ext, options.sheet.as_deref());
        }
        if options.sheet.is_some() {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: 0,
                message: "`sheet:` is set but the contact list is not an Excel workbook".into(),
                help: "remove `sheet:` or point `contacts:` at the .xlsx file".into(),
            });
        }
        let read_err = |cause| Error::ReadFile {
            path: path.to_path_buf(),
            cause,
        };
        let mut file = crate::files::open_regular(path)?;
        let mut sample = vec![0; 64 * 1024];
        let n = read_up_to(&mut file, &mut sample).map_err(read_err)?;
        sample.truncate(n);
        // The same file, read again from its start: a path re-opened could be another file.
        file.seek(SeekFrom::Start(0)).map_err(read_err)?;
        let (encoding, bom, detected) = match (Encoding::for_bom(&sample), options.encoding) {
            (Some((enc, _)), _) => (enc, true, false),
            (None, Some(enc)) => (enc, false, false),
            (None, None) => (detect(&sample), false, true),
        };
        let (text, _, _) = encoding.decode(&sample);
        let first_line = text
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .unwrap_or("");
        let delimiter = [b',', b';', b'\t']
            .into_iter()
            .max_by_key(|d| first_line.matches(*d as char).count())
            .filter(|d| first_line.contains(*d as char))
            .unwrap_or(b',');
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
                if used > width || cells.len() < width {
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

/// Valid UTF-8 is UTF-8 (a multi-byte character cut at the sample's end included); otherwise
/// chardetng decides, told the text is probably Chinese.
pub(crate) fn detect(sample: &[u8]) -> &'static Encoding {
    match std::str::from_utf8(sample) {
        Ok(_) => encoding_rs::UTF_8,
        Err(e) if e.error_len().is_none() && sample.len() - e.valid_up_to() < 4 => {
            encoding_rs::UTF_8
        }
        Err(_) => {
            let mut detector =
                chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
            detector.feed(sample, true);
            let guess = detector.guess(Some(b"cn"), chardetng::Utf8Detection::Allow);
            // GBK text is also valid GB18030, which can encode everything: decode with the superset.
            if guess == encoding_rs::GBK {
                encoding_rs::GB18030
            } else {
                guess
            }
        }
    }
}

/// Trims names and a BOM, names unnamed columns by their letter, and refuses a name twice.
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
    let mut seen = std::collections::HashSet::with_capacity(headers.len());
    for h in &headers {
        if !seen.insert(h.as_str()) {
            return Err(Error::ContactsFormat {
                path: path.to_path_buf(),
                line: 1,
                message: format!("the column name `{h}` appears twice in the header"),
                help: "give every column its own name".to_string(),
            });
        }
    }
    Ok(headers)
}

/// The most a workbook may unpack to. A million contacts are a few hundred MB of XML; a
/// workbook declaring more is refused before a byte of it is unpacked (the zip reader holds
/// every part to its declared size, so the declaration is the bound).
const MAX_WORKBOOK_UNPACKED: u64 = 512 << 20;
/// The most cells a sheet may span (header width × rows): every row is widened to the header.
const MAX_SHEET_CELLS: u64 = 50_000_000;

fn open_workbook(path: &Path, ext: &str, sheet: Option<&str>) -> Result<ContactReader> {
    use calamine::Reader;
    let bad = |message: String, help: &str| Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message,
        help: help.to_string(),
    };
    if ext == "xls" {
        // calamine reads an .xls whole, every cell at its place, when it opens it: one cell far
        // away would take all the memory there is.
        return Err(bad(
            "old-style .xls workbooks are not read".into(),
            "open it in Excel or WPS and save it as .xlsx (or as CSV UTF-8)",
        ));
    }
    let file = crate::files::open_regular(path)?;
    check_unpacked_size(path, &file)?;
    let unreadable = |e: &dyn std::fmt::Display| {
        bad(
            format!("the workbook cannot be read: {e}"),
            "save it again from Excel as .xlsx",
        )
    };
    let reader = BufReader::new(file);
    let mut cells = SparseSheet::default();
    // Excel's two formats: the same reading, over two types without a trait for it.
    macro_rules! cells_of {
        ($book:expr) => {{
            let mut book = $book.map_err(|e| unreadable(&e))?;
            let name = choose_sheet(path, book.sheet_names(), sheet)?;
            let mut sheet = book
                .worksheet_cells_reader(&name)
                .map_err(|e| unreadable(&e))?;
            cells.read_all(path, || sheet.next_cell(), unreadable)?;
            name
        }};
    }
    let name = match ext {
        "xlsx" | "xlsm" => cells_of!(calamine::Xlsx::new(reader)),
        "xlsb" => cells_of!(calamine::Xlsb::new(reader)),
        _ => {
            // OpenDocument: calamine caps the cells it reads itself.
            let mut book = calamine::Ods::new(reader).map_err(|e| unreadable(&e))?;
            let name = choose_sheet(path, book.sheet_names(), sheet)?;
            let range = book.worksheet_range(&name).map_err(|e| unreadable(&e))?;
            for (row, col, value) in range.cells() {
                let (r0, c0) = range.start().unwrap_or((0, 0));
                cells.add(path, (r0 + row as u32, c0 + col as u32), value.clone())?;
            }
            name
        }
    };
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
        headers,
        format,
        source: Source::Sheet { rows },
    })
}

/// Refuses a zip-based workbook that declares more unpacked bytes than stepcall reads.
fn check_unpacked_size(path: &Path, file: &File) -> Result<()> {
    let Ok(copy) = file.try_clone() else {
        return Ok(());
    };
    // Not a zip at all: the workbook reader says so in its own words.
    let Ok(mut zip) = zip::ZipArchive::new(BufReader::new(copy)) else {
        return Ok(());
    };
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
    Ok(())
}

fn choose_sheet(path: &Path, names: Vec<String>, wanted: Option<&str>) -> Result<String> {
    let bad = |message: String, help: &str| Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message,
        help: help.to_string(),
    };
    match wanted {
        Some(wanted) => names
            .iter()
            .find(|n| n.as_str() == wanted)
            .cloned()
            .ok_or_else(|| {
                bad(
                    format!(
                        "the workbook has no sheet `{wanted}` (sheets: {})",
                        names.join(", ")
                    ),
                    "set `sheet:` to one of those names",
                )
            }),
        None => names.first().cloned().ok_or_else(|| {
            bad(
                "the workbook has no sheets".into(),
                "add the contacts to the first sheet",
            )
        }),
    }
}

/// The cells of a sheet that hold something, by row: as many as the file has, never the
/// rectangle they span (one cell at XFD1048576 is one cell, not seventeen billion).
#[derive(Default)]
struct SparseSheet {
    rows: std::collections::BTreeMap<u32, Vec<(u32, String)>>,
}

impl SparseSheet {
    /// Adds every cell `next` gives, until it gives none.
    fn read_all<'a, E: std::fmt::Display>(
        &mut self,
        path: &Path,
        mut next: impl FnMut() -> std::result::Result<Option<calamine::Cell<calamine::DataRef<'a>>>, E>,
        unreadable: impl Fn(&dyn std::fmt::Display) -> Error,
    ) -> Result<()> {
        while let Some(cell) = next().map_err(|e| unreadable(&e))? {
            let value = calamine::Data::from(cell.get_value().clone());
            self.add(path, cell.get_position(), value)?;
        }
        Ok(())
    }

    fn add(&mut self, path: &Path, (row, col): (u32, u32), value: calamine::Data) -> Result<()> {
        use calamine::Data;
        let text = match value {
            Data::Empty => return Ok(()),
            Data::String(s) => s,
            // A number typed into a cell: give back the digits typed, not 1.38e10.
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            Data::Int(i) => i.to_string(),
            other => other.to_string(),
        };
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
    /// The last byte was a quote inside a quoted cell: the cell's end, or half of `""`.
    pending_quote: bool,
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
            pending_quote: false,
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
                Quotes::Inside => memchr::memchr2(b'"', b'\n', &buf[i..n]),
            };
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
                (Quotes::Inside, b'\n') => self.line_break(&mut t, at + 1, true),
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
        // Classic Mac line ends: a `\r` alone.
        let rows = lines_of("a,b\r1,2\r\r3,4\r");
        assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), [2, 4]);
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
    fn unnamed_columns_are_named_by_their_letter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, "name,phone,,\nx,1,,\n").unwrap();
        let reader = ContactReader::open(&path).unwrap();
        assert_eq!(reader.headers(), ["name", "phone", "column_C", "column_D"]);
        assert_eq!(column_letter(26), "AA");
    }
}
