//! `export -o results.xlsx`: the export as a real Excel workbook, for the people who open it.
//!
//! A CSV leaves Excel to guess each cell's type, and it guesses wrong where it matters: a phone
//! number becomes 1.38E+10, an 18-digit ID number loses its last three digits (Excel keeps 15
//! significant digits), a landline loses its leading zero. Here every cell is typed by
//! `export::record`: the list's columns, phone numbers and call ids are text cells (formatted
//! `@`, so a cell edited in Excel stays text too), counts, durations and costs are numbers, and
//! times are date cells holding the campaign's wall-clock time, shown with their offset as
//! `export` writes them elsewhere. A text cell is never a formula, so nothing needs the CSV's
//! leading `'`. The header row is frozen and carries a filter; column widths follow the
//! longest value. Rows go through rust_xlsxwriter's constant-memory mode (one row in memory,
//! the rest in an unnamed temporary file, mode 0600, gone when the file is closed), so a large
//! export still takes constant memory.

use std::collections::HashMap;
use std::io::Write;

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook, Worksheet, XlsxError};

use crate::errors::{Error, Result};
use crate::output::export::{Cell, ExportOptions, header, io, record};
use crate::state::Store;

/// Excel's limits: rows and columns in a sheet, characters in a cell.
const MAX_ROWS: u32 = 1_048_576;
const MAX_COLUMNS: usize = 16_384;
const MAX_CELL_CHARS: usize = 32_767;

/// Column widths, in Excel's units (about one digit each): a column is as wide as its longest
/// value, but a transcript does not push the next column off the screen.
const MIN_WIDTH: f64 = 6.0;
const MAX_WIDTH: f64 = 60.0;
/// The header's filter button takes about two characters of its cell.
const FILTER_BUTTON: f64 = 2.0;

/// Where a value cut at `MAX_CELL_CHARS` says so, rather than ending mid-sentence unexplained.
const CUT: &str =
    " … [cut: an Excel cell holds 32,767 characters; the CSV or JSON export has it all]";

fn xlsx(e: XlsxError) -> Error {
    match e {
        XlsxError::RowColumnLimitError => Error::XlsxTooBig {
            limit: "1,048,575 contacts and 16,384 columns",
        },
        other => io(other),
    }
}

/// Writes the export of `store` to `out` as a workbook of one sheet. Returns the number of
/// contacts written.
pub fn write(store: &Store, out: impl Write + Send, options: &ExportOptions) -> Result<u64> {
    let columns = store.columns()?;
    let header = header(&columns);
    if header.len() > MAX_COLUMNS {
        return Err(Error::XlsxTooBig {
            limit: "16,384 columns",
        });
    }
    let mut workbook = Workbook::new();
    let mut sheet = Sheet::new(
        workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx)?,
        header.len(),
    );
    sheet.header(&header)?;
    let mut written = 0;
    store.for_each_export_row(|row| {
        if !options.keeps(&row) {
            return Ok(());
        }
        sheet.row(record(&columns, &row), options)?;
        written += 1;
        Ok(())
    })?;
    sheet.finish()?;
    workbook.save_to_writer(out).map_err(xlsx)?;
    Ok(written)
}

/// The sheet being written, with the formats it uses and how wide each column has to be.
struct Sheet<'a> {
    sheet: &'a mut Worksheet,
    text: Format,
    /// One date format per UTC offset met: a zone with daylight saving shows two.
    times: HashMap<i32, Format>,
    widths: Vec<f64>,
    next_row: u32,
}

impl<'a> Sheet<'a> {
    fn new(sheet: &'a mut Worksheet, columns: usize) -> Sheet<'a> {
        // A fixed name Excel accepts, so the only failure it could report cannot happen.
        let _ = sheet.set_name("results");
        Sheet {
            sheet,
            text: Format::new().set_num_format("@"),
            times: HashMap::new(),
            widths: vec![MIN_WIDTH; columns],
            next_row: 0,
        }
    }

    fn header(&mut self, names: &[&str]) -> Result<()> {
        let bold = self.text.clone().set_bold();
        for (col, name) in names.iter().enumerate() {
            self.sheet
                .write_string_with_format(0, col as u16, *name, &bold)
                .map_err(xlsx)?;
            self.widen(col, width(name) + FILTER_BUTTON);
        }
        self.next_row = 1;
        Ok(())
    }

    fn row(&mut self, cells: Vec<Cell>, options: &ExportOptions) -> Result<()> {
        let row = self.next_row;
        if row >= MAX_ROWS {
            return Err(Error::XlsxTooBig {
                limit: "1,048,575 contacts",
            });
        }
        for (col, cell) in cells.into_iter().enumerate() {
            let c = col as u16;
            match cell {
                Cell::Empty => {}
                Cell::Text(text) if text.is_empty() => {}
                Cell::Text(text) => {
                    let text = cut(text);
                    self.widen(col, width(&text));
                    self.sheet
                        .write_string_with_format(row, c, &text, &self.text)
                        .map_err(xlsx)?;
                }
                Cell::Number(n) => {
                    self.widen(col, width(&n.to_string()));
                    self.sheet.write_number(row, c, n).map_err(xlsx)?;
                }
                Cell::Time(at) => {
                    let local = crate::clock::to_second(at, &options.zone);
                    let offset = local.offset().seconds();
                    let (date, time) = (local.date(), local.time());
                    let value = ExcelDateTime::from_ymd(
                        date.year() as u16,
                        date.month() as u8,
                        date.day() as u8,
                    )
                    .and_then(|d| d.and_hms(time.hour() as u16, time.minute() as u8, time.second()))
                    .map_err(xlsx)?;
                    let format = self
                        .times
                        .entry(offset)
                        .or_insert_with(|| time_format(&local));
                    self.sheet
                        .write_datetime_with_format(row, c, value, format)
                        .map_err(xlsx)?;
                    // As wide as `2026-12-02T09:00:05+08:00`.
                    self.widen(col, 26.0);
                }
            }
        }
        self.next_row += 1;
        Ok(())
    }

    /// What can only be said once every row is known: the filter's range and the widths.
    fn finish(self) -> Result<()> {
        let last_col = (self.widths.len() - 1) as u16;
        // The filter covers the rows written; with none, it still marks the header.
        let last_row = self.next_row.saturating_sub(1);
        self.sheet
            .autofilter(0, 0, last_row, last_col)
            .map_err(xlsx)?;
        self.sheet.set_freeze_panes(1, 0).map_err(xlsx)?;
        for (col, w) in self.widths.iter().enumerate() {
            self.sheet
                .set_column_width(col as u16, w.min(MAX_WIDTH))
                .map_err(xlsx)?;
        }
        Ok(())
    }

    fn widen(&mut self, col: usize, w: f64) {
        if let Some(have) = self.widths.get_mut(col) {
            *have = have.max(w + 1.0);
        }
    }
}

/// The date format of times at `local`'s offset: the same text as the CSV's
/// (`2026-12-02T09:00:05+08:00`), over a real date that Excel sorts, filters and computes with.
fn time_format(local: &jiff::Zoned) -> Format {
    let offset = local.strftime("%:z").to_string();
    Format::new().set_num_format(format!("yyyy-mm-dd\"T\"hh:mm:ss\"{offset}\""))
}

/// About how many digit widths `text` takes: Chinese and other wide characters take two.
fn width(text: &str) -> f64 {
    let longest_line = text.lines().map(line_width).max().unwrap_or(0);
    longest_line as f64
}

fn line_width(line: &str) -> usize {
    line.chars().map(|c| if is_wide(c) { 2 } else { 1 }).sum()
}

/// East Asian wide characters (CJK, Hangul, full-width forms), which a spreadsheet draws twice
/// as wide as a digit.
fn is_wide(c: char) -> bool {
    matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD)
}

/// `text`, cut to what an Excel cell holds, saying so.
fn cut(text: String) -> String {
    // Excel counts UTF-16 units, not characters.
    if text.encode_utf16().count() <= MAX_CELL_CHARS {
        return text;
    }
    let room = MAX_CELL_CHARS - CUT.encode_utf16().count();
    let mut used = 0;
    let mut kept = String::new();
    for c in text.chars() {
        used += c.len_utf16();
        if used > room {
            break;
        }
        kept.push(c);
    }
    kept.push_str(CUT);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_counts_twice_and_the_longest_line_decides() {
        assert_eq!(width("13800138000"), 11.0);
        assert_eq!(width("王芳"), 4.0);
        assert_eq!(width("user: 好的\nassistant: 您好，我是"), 21.0);
    }

    #[test]
    fn a_cell_longer_than_excel_holds_is_cut_and_says_so() {
        let short = "好".repeat(MAX_CELL_CHARS);
        assert_eq!(cut(short.clone()), short, "32,767 UTF-16 units fit");
        let long = cut("好".repeat(MAX_CELL_CHARS + 1));
        assert_eq!(long.encode_utf16().count(), MAX_CELL_CHARS);
        assert!(long.ends_with(CUT));
        // Characters outside the BMP take two units each.
        let wide = cut("😀".repeat(MAX_CELL_CHARS));
        assert!(wide.encode_utf16().count() <= MAX_CELL_CHARS);
    }
}
