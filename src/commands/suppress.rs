//! `suppress`: numbers added to a campaign's do-not-call list by hand.

use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};
use crate::exit;
use crate::state::Store;

pub(super) fn suppress(campaign: &Campaign, raw: &[String]) -> Result<u8> {
    let phones = raw
        .iter()
        .map(|p| {
            crate::input::phone::normalize(p).map_err(|reason| Error::Usage {
                message: format!("{p:?} cannot be suppressed: {reason}"),
                help: "give numbers as they would be dialled, e.g. 13800138000".into(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let mut store = Store::open(&campaign.state_path, true)?;
    let added = store.suppress(&phones, "stepcall suppress")?;
    println!(
        "{} added to the do-not-call list of `{}` ({} already on it)",
        crate::state::numbers(added),
        campaign.name,
        phones.len() as u64 - added
    );
    Ok(exit::SUCCESS)
}
