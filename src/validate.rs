//! `validate` and `preview`: the whole list judged, nothing dialled, no network.
//!
//! Both walk the same `Plan` that `run` imports, so what `validate` accepts is what `run` dials
//! and what `preview` prints is byte for byte the requirement that is sent.

use crate::campaign::Campaign;
use crate::errors::Result;
use crate::plan::{Plan, Verdict};

/// A row that will not be dialled, and why.
#[derive(Debug, Clone)]
pub struct Problem {
    pub line: u64,
    pub column: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub rows: u64,
    pub valid: u64,
    pub invalid: u64,
    pub duplicates: u64,
    /// Every row that will not be dialled, in list order.
    pub problems: Vec<Problem>,
}

pub fn validate(campaign: &Campaign) -> Result<Validation> {
    let mut plan = Plan::open(campaign)?;
    let mut v = Validation::default();
    while let Some(row) = plan.next_row()? {
        v.rows += 1;
        match row.verdict {
            Verdict::Valid { .. } => v.valid += 1,
            Verdict::Invalid { reason } => {
                v.invalid += 1;
                let column = if reason.contains("user_requirement") || reason.contains("template") {
                    "user_requirement".to_string()
                } else {
                    campaign.phone_column.clone()
                };
                v.problems.push(Problem {
                    line: row.line,
                    column,
                    message: reason,
                });
            }
            Verdict::Duplicate { phone, first_line } => {
                v.duplicates += 1;
                v.problems.push(Problem {
                    line: row.line,
                    column: campaign.phone_column.clone(),
                    message: format!("duplicate: {phone} is already on row {first_line}; it will not be dialled twice"),
                });
            }
        }
    }
    Ok(v)
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
