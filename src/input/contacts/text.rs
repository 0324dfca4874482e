//! Text lists (CSV and its cousins): the delimiter guessed outside quoted cells, bytes the
//! encoding cannot explain named by line and column, and the line table that numbers CSV
//! records as a spreadsheet shows them while the reader streams.

use super::*;

/// The delimiter of a text list: whichever of `,`, `;`, tab and `|` its first row holds most
/// of outside quoted cells (`"Wang, Fang";138…` is `;`-separated), `,` if none.
pub(super) fn guess_delimiter(text: &str) -> u8 {
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

/// Where the byte at `at` is (line and column), and the error that says so. The file is read
/// up to that byte a chunk at a time, however far into it the byte is.
pub(super) fn undecodable(
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
pub(super) struct Locator {
    pub(super) delimiter: char,
    pub(super) line: u64,
    pub(super) column: usize,
    pub(super) quoted: bool,
    pub(super) at_cell_start: bool,
    /// The last character was a `\r`: a line end, unless a `\n` follows.
    pub(super) pending_cr: bool,
    /// The last character closed a quoted cell, or began a `""` inside it.
    pub(super) just_closed: bool,
}

impl Locator {
    pub(super) fn new(delimiter: u8) -> Locator {
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

    pub(super) fn feed(&mut self, text: &str) {
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

    pub(super) fn line_end(&mut self) {
        self.line += 1;
        if !self.quoted {
            self.column = 0;
            self.at_cell_start = true;
        }
    }
}

pub(super) fn format_error(path: &Path, err: &csv::Error, lines: &Lines) -> Error {
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

/// Where rows start, for the rows the csv reader has not reached yet.
///
/// The csv crate reports a record's position as where it *started looking*: after a CRLF that
/// is the `\n` of the line before, and blank lines in between are skipped without a trace. So
/// the reader's input passes through `LineTracker`, which notes the start offset of each line a
/// row can start on, and whether it is blank; a record's line is the first non-blank one at or
/// after its position. Lines inside a quoted cell are counted but not noted: no row starts
/// there, and a cell of a million line breaks must not cost a million entries.
#[derive(Clone, Default)]
pub(super) struct Lines(pub(super) Arc<Mutex<LineTable>>);

#[derive(Default)]
pub(super) struct LineTable {
    /// Finished lines not yet claimed by a record: (start offset, line number, blank).
    pub(super) done: VecDeque<(u64, u64, bool)>,
    pub(super) current_start: u64,
    pub(super) current_line: u64,
    pub(super) current_blank: bool,
    /// The current line began inside a quoted cell: no row starts on it.
    pub(super) current_quoted: bool,
    /// The line of the row whose cell (or which row) ran past the bounds, if one did.
    pub(super) oversized: Option<u64>,
    /// The line where a quoted cell opened that ran across line breaks to the end of the file
    /// or past the cell limit: a stray quote, which would swallow the rows after it.
    pub(super) unclosed: Option<u64>,
}

impl Lines {
    pub(super) fn first_line_at(&self, byte: u64) -> u64 {
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

    pub(super) fn oversized(&self) -> Option<u64> {
        self.0.lock().expect("line table").oversized
    }

    pub(super) fn unclosed(&self) -> Option<u64> {
        self.0.lock().expect("line table").unclosed
    }
}

/// Whether the tracker is inside a quoted cell, as the csv crate reads one: a quote opens it
/// only at the start of a cell, and a doubled quote inside it is a quote.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Quotes {
    Outside,
    Inside,
}

pub(super) struct LineTracker<R> {
    pub(super) inner: R,
    pub(super) offset: u64,
    pub(super) lines: Lines,
    pub(super) delimiter: u8,
    pub(super) quotes: Quotes,
    /// The bytes of the row being read so far.
    pub(super) record_bytes: u64,
    /// The line the row being read started on.
    pub(super) row_line: u64,
    /// The byte before the next one: a quote opens a cell only after a delimiter or a line end.
    pub(super) prev: u8,
    /// The last byte was a `\r` outside quotes: a line break unless a `\n` follows.
    pub(super) pending_cr: bool,
    /// The same inside a quoted cell: a line of the cell ends (CR-only files have no `\n`).
    pub(super) pending_cr_quoted: bool,
    /// The last byte was a quote inside a quoted cell: the cell's end, or half of `""`.
    pub(super) pending_quote: bool,
    /// Where the quoted cell being read opened, its bytes so far, and whether it spans lines.
    pub(super) quote_line: u64,
    pub(super) quoted_bytes: u64,
    pub(super) quoted_lines: bool,
}

impl<R: Read> LineTracker<R> {
    pub(super) fn new(inner: R, lines: Lines, delimiter: u8) -> LineTracker<R> {
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
    pub(super) fn line_break(&mut self, t: &mut LineTable, start: u64, in_quotes: bool) {
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
