//! The contact plan: every row of the list judged before anything is dialled.
//!
//! `validate`, `preview` and `run`'s import all walk the list through this one pipeline, so
//! they agree exactly on which rows are dialled and with which words. Opening a plan checks what
//! makes the whole campaign unrunnable (phone column, template syntax, template variables that
//! are not columns, columns that clash with export columns); each row then gets a `Verdict`:
//! valid (normalised number and rendered requirement), invalid (with the reason) or a duplicate
//! of an earlier row.

use std::collections::{HashMap, VecDeque};

use crate::campaign::{Campaign, MultiPhone};
use crate::contacts::ContactReader;
use crate::errors::{Error, Result};
use crate::export::EXPORT_COLUMNS;
use crate::phone;
use crate::template::Template;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Valid { phone: String, requirement: String },
    Invalid { reason: String },
    Duplicate { phone: String, first_line: u64 },
}

#[derive(Debug, Clone)]
pub struct PlannedRow {
    pub line: u64,
    pub cells: Vec<String>,
    /// Identifies this row across imports: its content and how often that content came before.
    pub fingerprint: i64,
    pub verdict: Verdict,
}

pub struct Plan {
    reader: ContactReader,
    template: Template,
    phone_index: usize,
    first_line_of: HashMap<String, u64>,
    occurrences: HashMap<u64, u32>,
    split: bool,
    /// The further contacts of a row split into several numbers.
    queued: VecDeque<PlannedRow>,
}

impl Plan {
    pub fn open(campaign: &Campaign) -> Result<Plan> {
        let reader = ContactReader::open_with(&campaign.contacts, &campaign.read)?;
        let headers = reader.headers();
        let available = headers.join(", ");
        let phone_index = headers
            .iter()
            .position(|h| *h == campaign.phone_column)
            .ok_or_else(|| Error::MissingPhoneColumn {
                path: campaign.contacts.clone(),
                column: campaign.phone_column.clone(),
                available: available.clone(),
            })?;
        if let Some(clash) = headers
            .iter()
            .find(|h| EXPORT_COLUMNS.contains(&h.as_str()))
        {
            return Err(Error::ColumnClash {
                contacts: campaign.contacts.clone(),
                column: clash.clone(),
            });
        }
        let template = Template::compile(&campaign.user_requirement).map_err(|message| {
            Error::TemplateSyntax {
                path: campaign.path.clone(),
                message,
            }
        })?;
        let unknown: Vec<String> = template
            .variables()
            .into_iter()
            .filter(|v| !headers.contains(v))
            .collect();
        if !unknown.is_empty() {
            let verb = if unknown.len() == 1 { "is" } else { "are" };
            return Err(Error::TemplateUnknownVariables {
                path: campaign.path.clone(),
                contacts: campaign.contacts.clone(),
                variables: unknown
                    .iter()
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                verb,
                available,
            });
        }
        Ok(Plan {
            reader,
            template,
            phone_index,
            first_line_of: HashMap::new(),
            occurrences: HashMap::new(),
            split: campaign.multi_phone == MultiPhone::Split,
            queued: VecDeque::new(),
        })
    }

    pub fn headers(&self) -> &[String] {
        self.reader.headers()
    }

    /// How the list was read (encoding, delimiter or sheet).
    pub fn format(&self) -> &crate::contacts::Format {
        self.reader.format()
    }

    /// Judges the next row; `None` at the end of the list.
    pub fn next_row(&mut self) -> Result<Option<PlannedRow>> {
        if let Some(queued) = self.queued.pop_front() {
            return Ok(Some(queued));
        }
        let Some(row) = self.reader.next_row()? else {
            return Ok(None);
        };
        let base = fingerprint(&mut self.occurrences, &row.cells);
        let numbers = match row.problem.clone() {
            Some(problem) => Err(problem),
            None => phone::normalize_cell(&row.cells[self.phone_index], self.split),
        };
        let numbers = match numbers {
            Ok(numbers) => numbers,
            Err(reason) => {
                let verdict = Verdict::Invalid { reason };
                return Ok(Some(PlannedRow {
                    line: row.line,
                    cells: row.cells,
                    fingerprint: base,
                    verdict,
                }));
            }
        };
        // With `multi_phone: split`, one contact per number, each with its own identity.
        for (part, number) in numbers.into_iter().enumerate() {
            let verdict = self.judge(number, row.line, &row.cells);
            let fingerprint = part_fingerprint(base, part);
            self.queued.push_back(PlannedRow {
                line: row.line,
                cells: row.cells.clone(),
                fingerprint,
                verdict,
            });
        }
        Ok(self.queued.pop_front())
    }

    fn judge(&mut self, number: String, line: u64, cells: &[String]) -> Verdict {
        if let Some(&first_line) = self.first_line_of.get(&number) {
            return Verdict::Duplicate {
                phone: number,
                first_line,
            };
        }
        match self.template.render(self.reader.headers(), cells) {
            Ok(requirement) => {
                self.first_line_of.insert(number.clone(), line);
                Verdict::Valid {
                    phone: number,
                    requirement,
                }
            }
            Err(reason) => Verdict::Invalid { reason },
        }
    }
}

/// The fingerprints of every row of the campaign's list, without judging the rows: what a
/// re-import compares the database with, to find contacts no longer on the list.
pub fn fingerprints(campaign: &Campaign) -> Result<Vec<i64>> {
    let mut reader = ContactReader::open_with(&campaign.contacts, &campaign.read)?;
    let phone_index = reader
        .headers()
        .iter()
        .position(|h| *h == campaign.phone_column);
    let split = campaign.multi_phone == MultiPhone::Split;
    let mut occurrences = HashMap::new();
    let mut out = Vec::new();
    while let Some(row) = reader.next_row()? {
        let base = fingerprint(&mut occurrences, &row.cells);
        let parts = match phone_index {
            Some(i) if split && row.problem.is_none() => {
                phone::normalize_cell(&row.cells[i], true).map_or(1, |n| n.len())
            }
            _ => 1,
        };
        out.extend((0..parts.max(1)).map(|part| part_fingerprint(base, part)));
    }
    Ok(out)
}

/// The identity of the `part`-th number of a row (the row's own for the first).
fn part_fingerprint(base: i64, part: usize) -> i64 {
    if part == 0 {
        base
    } else {
        fnv1a(
            base.to_le_bytes()
                .into_iter()
                .chain((part as u64).to_le_bytes()),
        ) as i64
    }
}

/// A row's identity across imports: its content, and how often that content came before.
fn fingerprint(occurrences: &mut HashMap<u64, u32>, cells: &[String]) -> i64 {
    let content = fnv1a(
        cells
            .iter()
            .flat_map(|c| c.as_bytes().iter().copied().chain([0x1f])),
    );
    let seen = occurrences.entry(content).or_insert(0);
    *seen += 1;
    fnv1a(content.to_le_bytes().into_iter().chain(seen.to_le_bytes())) as i64
}

/// FNV-1a, 64 bits: a hash that is stable across Rust versions, for values stored on disk.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
