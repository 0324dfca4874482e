//! `validate` and `preview`: the whole list judged, nothing dialled, no network.
//!
//! Both walk the same `Plan` that `run` imports, so what `validate` accepts is what `run` dials
//! and what `preview` prints is byte for byte the requirement that is sent. `validate` is made
//! for fixing a list: a summary by reason, the first problems with file, row and column, and
//! the rejected rows written back (`--invalid-out`) in the list's own encoding and delimiter,
//! with a `reason` column, so they can be fixed in Excel and fed back.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};
use crate::input::contacts::Format;
use crate::input::plan::{Plan, Verdict};

/// A row that will not be dialled, and why.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: u64,
    pub column: String,
    pub message: String,
    /// Short label for the summary by reason.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub duplicates: u64,
    /// Valid rows whose number is on one of the campaign's do-not-call lists.
    pub suppressed: u64,
    /// Every row that will not be dialled, in list order.
    pub problems: Vec<Problem>,
    /// How the list was read.
    pub format: String,
    /// The first text column (not the phone column) and its first values as decoded, so a
    /// person sees at once whether 王芳 reads as 王芳.
    pub sample: Option<(String, Vec<String>)>,
}

impl Validation {
    /// Invalid rows counted by kind of problem, most frequent first.
    pub fn by_reason(&self) -> Vec<(&'static str, u64)> {
        let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
        for p in self.problems.iter().filter(|p| p.kind != "duplicate") {
            *counts.entry(p.kind).or_default() += 1;
        }
        let mut counts: Vec<_> = counts.into_iter().collect();
        counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        counts
    }
}

/// Judges every row; with `invalid_out`, writes the invalid rows there with their reason.
pub fn validate(campaign: &Campaign, invalid_out: Option<&Path>) -> Result<Validation> {
    let mut plan = Plan::open(campaign)?;
    let mut listed: HashSet<String> = HashSet::new();
    for list in &campaign.suppress {
        listed.extend(crate::input::suppress::read_list(
            list,
            &campaign.phone_column,
        )?);
    }
    let mut v = Validation {
        format: plan.format().describe(),
        ..Validation::default()
    };
    let headers = plan.headers().to_vec();
    let mut rejected: Vec<Vec<String>> = Vec::new();
    let mut sample: Vec<Vec<String>> = Vec::new();
    while let Some(row) = plan.next_row()? {
        v.rows += 1;
        if sample.len() < 3 {
            sample.push(row.cells.clone());
        }
        match row.verdict {
            Verdict::Valid { phone, .. } => {
                v.valid += 1;
                if listed.contains(&phone) {
                    v.suppressed += 1;
                }
            }
            Verdict::Invalid { reason, .. } => {
                v.invalid += 1;
                let kind = kind_of(&reason);
                let column = match kind {
                    "empty requirement" | "requirement too long" | "template error" => {
                        "user_requirement".to_string()
                    }
                    "ragged row" | "cell too long" => "-".to_string(),
                    _ => campaign.phone_column.clone(),
                };
                let mut cells = row.cells.clone();
                cells.push(reason.clone());
                rejected.push(cells);
                v.problems.push(Problem {
                    line: row.line,
                    column,
                    message: reason,
                    kind,
                });
            }
            Verdict::Duplicate { phone, first_line } => {
                v.duplicates += 1;
                v.problems.push(Problem {
                    line: row.line,
                    column: campaign.phone_column.clone(),
                    message: format!("duplicate: {phone} is already on row {first_line}; it will not be dialled twice"),
                    kind: "duplicate",
                });
            }
        }
    }
    v.sample = first_text_column(&headers, &campaign.phone_column, &sample);
    if let Some(out) = invalid_out {
        write_rejected(out, plan.format(), &headers, &rejected)?;
    }
    Ok(v)
}

/// The first column other than the phone column whose first values hold letters, with them.
fn first_text_column(
    headers: &[String],
    phone_column: &str,
    rows: &[Vec<String>],
) -> Option<(String, Vec<String>)> {
    headers.iter().enumerate().find_map(|(i, h)| {
        let values: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get(i))
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.chars().take(24).collect())
            .collect();
        let text = values.iter().any(|v| v.chars().any(char::is_alphabetic));
        (h != phone_column && text).then(|| (h.clone(), values))
    })
}

fn kind_of(reason: &str) -> &'static str {
    let r = reason.to_lowercase();
    [
        ("rendered user_requirement is empty", "empty requirement"),
        ("limits.max_requirement_chars", "requirement too long"),
        ("scientific notation", "scientific notation"),
        ("several numbers", "several numbers in one cell"),
        ("extension", "extension"),
        ("is empty", "empty number"),
        ("mainland china", "not a China number"),
        ("cells but the header", "ragged row"),
        ("longer than", "cell too long"),
        ("template", "template error"),
    ]
    .iter()
    .find(|(needle, _)| r.contains(needle))
    .map_or("not a valid number", |(_, kind)| kind)
}

/// Writes the rejected rows as the list was read: same encoding (and BOM), same delimiter; a
/// workbook's rows go to a UTF-8 CSV with a BOM, which Excel opens correctly.
fn write_rejected(
    path: &Path,
    format: &Format,
    headers: &[String],
    rows: &[Vec<String>],
) -> Result<()> {
    let write_err = |cause| Error::WriteFile {
        path: path.to_path_buf(),
        cause,
    };
    let mut csv = csv::WriterBuilder::new()
        .delimiter(format.delimiter)
        .from_writer(Vec::new());
    let mut header = headers.to_vec();
    header.push("reason".into());
    for record in std::iter::once(&header).chain(rows) {
        csv.write_record(record)
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?;
    }
    let text = String::from_utf8(
        csv.into_inner()
            .map_err(|e| write_err(std::io::Error::other(e.to_string())))?,
    )
    .expect("the csv writer writes the UTF-8 it was given");
    let encoding = format.encoding.unwrap_or(encoding_rs::UTF_8);
    let bytes: Vec<u8> = if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        let le = encoding == encoding_rs::UTF_16LE;
        let mut out = if le {
            vec![0xff, 0xfe]
        } else {
            vec![0xfe, 0xff]
        };
        for unit in text.encode_utf16() {
            out.extend(if le {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        out
    } else if encoding == encoding_rs::UTF_8 {
        let bom = format.bom || format.encoding.is_none();
        let mut out = if bom {
            vec![0xef, 0xbb, 0xbf]
        } else {
            Vec::new()
        };
        out.extend_from_slice(text.as_bytes());
        out
    } else {
        match encoding.encode(&text) {
            (bytes, _, false) => bytes.into_owned(),
            // A name the list's encoding cannot hold would come back as `&#...;`: write UTF-8
            // with a BOM instead, which Excel also opens.
            (_, _, true) => {
                tracing::warn!(
                    "{}: some rejected rows hold characters {} cannot encode; written as UTF-8 instead",
                    path.display(),
                    encoding.name()
                );
                [&[0xef, 0xbb, 0xbf][..], text.as_bytes()].concat()
            }
        }
    };
    let mut file = crate::input::files::create_private(path).map_err(write_err)?;
    file.write_all(&bytes).map_err(write_err)
}

/// One rendered requirement, as `preview` shows it.
#[derive(Debug, Clone)]
pub struct Preview {
    pub line: u64,
    pub phone: String,
    pub requirement: String,
}

/// The first `count` contacts that would be dialled.
pub fn preview(campaign: &Campaign, count: usize) -> Result<Vec<Preview>> {
    let mut plan = Plan::open(campaign)?;
    let mut out = Vec::new();
    while out.len() < count {
        let Some(row) = plan.next_row()? else { break };
        if let Verdict::Valid { phone, requirement } = row.verdict {
            out.push(Preview {
                line: row.line,
                phone,
                requirement,
            });
        }
    }
    Ok(out)
}
