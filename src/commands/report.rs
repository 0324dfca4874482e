//! `report`: the HTML report, written private (it holds names and transcripts).

use std::path::Path;

use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};
use crate::exit;
use crate::state::Store;

/// Writes the report of `campaign` to `output`.
pub(super) fn report(campaign: &Campaign, output: &Path) -> Result<u8> {
    let store = Store::open(&campaign.state_path, false)?;
    let html = crate::output::report::html(&store, campaign)?;
    crate::input::files::write_private(output, html.as_bytes()).map_err(|cause| {
        Error::WriteFile {
            path: output.to_path_buf(),
            cause,
        }
    })?;
    eprintln!("wrote {}", output.display());
    Ok(exit::SUCCESS)
}
