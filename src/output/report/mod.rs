//! `report`: one self-contained HTML file that shows how a campaign went.
//!
//! For the manager, not the engineer, and made to answer their questions at a glance: the key
//! figures (contacts, dialled, calls, answer rate, average length, cost, cost per answered
//! call), when it was made and which days the calls span, the funnel with why fewer were
//! dialled than were valid, outcomes by hour and by day with their counts printed, and the
//! people to act on: the calls that need a person (failed, uncertain, reschedules, opt-outs)
//! with their reason and transcript, a call-back list of no-answers and busies after their
//! last attempt, and each tag's people. People are named by the list's own columns, in the
//! list's order (or `report.columns`). A simulated run says so on top. Charts are inline SVG
//! drawn here; there are no scripts, fonts or anything else fetched from the network, so the
//! file opens anywhere, offline, prints cleanly, and can be mailed as it is. Every text from
//! the database (names, transcripts: what strangers said) goes through `esc`.

mod charts;
mod figures;
mod page;

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::output::status::Status;
use crate::state::Store;

pub fn html(store: &Store, campaign: &Campaign) -> Result<String> {
    let columns = person_columns(store, campaign)?;
    let status = Status::of(store, campaign)?;
    let figures = figures::Figures::gather(store, campaign)?;
    Ok(page::render(
        campaign,
        &status,
        &columns,
        &figures,
        crate::clock::now(),
    ))
}

/// The columns that say who a contact is: `report.columns`, or every column of the list in
/// its order but the phone column (the table shows the number dialled beside them).
fn person_columns(store: &Store, campaign: &Campaign) -> Result<Vec<String>> {
    let list = store.columns()?;
    let Some(chosen) = &campaign.report_columns else {
        return Ok(list
            .into_iter()
            .filter(|c| *c != campaign.phone_column)
            .collect());
    };
    // A database that imported nothing yet has no columns to check against.
    if !list.is_empty() {
        campaign.check_report_columns(&list)?;
    }
    Ok(chosen.clone())
}

/// The one HTML escape: every text from the list, a transcript or the campaign passes here.
pub(super) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
