//! An OpenDocument spreadsheet (.ods) read as the sheet shows it.
//!
//! An .ods stores, beside each cell's typed value, the text LibreOffice shows for it (`<text:p>`
//! in `content.xml`): `15%`, `01065529988`, `12月3日`. calamine reads only the typed values
//! (0.15, 1065529988, a date), so this module reads `content.xml` itself: the shown text of
//! each cell, which sheets are hidden (`table:display="false"` on the sheet's style), and which
//! cells a merged cell spans. Repeated rows and columns are expanded only where they hold
//! text, and the cells read are bounded, so a sheet of a million repeated empty rows costs
//! nothing. Used by `contacts`; every other workbook goes through calamine.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read, Seek};

use quick_xml::events::{BytesStart, Event};

/// The most text one cell may hold (a cell past it is no contact's).
const MAX_CELL_BYTES: usize = 1 << 20;
/// The most text the cells read may hold together, once repeats are expanded.
const MAX_KEPT_BYTES: u64 = 512 << 20;

/// One sheet: its name, and whether a person sees it.
pub struct Sheet {
    pub name: String,
    pub visible: bool,
}

/// What `content.xml` holds: every sheet's name and visibility, and the cells of the one read.
pub struct Book {
    pub sheets: Vec<Sheet>,
    /// Shown text by row, then (column, text), of the sheet chosen.
    pub rows: BTreeMap<u32, Vec<(u32, String)>>,
    /// Merged regions of that sheet: (top, left, bottom, right).
    pub merged: Vec<(u32, u32, u32, u32)>,
}

#[derive(Debug)]
pub enum OdsError {
    Zip(String),
    Xml(String),
    /// More cells than `max_cells`, or a cell beyond `max_columns`.
    TooLarge,
}

impl std::fmt::Display for OdsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OdsError::Zip(e) => write!(f, "the file is no readable OpenDocument zip ({e})"),
            OdsError::Xml(e) => write!(f, "its content.xml cannot be read ({e})"),
            OdsError::TooLarge => write!(f, "it holds more cells than stepcall reads"),
        }
    }
}

/// Reads the sheet `choose` picks from the list of sheets (by index), with at most `max_cells`
/// cells and `max_columns` columns.
pub fn read<R: Read + Seek>(
    file: R,
    choose: impl FnOnce(&[Sheet]) -> Option<usize>,
    max_cells: u64,
    max_columns: u32,
) -> Result<Book, OdsError> {
    let mut zip = zip::ZipArchive::new(file).map_err(|e| OdsError::Zip(e.to_string()))?;
    // Two passes over content.xml: the first finds the sheets and their visibility (styles
    // come before the body, but the choice needs every sheet's name), the second reads one.
    let sheets = {
        let content = zip
            .by_name("content.xml")
            .map_err(|e| OdsError::Zip(e.to_string()))?;
        sheets_of(BufReader::new(content))?
    };
    let mut book = Book {
        sheets,
        rows: BTreeMap::new(),
        merged: Vec::new(),
    };
    let Some(wanted) = choose(&book.sheets) else {
        return Ok(book);
    };
    let content = zip
        .by_name("content.xml")
        .map_err(|e| OdsError::Zip(e.to_string()))?;
    read_sheet(
        BufReader::new(content),
        wanted,
        max_cells,
        max_columns,
        &mut book,
    )?;
    Ok(book)
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.0 == name)
        .and_then(|a| {
            quick_xml::escape::unescape(&a.value)
                .ok()
                .map(|v| v.into_owned())
        })
}

fn xml_error(e: impl std::fmt::Display) -> OdsError {
    OdsError::Xml(e.to_string())
}

fn sheets_of(content: impl std::io::BufRead) -> Result<Vec<Sheet>, OdsError> {
    let mut xml = quick_xml::Reader::from_reader(content);
    let mut buf = Vec::new();
    let mut hidden_styles: HashSet<String> = HashSet::new();
    let mut style: Option<String> = None;
    let mut sheets = Vec::new();
    loop {
        match xml.read_event_into(&mut buf).map_err(xml_error)? {
            Event::Start(e) | Event::Empty(e) => match e.name().0 {
                "style:style" => style = attr(&e, "style:name"),
                "style:table-properties" => {
                    if attr(&e, "table:display").as_deref() == Some("false")
                        && let Some(name) = style.clone()
                    {
                        hidden_styles.insert(name);
                    }
                }
                "table:table" => {
                    let hidden =
                        attr(&e, "table:style-name").is_some_and(|s| hidden_styles.contains(&s));
                    sheets.push(Sheet {
                        name: attr(&e, "table:name").unwrap_or_default(),
                        visible: !hidden,
                    });
                }
                _ => {}
            },
            Event::Eof => return Ok(sheets),
            _ => {}
        }
        buf.clear();
    }
}

fn read_sheet(
    content: impl std::io::BufRead,
    wanted: usize,
    max_cells: u64,
    max_columns: u32,
    book: &mut Book,
) -> Result<(), OdsError> {
    let mut xml = quick_xml::Reader::from_reader(content);
    let mut buf = Vec::new();
    let mut table = None::<usize>;
    let mut tables = 0usize;
    let (mut row, mut col) = (0u32, 0u32);
    let mut rows_repeated = 1u32;
    // The cell being read: its text so far, how often it repeats, and its span.
    let mut cell: Option<(String, u32, (u32, u32))> = None;
    let mut paragraphs = 0;
    let mut cells = 0u64;
    // Bytes of text kept, over every expanded cell: the bound on memory.
    let mut kept = 0u64;
    // Inside a comment (`office:annotation`), whose text is no part of the cell shown.
    let mut annotation = 0u32;
    loop {
        let event = xml.read_event_into(&mut buf).map_err(xml_error)?;
        let in_table = table == Some(wanted);
        match &event {
            Event::Start(e) if e.name().0 == "office:annotation" => annotation += 1,
            Event::End(e) if e.name().0 == "office:annotation" => {
                annotation = annotation.saturating_sub(1);
                buf.clear();
                continue;
            }
            _ => {}
        }
        if annotation > 0 {
            buf.clear();
            continue;
        }
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                match e.name().0 {
                    "table:table" => {
                        table = Some(tables);
                        tables += 1;
                        row = 0;
                    }
                    "table:table-row" if in_table => {
                        col = 0;
                        rows_repeated = attr(e, "table:number-rows-repeated")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(1);
                        if empty {
                            row = row.saturating_add(rows_repeated);
                        }
                    }
                    "table:table-cell" | "table:covered-table-cell" if in_table => {
                        let repeat: u32 = attr(e, "table:number-columns-repeated")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(1);
                        let span = |name: &str| {
                            attr(e, name)
                                .and_then(|n| n.parse::<u32>().ok())
                                .unwrap_or(1)
                        };
                        let spans = (
                            span("table:number-rows-spanned"),
                            span("table:number-columns-spanned"),
                        );
                        if spans.0 > 1 || spans.1 > 1 {
                            book.merged.push((
                                row,
                                col,
                                row.saturating_add(spans.0.saturating_sub(1)),
                                col.saturating_add(spans.1.saturating_sub(1)),
                            ));
                        }
                        if empty {
                            col = col.saturating_add(repeat);
                        } else {
                            cell = Some((String::new(), repeat, spans));
                            paragraphs = 0;
                        }
                    }
                    "text:p" if cell.is_some() => {
                        if let Some((text, _, _)) = cell.as_mut()
                            && paragraphs > 0
                        {
                            text.push('\n');
                        }
                        paragraphs += 1;
                    }
                    "text:s" => {
                        if let Some((text, _, _)) = cell.as_mut() {
                            let n: usize =
                                attr(e, "text:c").and_then(|n| n.parse().ok()).unwrap_or(1);
                            if text.len().saturating_add(n) > MAX_CELL_BYTES {
                                return Err(OdsError::TooLarge);
                            }
                            text.extend(std::iter::repeat_n(' ', n));
                        }
                    }
                    "text:tab" => {
                        if let Some((text, _, _)) = cell.as_mut() {
                            text.push('\t');
                        }
                    }
                    "text:line-break" => {
                        if let Some((text, _, _)) = cell.as_mut() {
                            text.push('\n');
                        }
                    }
                    _ => {}
                }
            }
            Event::Text(t) => {
                if let Some((text, _, _)) = cell.as_mut() {
                    // Entities arrive as their own events: the text is literal.
                    let content = t.xml10_content();
                    if text.len() + content.len() > MAX_CELL_BYTES {
                        return Err(OdsError::TooLarge);
                    }
                    text.push_str(&content);
                }
            }
            Event::GeneralRef(r) => {
                if let Some((text, _, _)) = cell.as_mut() {
                    if text.len() > MAX_CELL_BYTES {
                        return Err(OdsError::TooLarge);
                    }
                    if let Some(c) = r.resolve_char_ref().ok().flatten() {
                        text.push(c);
                    } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(r.as_ref())
                    {
                        text.push_str(s);
                    }
                }
            }
            Event::End(ref e) => match e.name().0 {
                "table:table" => {
                    if in_table {
                        return Ok(());
                    }
                    table = None;
                }
                "table:table-row" if in_table => {
                    row = row.saturating_add(rows_repeated);
                }
                "table:table-cell" | "table:covered-table-cell" if in_table => {
                    if let Some((text, repeat, _)) = cell.take() {
                        if !text.is_empty() {
                            // Counted before a cell is expanded: a repeat can be a billion.
                            cells += u64::from(rows_repeated) * u64::from(repeat);
                            kept += (u64::from(rows_repeated) * u64::from(repeat))
                                .saturating_mul(text.len() as u64);
                            if cells > max_cells
                                || kept > MAX_KEPT_BYTES
                                || u64::from(col) + u64::from(repeat) > u64::from(max_columns)
                            {
                                return Err(OdsError::TooLarge);
                            }
                            for r in 0..rows_repeated {
                                for c in 0..repeat {
                                    let column = col.saturating_add(c);
                                    book.rows
                                        .entry(row.saturating_add(r))
                                        .or_default()
                                        .push((column, text.clone()));
                                }
                            }
                        }
                        col = col.saturating_add(repeat);
                    }
                }
                _ => {}
            },
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}
