//! `validate` and `preview`: the list judged and shown, nothing dialled.

use std::path::Path;

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::exit;
use crate::input::validate;

pub(super) fn validate(
    campaign: &Campaign,
    strict: bool,
    invalid_out: Option<&Path>,
) -> Result<u8> {
    let v = validate::validate(campaign, invalid_out)?;
    let contacts = campaign.contacts.display();
    let verdict = match (v.invalid, strict) {
        (0, _) => "can run",
        (_, false) => "can run, without its invalid rows",
        (_, true) => "cannot run with --strict: some rows are invalid",
    };
    println!(
        "{}: campaign `{}` {verdict}",
        campaign.path.display(),
        campaign.name
    );
    println!("  {contacts}: {}", v.format);
    if let Some((column, values)) = &v.sample {
        println!("  column `{column}` reads: {}", values.join(", "));
    }
    println!(
        "  {} rows · {} valid · {} invalid · {} duplicate · {} suppressed",
        v.rows, v.valid, v.invalid, v.duplicates, v.suppressed
    );
    let reasons = v.by_reason();
    if !reasons.is_empty() {
        let parts: Vec<String> = reasons
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        println!("  invalid by reason: {}", parts.join(" · "));
    }
    const SHOWN: usize = 20;
    if !v.problems.is_empty() {
        println!("  rows that will not be dialled:");
        for p in v.problems.iter().take(SHOWN) {
            println!(
                "    {contacts}, row {}, column {}: {}",
                p.line, p.column, p.message
            );
        }
        if v.problems.len() > SHOWN {
            println!("    ... and {} more", v.problems.len() - SHOWN);
        }
    }
    if let Some(out) = invalid_out {
        println!(
            "  {} invalid rows written to {} (fix them and add them back to the list)",
            v.invalid,
            out.display()
        );
    }
    Ok(match (v.invalid, strict) {
        (0, _) => exit::SUCCESS,
        (_, false) => exit::SOME_ROWS_INVALID,
        (_, true) => exit::INVALID_INPUT,
    })
}

pub(super) fn preview(campaign: &Campaign, count: usize) -> Result<u8> {
    let previews = validate::preview(campaign, count)?;
    if previews.is_empty() {
        println!(
            "no contact in {} would be dialled",
            campaign.contacts.display()
        );
    }
    for (i, p) in previews.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("── row {} · {} ──", p.line, p.phone);
        println!("{}", p.requirement);
    }
    Ok(exit::SUCCESS)
}
