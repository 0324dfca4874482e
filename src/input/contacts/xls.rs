//! What calamine does not give of an Excel 97-2003 workbook (.xls, WPS's .et): a bound before
//! it reads the file, and each cell's number format.
//!
//! calamine turns every sheet of an .xls into a dense grid when it opens the file: one cell at
//! row 65,536 of each of a hundred sheets would take tens of gigabytes. And it keeps of a
//! number format only whether it is a date, so a percentage would read 0.15 and a landline
//! formatted `00000000000` would lose its 0. So this module reads the compound file's
//! `Workbook` stream itself (the container's sector chains, then the BIFF records), sums the
//! rectangles the sheets' cells span, and maps each number cell of a sheet to its format code.
//! It trusts no length or chain: every offset is checked, every chain is bounded by the sectors
//! the file has.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::errors::{Error, Result};

/// The largest .xls stepcall reads: Excel's own 65,536-row sheets fit in a few MB.
const MAX_FILE_BYTES: u64 = 128 << 20;
/// The most cells the dense grids of all sheets may hold together (about 1.6 GB in calamine).
const MAX_GRID_CELLS: u64 = 50_000_000;

/// The most sheets an .xls may have (Excel's own workbooks rarely pass a hundred).
const MAX_SHEETS: usize = 1024;

/// A sheet's number cells, (row, column) to style index.
pub type CellStyles = HashMap<(u32, u32), u16>;

/// Each number cell's style by sheet name and (row, column), and each style's format code: a
/// code is kept once per style, however many cells use it.
#[derive(Default)]
pub struct Formats {
    cells: HashMap<String, CellStyles>,
    codes: Vec<Option<String>>,
}

impl Formats {
    /// One sheet's cells' styles, (row, column) to style, and each style's format code.
    pub fn of_sheet(&mut self, sheet: &str) -> (CellStyles, &[Option<String>]) {
        (self.cells.remove(sheet).unwrap_or_default(), &self.codes)
    }
}

/// Refuses a workbook calamine must not see (over the bounds, or with records that would make
/// it allocate past them or fail); else returns its cells' number formats.
pub fn check(path: &Path, file: &std::fs::File) -> Result<Formats> {
    let bad = |message: String| Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message,
        help: "open it in Excel or WPS and save it as .xlsx (or as CSV UTF-8)".into(),
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        return Err(bad(format!(
            "the .xls workbook is {} MB, more than the {} MB stepcall reads",
            size >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    let mut reader = file.try_clone().map_err(|cause| Error::ReadFile {
        path: path.to_path_buf(),
        cause,
    })?;
    reader
        .read_to_end(&mut bytes)
        .map_err(|cause| Error::ReadFile {
            path: path.to_path_buf(),
            cause,
        })?;
    let Some(stream) = workbook_stream(&bytes) else {
        return Err(bad(
            "cannot be followed from its container to its Workbook stream".into(),
        ));
    };
    if let Some(problem) = refusal(&stream) {
        return Err(bad(format!("the .xls workbook {problem}")));
    }
    Ok(formats(&stream))
}

const END_OF_CHAIN: u32 = 0xFFFF_FFFE;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// The bytes of the `Workbook` (or `Book`) stream of a compound file.
fn workbook_stream(file: &[u8]) -> Option<Vec<u8>> {
    let shift = u16_at(file, 0x1E)?;
    let mini_shift = u16_at(file, 0x20)?;
    if !(7..=16).contains(&shift) || mini_shift >= shift {
        return None;
    }
    let sector = 1usize << shift;
    let sectors = file.len() / sector;
    let sector_bytes = |id: u32| -> Option<&[u8]> {
        let start = (id as usize).checked_add(1)?.checked_mul(sector)?;
        file.get(start..start + sector)
    };
    // The FAT's own sectors: 109 in the header, the rest in a chain of DIFAT sectors.
    let mut fat_sectors: Vec<u32> = (0..109)
        .filter_map(|i| u32_at(file, 0x4C + 4 * i))
        .filter(|&id| id < 0xFFFF_FFFA)
        .collect();
    let mut difat = u32_at(file, 0x44)?;
    let mut guard = 0;
    while difat < 0xFFFF_FFFA && guard <= sectors {
        let s = sector_bytes(difat)?;
        let per = sector / 4 - 1;
        fat_sectors.extend(
            (0..per)
                .filter_map(|i| u32_at(s, 4 * i))
                .filter(|&id| id < 0xFFFF_FFFA),
        );
        difat = u32_at(s, 4 * per)?;
        guard += 1;
    }
    let mut fat = Vec::new();
    for &id in fat_sectors.iter().take(sectors + 1) {
        let s = sector_bytes(id)?;
        fat.extend((0..sector / 4).filter_map(|i| u32_at(s, 4 * i)));
    }
    let chain = |start: u32, table: &[u32], limit: usize| -> Vec<u32> {
        let mut ids = Vec::new();
        let mut id = start;
        while id != END_OF_CHAIN && (id as usize) < table.len() && ids.len() <= limit {
            ids.push(id);
            id = table[id as usize];
        }
        ids
    };
    let read_chain = |start: u32| -> Vec<u8> {
        chain(start, &fat, sectors)
            .into_iter()
            .filter_map(sector_bytes)
            .flatten()
            .copied()
            .collect()
    };
    let directory = read_chain(u32_at(file, 0x30)?);
    let entry = |i: usize| directory.get(i * 128..i * 128 + 128);
    let name_of = |e: &[u8]| -> String {
        let len = (u16_at(e, 64).unwrap_or(0) as usize).min(64);
        let units: Vec<u16> = (0..len / 2)
            .filter_map(|k| u16_at(e, 2 * k))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    };
    let root = entry(0)?;
    let cutoff = u32_at(file, 0x38).unwrap_or(4096) as u64;
    let found = (0..directory.len() / 128)
        .filter_map(entry)
        .find(|e| e.get(66) == Some(&2) && matches!(name_of(e).as_str(), "Workbook" | "Book"))?;
    let start = u32_at(found, 116)?;
    let size = u32_at(found, 120)? as u64;
    let mut stream = if size < cutoff {
        // A small stream lives in the mini stream, itself a chain of the root entry.
        let mini_stream = read_chain(u32_at(root, 116)?);
        let mini_fat = read_chain(u32_at(file, 0x3C)?);
        let mini_fat: Vec<u32> = (0..mini_fat.len() / 4)
            .filter_map(|i| u32_at(&mini_fat, 4 * i))
            .collect();
        let mini = 1usize << mini_shift;
        chain(start, &mini_fat, mini_stream.len() / mini)
            .into_iter()
            .filter_map(|id| mini_stream.get(id as usize * mini..(id as usize + 1) * mini))
            .flatten()
            .copied()
            .collect()
    } else {
        read_chain(start)
    };
    stream.truncate(size as usize);
    Some(stream)
}

/// Each sheet's name and where its records start (BOUNDSHEET8 records of the globals).
fn sheets(stream: &[u8]) -> Vec<(String, usize)> {
    Records { stream, at: 0 }
        .take_while(|&(kind, _)| kind != 0x000A)
        .filter(|&(kind, _)| kind == 0x0085)
        .filter_map(|(_, data)| {
            let pos = u32_at(data, 0)? as usize;
            let len = *data.get(6)? as usize;
            Some((unicode_string(data.get(7..)?, len)?, pos))
        })
        .collect()
}

/// BIFF8's string body: a flag byte (bit 0: UTF-16LE, else one byte a character), then the
/// characters.
fn unicode_string(data: &[u8], chars: usize) -> Option<String> {
    let wide = data.first()? & 1 == 1;
    let body = data.get(1..)?;
    if wide {
        let units: Vec<u16> = (0..chars).filter_map(|i| u16_at(body, 2 * i)).collect();
        Some(String::from_utf16_lossy(&units))
    } else {
        Some(body.get(..chars)?.iter().map(|&b| char::from(b)).collect())
    }
}

/// Excel's built-in number formats, which a workbook uses without a FORMAT record.
fn builtin_format(id: u16) -> Option<&'static str> {
    Some(match id {
        0 => "General",
        1 => "0",
        2 => "0.00",
        3 => "#,##0",
        4 => "#,##0.00",
        9 => "0%",
        10 => "0.00%",
        14 => "yyyy-mm-dd",
        15 => "d-mmm-yy",
        16 => "d-mmm",
        17 => "mmm-yy",
        18 => "h:mm AM/PM",
        19 => "h:mm:ss AM/PM",
        20 => "h:mm",
        21 => "h:mm:ss",
        22 => "yyyy-mm-dd h:mm",
        45 => "mm:ss",
        46 => "[h]:mm:ss",
        49 => "@",
        _ => return None,
    })
}

/// The style of every number cell by sheet, and the format code of every style.
fn formats(stream: &[u8]) -> Formats {
    let mut codes: HashMap<u16, String> = HashMap::new();
    let mut xf_formats: Vec<u16> = Vec::new();
    let globals = Records { stream, at: 0 }.take_while(|&(kind, _)| kind != 0x000A);
    for (kind, data) in globals {
        match kind {
            // FORMAT: an id and its code.
            0x041E => {
                if let (Some(id), Some(len)) = (u16_at(data, 0), u16_at(data, 2))
                    && let Some(code) = data.get(4..).and_then(|d| unicode_string(d, len.into()))
                {
                    codes.insert(id, code);
                }
            }
            // XF: the cell style whose index a cell names; its second field is the format.
            0x00E0 => xf_formats.push(u16_at(data, 2).unwrap_or(0)),
            _ => {}
        }
    }
    let codes: Vec<Option<String>> = xf_formats
        .iter()
        .map(|id| {
            codes
                .get(id)
                .cloned()
                .or_else(|| builtin_format(*id).map(str::to_string))
        })
        .collect();
    let mut cells_by_sheet = HashMap::new();
    for (name, pos, end) in segments(stream) {
        let mut cells = HashMap::new();
        for (kind, data) in sheet_records(&stream[..end], pos) {
            match kind {
                // NUMBER, RK, FORMULA: row, column, style.
                0x0203 | 0x027E | 0x0006 => {
                    if let (Some(r), Some(c), Some(xf)) =
                        (u16_at(data, 0), u16_at(data, 2), u16_at(data, 4))
                    {
                        cells.insert((r.into(), c.into()), xf);
                    }
                }
                // MULRK: a row, a first column, then a style and a value per column.
                0x00BD => {
                    if let (Some(r), Some(first)) = (u16_at(data, 0), u16_at(data, 2)) {
                        let runs = data.len().saturating_sub(6) / 6;
                        for i in 0..runs {
                            if let Some(xf) = u16_at(data, 4 + 6 * i) {
                                cells.insert((r.into(), u32::from(first) + i as u32), xf);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        cells_by_sheet.insert(name, cells);
    }
    Formats {
        cells: cells_by_sheet,
        codes,
    }
}

/// Each sheet's name, where its records start, and where the next sheet's start (its records
/// may not run past there), in stream order.
fn segments(stream: &[u8]) -> Vec<(String, usize, usize)> {
    let mut sheets = sheets(stream);
    sheets.sort_by_key(|(_, pos)| *pos);
    let ends: Vec<usize> = sheets
        .iter()
        .skip(1)
        .map(|(_, pos)| *pos)
        .chain([stream.len()])
        .map(|end| end.min(stream.len()))
        .collect();
    sheets
        .into_iter()
        .zip(ends)
        .map(|((name, pos), end)| (name, pos, end))
        .collect()
}

/// What is wrong with the workbook for calamine, if anything: more sheets than stepcall reads,
/// a sheet record too short or pointing where no sheet begins, sheets sharing records, a sheet
/// without its end, a merged-cells record shorter than its count, or grids (by their declared
/// dimensions or by their cells, counted from A1) over `MAX_GRID_CELLS` together.
fn refusal(stream: &[u8]) -> Option<String> {
    let globals = Records { stream, at: 0 }.take_while(|&(kind, _)| kind != 0x000A);
    let declared = globals.filter(|&(kind, _)| kind == 0x0085).count();
    if declared > MAX_SHEETS {
        return Some(format!(
            "has {declared} sheets, more than the {MAX_SHEETS} stepcall reads"
        ));
    }
    let segments = segments(stream);
    if segments.len() != declared {
        return Some("has a sheet record too short to name its sheet".into());
    }
    let mut total = 0u64;
    for (i, (name, pos, end)) in segments.iter().enumerate() {
        let shared = i > 0 && segments[i - 1].1 == *pos;
        if shared || u16_at(stream, *pos) != Some(0x0809) {
            return Some(format!(
                "points sheet `{name}` where no sheet of its own begins"
            ));
        }
        let mut ended = false;
        let mut depth = 0i32;
        let (mut rows, mut cols) = (0u64, 0u64);
        let mut declared_cells = 0u64;
        let records = Records {
            stream: &stream[..*end],
            at: *pos,
        };
        for (kind, data) in records {
            match kind {
                0x0809 => depth += 1,
                0x000A => {
                    depth -= 1;
                    if depth <= 0 {
                        ended = true;
                        break;
                    }
                }
                _ if depth > 1 => {}
                // DIMENSIONS: first and last-plus-one row (u32) and column (u16); calamine sizes
                // its grid by it before reading a cell.
                0x0200 => {
                    let (Some(r0), Some(r1), Some(c0), Some(c1)) = (
                        u32_at(data, 0),
                        u32_at(data, 4),
                        u16_at(data, 8),
                        u16_at(data, 10),
                    ) else {
                        return Some(format!(
                            "has a dimensions record too short in sheet `{name}`"
                        ));
                    };
                    let area = u64::from(r1.saturating_sub(r0)) * u64::from(c1.saturating_sub(c0));
                    declared_cells = declared_cells.max(area);
                }
                // MERGEDCELLS: a count, then eight bytes a region.
                0x00E5 => {
                    let count = u16_at(data, 0).map_or(usize::MAX, usize::from);
                    if data.len() < 2usize.saturating_add(count.saturating_mul(8)) {
                        return Some(format!(
                            "has a merged-cells record shorter than its count in sheet `{name}`"
                        ));
                    }
                }
                // The cell records calamine keeps: number, label, rstring, bool/error, rk,
                // label-sst, formula, and mul-rk (a run of columns in one row). A formula's
                // string result (0x0207) may land at A1, which the count from A1 includes.
                0x0203 | 0x0204 | 0x00D6 | 0x0205 | 0x027E | 0x00FD | 0x0006 | 0x00BD => {
                    let (Some(r), Some(c)) = (u16_at(data, 0), u16_at(data, 2)) else {
                        continue;
                    };
                    let last = match kind {
                        0x00BD => data
                            .len()
                            .checked_sub(2)
                            .and_then(|at| u16_at(data, at))
                            .unwrap_or(c)
                            .max(c),
                        _ => c,
                    };
                    rows = rows.max(u64::from(r) + 1);
                    cols = cols.max(u64::from(last) + 1);
                }
                _ => {}
            }
        }
        if !ended {
            return Some(format!("has sheet `{name}` without its end"));
        }
        total = total.saturating_add(declared_cells.max(rows * cols));
        if total > MAX_GRID_CELLS {
            return Some(format!(
                "has sheets spanning more than the {MAX_GRID_CELLS} cells stepcall reads (counted from A1 to their last used or declared cell)"
            ));
        }
    }
    None
}

/// The records of the sheet whose BOF is at `pos`, up to its EOF, without those of the charts
/// and other substreams nested in it (which carry cell-like records of their own).
fn sheet_records(stream: &[u8], pos: usize) -> impl Iterator<Item = (u16, &[u8])> {
    let mut depth = 0i32;
    Records { stream, at: pos }
        .map_while(move |(kind, data)| {
            match kind {
                0x0809 => depth += 1,
                0x000A => depth -= 1,
                _ => {}
            }
            (depth > 0).then_some((kind, data, depth))
        })
        .filter(|&(_, _, depth)| depth == 1)
        .map(|(kind, data, _)| (kind, data))
}

/// BIFF records: a type, a length and that many bytes.
struct Records<'a> {
    stream: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let kind = u16_at(self.stream, self.at)?;
        let len = u16_at(self.stream, self.at + 2)? as usize;
        let data = self.stream.get(self.at + 4..self.at + 4 + len)?;
        self.at += 4 + len;
        Some((kind, data))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn number_formats_are_read_from_a_libreoffice_xls() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sheets/formats.xls");
        let bytes = std::fs::read(&path).unwrap();
        let stream = super::workbook_stream(&bytes).expect("the Workbook stream");
        let sheets = super::sheets(&stream);
        assert_eq!(
            sheets.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            ["contacts"]
        );
        assert_eq!(super::refusal(&stream), None);
        let mut formats = super::formats(&stream);
        let (cells, codes) = formats.of_sheet("contacts");
        let code = cells
            .get(&(1, 2))
            .and_then(|&xf| codes[xf as usize].as_deref());
        assert_eq!(code, Some("00000000000"), "{cells:?}");
    }

    /// Records that would make calamine allocate terabytes, or index out of its records.
    #[test]
    fn records_calamine_cannot_take_are_refused() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/sheets/formats.xls");
        let bytes = std::fs::read(&path).unwrap();
        let stream = super::workbook_stream(&bytes).unwrap();
        let find = |kind: u16| {
            let mut at = 0;
            while let (Some(k), Some(len)) =
                (super::u16_at(&stream, at), super::u16_at(&stream, at + 2))
            {
                if k == kind {
                    return at;
                }
                at += 4 + len as usize;
            }
            panic!("no record {kind:#x}");
        };
        // DIMENSIONS declaring four billion rows.
        let mut huge = stream.clone();
        let dims = find(0x0200) + 4;
        huge[dims + 4..dims + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(super::refusal(&huge).unwrap().contains("cells"));
        // A sheet record pointing past the stream.
        let mut lost = stream.clone();
        let sheet = find(0x0085) + 4;
        lost[sheet..sheet + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(super::refusal(&lost).unwrap().contains("where no sheet"));
        // A sheet without its end.
        let cut = stream[..stream.len() - 4].to_vec();
        assert!(super::refusal(&cut).unwrap().contains("without its end"));
    }
}
