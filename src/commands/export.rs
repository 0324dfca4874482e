//! `export`: one row per contact, to stdout or to a file renamed into place whole.

use std::io::{IsTerminal, Write};
use std::path::Path;

use crate::config::campaign::Campaign;
use crate::errors::{Error, Result};
use crate::exit;
use crate::output::export::{ExportOptions, Format};
use crate::state::Store;

pub(super) fn export(
    campaign: &Campaign,
    output: Option<&Path>,
    options: &ExportOptions,
) -> Result<u8> {
    let store = Store::open(&campaign.state_path, false)?;
    match output.filter(|p| *p != Path::new("-")) {
        None => {
            if options.format == Format::Xlsx && std::io::stdout().is_terminal() {
                return Err(Error::Usage {
                    message: "a workbook is bytes for Excel, not text for a terminal".into(),
                    help: "write it to a file: -o results.xlsx".into(),
                });
            }
            let mut out = std::io::BufWriter::new(std::io::stdout());
            crate::output::export::write(&store, &mut out, options)?;
            out.flush().map_err(|source| Error::WriteFile {
                path: "standard output".into(),
                cause: source,
            })?;
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
            let written = crate::output::export::write(&store, &mut out, options)
                .and_then(|n| out.flush().map(|()| n).map_err(write_err));
            drop(out);
            let n = match written {
                Ok(n) => n,
                Err(e) => {
                    // An export that failed (a workbook past Excel's limits, a full disk)
                    // leaves no half file behind to be mistaken for one.
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
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
