//! Files the user names, opened so that no input can hang stepcall or fill its memory, and
//! files stepcall writes, created so that nobody else can read them.
//!
//! A path in a campaign may lead anywhere: `/dev/zero` never ends, a FIFO blocks `open` until
//! someone writes to it, a folder reads as an error much later. So inputs are opened without
//! blocking and refused unless they are regular files, before a byte is read. What stepcall
//! writes (exports, reports, rejected rows, partial files) holds personal data and transcripts,
//! so it is created with mode 0600, like the state database, whatever the umask says.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::errors::{Error, Result};

/// Opens `path` for reading if it is a regular file (symlinks followed).
pub fn open_regular(path: &Path) -> Result<File> {
    let read_err = |cause| Error::ReadFile {
        path: path.to_path_buf(),
        cause,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever. For a
    // regular file it changes nothing.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(read_err)?;
    let kind = file.metadata().map_err(read_err)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let kind = if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a named pipe"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(Error::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// Reads a regular file of at most `max` bytes whole, as text.
pub fn read_small(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|cause| Error::ReadFile {
            path: path.to_path_buf(),
            cause,
        })?;
    if bytes.len() as u64 > max {
        return Err(Error::ReadFile {
            path: path.to_path_buf(),
            cause: std::io::Error::other(format!(
                "it is larger than {} MiB, which no {what} comes close to",
                max >> 20
            )),
        });
    }
    Ok(bytes)
}

/// Creates (or truncates) `path` for writing, readable by its owner only.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    // The mode above applies only to a new file; an old one keeps its own until told.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Writes `bytes` to a new private file at `path`.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = create_private(path)?;
    file.write_all(bytes)?;
    file.flush()
}
