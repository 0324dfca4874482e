//! `retag`: every transcript tagged again under the campaign's current rules.

use crate::config::campaign::Campaign;
use crate::errors::Result;
use crate::exit;
use crate::state::Store;

/// Tags every call with a transcript again; changes are owed to the webhook like results.
pub(super) fn retag(campaign: &Campaign) -> Result<u8> {
    let mut store = Store::open(&campaign.state_path, false)?;
    if campaign.webhook.is_some() {
        // Tag changes are owed to the CRM too; the next run delivers them.
        store.enable_outbox();
    }
    let rules = campaign.outcomes.clone();
    let changed = store.retag(|transcript| crate::config::tags::tags(&rules, transcript))?;
    println!(
        "{changed} calls got new tags under the rules of {}",
        campaign.path.display()
    );
    Ok(exit::SUCCESS)
}
