//! Do-not-call lists: files of numbers that must never be rung.
//!
//! A list is either a CSV with a phone column (named like the campaign's `phone_column`, or
//! `phone`, 手机号, 电话, or else its first column) or plain text with one number a line (`#`
//! starts a comment). Numbers are normalised exactly like contacts, so `+86 138-0013-8000` on
//! the list matches `13800138000` in the contacts. A line that is not a number is reported and
//! skipped: it cannot match any contact stepcall would dial.

use std::path::Path;

use crate::errors::{Error, Result};
use crate::input::phone;

/// The largest do-not-call list read: ten million numbers fit in it.
const MAX_LIST_BYTES: u64 = 256 << 20;

/// The normalised numbers on the list at `path`.
pub fn read_list(path: &Path, phone_column: &str) -> Result<Vec<String>> {
    let bytes = crate::input::files::read_small(path, MAX_LIST_BYTES, "do-not-call list")?;
    // Saved from Excel like the contacts, so read in whatever encoding it came in; a byte that
    // encoding cannot explain could hide a number from the list, so the list is refused.
    let decision =
        crate::input::decoding::decide_bytes(&bytes, encoding_rs::Encoding::for_bom(&bytes), None);
    let encoding = decision.encoding;
    if let Some(at) = decision.bad_byte {
        return Err(list_error(
            path,
            &format!(
                "byte {at} of the file{} is not {} text; save the list again as UTF-8",
                bytes
                    .get(at as usize)
                    .map_or(String::new(), |b| format!(" (0x{b:02X})")),
                encoding.name()
            ),
        ));
    }
    let (text, _, _) = encoding.decode(&bytes);
    let text = text.trim_start_matches('\u{feff}');
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let looks_csv = first.contains([',', ';', '\t'])
        || phone::normalize(first).is_err() && !first.trim_start().starts_with('#');
    let mut numbers = Vec::new();
    let mut skipped = Vec::new();
    if looks_csv {
        let delimiter = [b',', b';', b'\t']
            .into_iter()
            .find(|d| first.as_bytes().contains(d))
            .unwrap_or(b',');
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| list_error(path, &e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let known = [phone_column, "phone", "手机号", "电话", "手机", "mobile"];
        let column = match known
            .iter()
            .find_map(|name| headers.iter().position(|h| h == name))
        {
            Some(column) => column,
            None if headers.len() == 1 => 0,
            // Guessing a column would silently turn the list off: refuse instead.
            None => {
                return Err(list_error(
                    path,
                    &format!(
                        "none of its columns ({}) is a phone column",
                        headers.join(", ")
                    ),
                ));
            }
        };
        for (i, record) in reader.records().enumerate() {
            let record = record.map_err(|e| list_error(path, &e.to_string()))?;
            let cell = record.get(column).unwrap_or("");
            if cell.trim().is_empty() {
                continue;
            }
            // Every number in a cell is blocked, also when the cell holds several.
            match phone::normalize_cell(cell, true) {
                Ok(n) => numbers.extend(n),
                Err(_) => skipped.push(i as u64 + 2),
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match phone::normalize_cell(line, true) {
                Ok(n) => numbers.extend(n),
                Err(_) => skipped.push(i as u64 + 1),
            }
        }
    }
    if numbers.is_empty() && !skipped.is_empty() {
        return Err(list_error(
            path,
            "it holds no phone number stepcall can read",
        ));
    }
    if !skipped.is_empty() {
        let lines: Vec<String> = skipped.iter().take(10).map(u64::to_string).collect();
        tracing::warn!(
            "{}: {} lines are not phone numbers and were skipped (lines {})",
            path.display(),
            skipped.len(),
            lines.join(", ")
        );
    }
    Ok(numbers)
}

fn list_error(path: &Path, message: &str) -> Error {
    Error::ContactsFormat {
        path: path.to_path_buf(),
        line: 0,
        message: format!("the do-not-call list cannot be read: {message}"),
        help: "use a CSV with a column named phone (or 手机号, 电话, or the campaign's phone_column), or one number a line; until then nothing is dialled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::read_list;

    #[test]
    fn a_list_whose_phone_column_cannot_be_found_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("dnc.csv");
        std::fs::write(&csv, "name,tel\n王芳,13800138000\n").unwrap();
        assert!(
            read_list(&csv, "phone").is_err(),
            "a guessed column would turn the list off"
        );
        let gbk = dir.path().join("gbk.csv");
        std::fs::write(
            &gbk,
            encoding_rs::GBK.encode("姓名,电话\n王芳,13800138000\n").0,
        )
        .unwrap();
        assert_eq!(
            read_list(&gbk, "phone").unwrap(),
            ["13800138000"],
            "a GBK list from Excel"
        );
    }

    #[test]
    fn csv_and_plain_lists_normalise_like_contacts() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("dnc.csv");
        std::fs::write(&csv, "name,手机号\n王芳,+86 138-0013-8000\n李,bad\n").unwrap();
        assert_eq!(read_list(&csv, "phone").unwrap(), ["13800138000"]);
        let plain = dir.path().join("dnc.txt");
        std::fs::write(
            &plain,
            "# opted out\n0086 13900139000\n\n010-6552 9988  # office\n",
        )
        .unwrap();
        assert_eq!(
            read_list(&plain, "phone").unwrap(),
            ["13900139000", "01065529988"]
        );
    }
}
