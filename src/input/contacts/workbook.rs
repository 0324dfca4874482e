//! Workbooks (.xlsx, .xlsb, .xls, .et, .ods): which kind the bytes are, the sheet to read, and
//! its cells as the sheet shows them, with every size bounded before it is unpacked.

use super::*;

/// What the first bytes of a file say it is, when they say it is a workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Workbook {
    /// Office Open XML (.xlsx, .xlsm) or its binary form (.xlsb): a zip.
    OfficeOpen,
    /// OpenDocument (.ods): a zip whose first entry names its kind.
    OpenDocument,
    /// Excel 97-2003 (.xls), also WPS's .et: a compound file.
    Compound,
}

pub(super) fn workbook_kind(start: &[u8]) -> Option<Workbook> {
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

/// The most a workbook may unpack to. A million contacts are a few hundred MB of XML; a
/// workbook declaring more is refused before a byte of it is unpacked (the zip reader holds
/// every part to its declared size, so the declaration is the bound).
pub(super) const MAX_WORKBOOK_UNPACKED: u64 = 512 << 20;

/// The most cells a sheet may span (header width × rows): every row is widened to the header.
pub(super) const MAX_SHEET_CELLS: u64 = 50_000_000;

/// The most cells an .ods may hold once its repeated rows and columns are expanded: a small
/// file can repeat one cell a billion times.
pub(super) const MAX_ODS_CELLS: u64 = 10_000_000;

/// The most cells merged cells may fill with their value: a column merged down a million rows.
pub(super) const MAX_SPREAD_CELLS: usize = 2_000_000;

/// [`read_workbook`], whose readers (calamine's among them) parse files from anywhere: a panic
/// on a malformed one ends as this list's error, not the process, and prints nothing of its own.
pub(super) fn open_workbook(
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

pub(super) fn read_workbook(
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
pub(super) fn check_unpacked_size(path: &Path, file: &File) -> Result<bool> {
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
pub(super) fn choose_sheet(
    path: &Path,
    sheets: &[calamine::Sheet],
    wanted: Option<&str>,
) -> Result<String> {
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
pub(super) fn choose_ods_sheet(
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
pub(super) struct SparseSheet {
    pub(super) rows: std::collections::BTreeMap<u32, Vec<(u32, String)>>,
}

impl SparseSheet {
    /// Adds every cell of a sheet read whole (.xls, .ods), as the sheet shows it with the
    /// number format `format_at` gives for its (row, column).
    pub(super) fn add_range<'f>(
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

    pub(super) fn add(&mut self, path: &Path, (row, col): (u32, u32), text: String) -> Result<()> {
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
    pub(super) fn spread(&mut self, path: &Path, merged: &[calamine::Dimensions]) -> Result<()> {
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
pub(super) fn dense(cells: Vec<(u32, String)>, width: usize) -> (Vec<String>, Option<usize>) {
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
