//! `export`: one row per contact, to stdout or to a file renamed into place whole.

use std::io::Write;
use std::path::Path;

use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};
use crate::exit;
use crate::output::export::ExportOptions;
use crate::state::Store;

pub(super) fn export(
    campaign: &Campaign,
    output: Option<&Path>,
    options: &ExportOptions,
) -> Result<u8> {
    let store = Store::open(&campaign.state_path, false)?;
    match output.filter(|p| *p != Path::new("-")) {
        None => {
            let stdout = std::io::stdout();
            crate::output::export::write(&store, stdout.lock(), options)?;
        }
        Some(path) => {
            // Written beside the target and renamed into place: a crash never leaves half a file.
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = std::path::PathBuf::from(partial);
            let write_err = |source| Error::WriteFile {
                path: path.to_path_buf(),
                cause: source,
            };
            let file = crate::input::files::create_private(&partial).map_err(write_err)?;
            let mut out = std::io::BufWriter::new(file);
            let n = crate::output::export::write(&store, &mut out, options)?;
            out.flush().map_err(write_err)?;
            drop(out);
            std::fs::rename(&partial, path).map_err(write_err)?;
            let simulated = store.mode()? == Some(crate::state::Mode::Simulated);
            eprintln!(
                "wrote {n} contacts to {}{}",
                path.display(),
                crate::output::status::rehearsal_mark(simulated)
            );
        }
    }
    Ok(exit::SUCCESS)
}
