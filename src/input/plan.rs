//! The contact plan: every row of the list judged before anything is dialled.
//!
//! `validate`, `preview` and `run`'s import all walk the list through this one pipeline, so
//! they agree exactly on which rows are dialled and with which words. Opening a plan checks what
//! makes the whole campaign unrunnable (phone column, template syntax, template variables that
//! are not columns, columns that clash with export columns); each row then gets a `Verdict`:
//! valid (normalised number and rendered requirement), invalid (with the reason) or a duplicate
//! of an earlier row.

use std::collections::{HashMap, VecDeque};

use crate::config::campaign::{Campaign, MultiPhone};
use crate::errors::{Error, Result};
use crate::fnv::IntegerKeys;
use crate::input::contacts::ContactReader;
use crate::input::identity::{Occurrences, fingerprint, identities, numbers_of};
use crate::input::template::{ROW, RenderError, Template};
use crate::state::machine::RESULT_COLUMNS;

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Valid {
        phone: String,
        requirement: String,
    },
    /// `template`: the row is invalid only because of the template (its number is good), so a
    /// changed template judges it again.
    Invalid {
        reason: String,
        template: bool,
    },
    Duplicate {
        phone: String,
        first_line: u64,
    },
}

/// Rows whose rendering ran far past the limit before the template itself is refused: each
/// such row costs real time and memory, and a template that does it this often is wrong.
const MAX_RUNAWAY_ROWS: u64 = 20;

/// How the template has fared over the rows so far.
#[derive(Debug, Default)]
struct TemplateRecord {
    rendered: u64,
    failed: u64,
    runaway: u64,
    /// The first failure: its row and reason.
    first: Option<(u64, String)>,
}

#[derive(Debug, Clone)]
pub struct PlannedRow {
    pub line: u64,
    pub cells: Vec<String>,
    /// Identifies this row across imports: its content and how often that content came before.
    pub fingerprint: i64,
    pub verdict: Verdict,
}

/// The first header named like a phone column, in the words Chinese and English lists use.
fn phone_like(headers: &[String]) -> Option<&str> {
    const WORDS: [&str; 8] = [
        "手机",
        "电话",
        "号码",
        "联系方式",
        "phone",
        "mobile",
        "tel",
        "cell",
    ];
    headers
        .iter()
        .find(|h| {
            let h = h.to_lowercase();
            WORDS.iter().any(|w| h.contains(w))
        })
        .map(String::as_str)
}

pub struct Plan {
    reader: ContactReader,
    template: Template,
    phone_index: usize,
    first_line_of: FirstLines,
    occurrences: Occurrences,
    split: bool,
    /// The further contacts of a row split into several numbers.
    queued: VecDeque<PlannedRow>,
    template_record: TemplateRecord,
    /// The campaign file, for errors about its template.
    campaign_path: std::path::PathBuf,
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
                help: match phone_like(headers) {
                    Some(h) => format!(
                        "the column `{h}` looks like phones: put `phone_column: {h}` in {}",
                        campaign.path.display()
                    ),
                    None => "set `phone_column:` in the campaign file to one of the columns above"
                        .into(),
                },
            })?;
        if let Some(clash) = headers
            .iter()
            .find(|h| RESULT_COLUMNS.contains(&h.as_str()))
        {
            return Err(Error::ColumnClash {
                contacts: campaign.contacts.clone(),
                column: clash.clone(),
            });
        }
        campaign.check_report_columns(headers)?;
        let template = Template::compile(
            &campaign.user_requirement,
            campaign.limits.max_requirement_chars,
        )
        .map_err(|message| Error::TemplateSyntax {
            path: campaign.path.clone(),
            message,
        })?;
        let used: Vec<String> = template
            .variables()
            .into_iter()
            .chain([campaign.phone_column.clone()])
            .collect();
        let through_row = template.uses_row() && !headers.iter().any(|h| h == ROW);
        if let Some(twice) = reader
            .duplicated()
            .into_iter()
            .find(|d| through_row || used.iter().any(|u| u == d))
        {
            return Err(Error::ContactsFormat {
                path: campaign.contacts.clone(),
                line: 1,
                message: format!(
                    "the column name `{twice}` appears twice in the header, and the campaign uses it (as the phone column or in the template, by name or through `row`)"
                ),
                help: "rename one of the two columns so that each name says which column it means"
                    .to_string(),
            });
        }
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
            first_line_of: FirstLines::default(),
            occurrences: Occurrences::default(),
            split: campaign.multi_phone == MultiPhone::Split,
            queued: VecDeque::new(),
            template_record: TemplateRecord::default(),
            campaign_path: campaign.path.clone(),
        })
    }

    pub fn headers(&self) -> &[String] {
        self.reader.headers()
    }

    /// How the list was read (encoding, delimiter or sheet).
    pub fn format(&self) -> &crate::input::contacts::Format {
        self.reader.format()
    }

    /// Judges the next row; `None` at the end of the list.
    pub fn next_row(&mut self) -> Result<Option<PlannedRow>> {
        if let Some(queued) = self.queued.pop_front() {
            return Ok(Some(queued));
        }
        let Some(row) = self.reader.next_row()? else {
            let t = &self.template_record;
            if let (0, Some((line, reason))) = (t.rendered, &t.first) {
                return Err(Error::TemplateUnusable {
                    path: self.campaign_path.clone(),
                    message: format!(
                        "it fails on every row that reached it ({} rows; row {line}: {reason})",
                        t.failed
                    ),
                    help: "fix the template: nothing would be dialled with it",
                });
            }
            return Ok(None);
        };
        let base = fingerprint(&mut self.occurrences, &row.cells);
        let numbers = numbers_of(&row, self.phone_index, self.split);
        let ids = identities(base, &numbers);
        let numbers = match numbers {
            Ok(numbers) => numbers,
            Err(reason) => {
                let verdict = Verdict::Invalid {
                    reason,
                    template: false,
                };
                return Ok(Some(PlannedRow {
                    line: row.line,
                    cells: row.cells,
                    fingerprint: base,
                    verdict,
                }));
            }
        };
        // With `multi_phone: split`, one contact per number, each with its own identity.
        let last = numbers.len().saturating_sub(1);
        let mut cells = Some(row.cells);
        for ((part, number), fingerprint) in numbers.into_iter().enumerate().zip(ids) {
            let cells = if part == last {
                cells.take().unwrap_or_default()
            } else {
                cells.clone().unwrap_or_default()
            };
            let verdict = self.judge(number, row.line, &cells)?;
            self.queued.push_back(PlannedRow {
                line: row.line,
                cells,
                fingerprint,
                verdict,
            });
        }
        Ok(self.queued.pop_front())
    }

    fn judge(&mut self, number: String, line: u64, cells: &[String]) -> Result<Verdict> {
        if let Some(first_line) = self.first_line_of.get(&number) {
            return Ok(Verdict::Duplicate {
                phone: number,
                first_line,
            });
        }
        let (reason, runaway) = match self.template.render(self.reader.headers(), cells) {
            Ok(requirement) => {
                self.template_record.rendered += 1;
                self.first_line_of.insert(&number, line);
                return Ok(Verdict::Valid {
                    phone: number,
                    requirement,
                });
            }
            Err(RenderError::Template { message, help }) => {
                return Err(Error::TemplateUnusable {
                    path: self.campaign_path.clone(),
                    message: format!("{message} (found rendering row {line})"),
                    help,
                });
            }
            Err(RenderError::Row(reason)) => (reason, false),
            Err(RenderError::Runaway(reason)) => (reason, true),
        };
        let t = &mut self.template_record;
        t.failed += 1;
        t.runaway += u64::from(runaway);
        if t.first.is_none() {
            t.first = Some((line, reason.clone()));
        }
        if t.runaway >= MAX_RUNAWAY_ROWS {
            return Err(Error::TemplateUnusable {
                path: self.campaign_path.clone(),
                message: format!(
                    "its result runs far past the limit on {MAX_RUNAWAY_ROWS} rows (row {line}: {reason})"
                ),
                help: "make the template shorter, or raise limits.max_requirement_chars if calls really need that much text",
            });
        }
        Ok(Verdict::Invalid {
            reason,
            template: true,
        })
    }
}

/// The line where each number first appeared. A normalised number is at most 17 digits, so it
/// is kept as an integer (its length in the top bits keeps leading zeros apart): a million
/// numbers take a quarter of the memory their strings would.
#[derive(Default)]
struct FirstLines {
    digits: HashMap<u64, u64, IntegerKeys>,
    /// Anything that is not all digits (never produced today, but never lost either).
    other: HashMap<String, u64>,
}

impl FirstLines {
    fn key(number: &str) -> Option<u64> {
        if number.is_empty() || number.len() > 17 || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value = number.parse::<u64>().ok()?;
        Some((number.len() as u64) << 59 | value)
    }

    fn get(&self, number: &str) -> Option<u64> {
        match FirstLines::key(number) {
            Some(k) => self.digits.get(&k).copied(),
            None => self.other.get(number).copied(),
        }
    }

    fn insert(&mut self, number: &str, line: u64) {
        match FirstLines::key(number) {
            Some(k) => self.digits.insert(k, line),
            None => self.other.insert(number.to_string(), line),
        };
    }
}

/// A judged row as the import stores it. Its strings (the cells already turned into the JSON
/// object the database keeps) are in its batch's text.
pub struct Judged {
    pub line: u64,
    pub fingerprint: i64,
    pub verdict: Judgement,
    pub cells: Span,
}

/// Where a string of a `Batch` is in the batch's text (`Batch::text`).
pub type Span = std::ops::Range<usize>;

/// A `Verdict` whose strings are in a batch's text.
pub enum Judgement {
    Valid { phone: Span, requirement: Span },
    Invalid { reason: Span, template: bool },
    Duplicate { phone: Span, first_line: u64 },
}

/// Rows judged per message between the threads: enough to make the handover cheap.
const JUDGED_BATCH: usize = 1024;
/// The largest text buffer a batch keeps for its next rows (about four times the usual).
const MAX_REUSED_TEXT: usize = 1 << 20;

/// Rows judged in list order; an error (a row the reader could not read) ends them.
///
/// The strings of all its rows are in one buffer, and the batch goes back to the judging
/// thread to be filled again: a string per row, freed on the other thread once written, cost
/// the judging thread a quarter of its time in the allocator.
pub struct Batch {
    pub rows: Vec<Judged>,
    text: String,
    pub error: Option<Error>,
    /// The list ends here. Without it, a closed channel means the judging thread died, and the
    /// list must not be taken as complete.
    pub last: bool,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            rows: Vec::with_capacity(JUDGED_BATCH),
            text: String::with_capacity(JUDGED_BATCH * 256),
            error: None,
            last: false,
        }
    }

    pub fn text(&self, span: &Span) -> &str {
        &self.text[span.clone()]
    }

    fn add(&mut self, text: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(text);
        start..self.text.len()
    }

    fn push(&mut self, row: PlannedRow, headers: &[String], order: &[usize]) {
        let start = self.text.len();
        push_cells_json(&mut self.text, headers, order, &row.cells);
        let cells = start..self.text.len();
        let verdict = match row.verdict {
            Verdict::Valid { phone, requirement } => Judgement::Valid {
                phone: self.add(&phone),
                requirement: self.add(&requirement),
            },
            Verdict::Invalid { reason, template } => Judgement::Invalid {
                reason: self.add(&reason),
                template,
            },
            Verdict::Duplicate { phone, first_line } => Judgement::Duplicate {
                phone: self.add(&phone),
                first_line,
            },
        };
        self.rows.push(Judged {
            line: row.line,
            fingerprint: row.fingerprint,
            verdict,
            cells,
        });
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.text.clear();
        self.error = None;
        self.last = false;
    }
}

/// The rows of a plan, judged on a thread of their own, so that reading, normalising and
/// rendering (one core) overlap with writing the database (another). Batches that the writer
/// is done with go back (`done_with`) to be filled again.
pub struct JudgedRows {
    batches: std::sync::mpsc::Receiver<Batch>,
    spent: std::sync::mpsc::Sender<Batch>,
}

impl JudgedRows {
    pub fn next_batch(&self) -> Option<Batch> {
        self.batches.recv().ok()
    }

    pub fn done_with(&self, batch: Batch) {
        // After the last batch the judging thread is gone; then this one frees it.
        let _ = self.spent.send(batch);
    }
}

pub fn judge_in_background(plan: Plan) -> JudgedRows {
    let (batches, inbox) = std::sync::mpsc::sync_channel::<Batch>(8);
    let (spent, returned) = std::sync::mpsc::channel::<Batch>();
    std::thread::Builder::new()
        .name("stepcall-judge".into())
        .spawn(move || {
            let mut plan = plan;
            let headers = plan.headers().to_vec();
            let mut order: Vec<usize> = (0..headers.len()).collect();
            order.sort_by(|&a, &b| headers[a].cmp(&headers[b]));
            let mut batch = Batch::new();
            loop {
                match plan.next_row() {
                    Ok(Some(row)) => batch.push(row, &headers, &order),
                    Ok(None) => batch.last = true,
                    Err(e) => {
                        batch.error = Some(e);
                        batch.last = true;
                    }
                }
                if batch.last || batch.rows.len() == JUDGED_BATCH {
                    let last = batch.last;
                    if batches.send(batch).is_err() || last {
                        return;
                    }
                    batch = match returned.try_recv() {
                        // A batch of unusually long rows is let go rather than kept.
                        Ok(mut spent) if spent.text.capacity() <= MAX_REUSED_TEXT => {
                            spent.clear();
                            spent
                        }
                        _ => Batch::new(),
                    };
                }
            }
        })
        .expect("starting the thread that judges the rows");
    JudgedRows {
        batches: inbox,
        spent,
    }
}

/// The cells as a JSON object keyed by column name, keys in sorted order: what
/// `serde_json::to_string` of a `BTreeMap` writes, byte for byte (a test holds them together).
/// Written by hand, because serialising through serde was a third of the time of judging a row.
fn push_cells_json(out: &mut String, headers: &[String], order: &[usize], cells: &[String]) {
    out.push('{');
    for (n, (key, value)) in order
        .iter()
        .filter_map(|&i| Some((&headers[i], cells.get(i)?)))
        .enumerate()
    {
        if n > 0 {
            out.push(',');
        }
        push_json_str(out, key);
        out.push(':');
        push_json_str(out, value);
    }
    out.push('}');
}

/// `text` as a JSON string; text that needs no escape (nearly all of it) is copied as it is.
fn push_json_str(out: &mut String, text: &str) {
    if text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&serde_json::to_string(text).expect("strings serialise"));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
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
    let mut occurrences = Occurrences::default();
    let mut out = Vec::new();
    while let Some(row) = reader.next_row()? {
        let base = fingerprint(&mut occurrences, &row.cells);
        // Without `split` a row is one contact whatever its cell holds: its numbers are not
        // read, which is most of the time of this pass.
        let numbers = match phone_index {
            Some(i) if split => numbers_of(&row, i, split),
            _ => Ok(Vec::new()),
        };
        out.extend(identities(base, &numbers));
    }
    Ok(out)
}

/// What the import of this campaign's list depends on: the list's bytes, how it is read, the
/// phone column and the template, and this build (whose rules judge the rows). A run whose
/// digest matches the last import's skips the import, so resuming a million-row campaign
/// starts dialling at once. Any difference imports again, which is always safe.
pub fn list_digest(campaign: &Campaign) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let path = &campaign.contacts;
    let read_err = |cause| Error::ReadFile {
        path: path.clone(),
        cause,
    };
    let mut file = crate::input::files::open_regular(path)?;
    let mut hash = Sha256::new();
    let settings = format!(
        "{}\0{:?}\0{:?}\0{}\0{}\0",
        env!("CARGO_PKG_VERSION"),
        campaign.read,
        campaign.multi_phone,
        campaign.phone_column,
        campaign.user_requirement
    );
    hash.update(settings.as_bytes());
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(format!("{:x}", hash.finalize()))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        /// The database has always held the cells as serde_json writes a sorted map.
        #[test]
        fn cells_are_stored_as_serde_json_writes_them(
            headers in proptest::collection::hash_set("[a-z姓名\"\\\\\n\t\u{1}/ ]{0,5}", 0..6),
            cells in proptest::collection::vec("[a-z王\"\\\\\n\r\u{7f}\u{1f}/ ]{0,6}", 0..6),
        ) {
            // Column names are unique (the reader refuses a name twice), in no particular order.
            let headers: Vec<String> = headers.into_iter().collect();
            let mut order: Vec<usize> = (0..headers.len()).collect();
            order.sort_by(|&a, &b| headers[a].cmp(&headers[b]));
            let map: std::collections::BTreeMap<&String, &String> =
                headers.iter().zip(cells.iter()).collect();
            let mut json = String::new();
            super::push_cells_json(&mut json, &headers, &order, &cells);
            prop_assert_eq!(
                json,
                serde_json::to_string(&map).unwrap()
            );
        }
    }
}
