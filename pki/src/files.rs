//! Writing keys and certificates: never over an existing file; private
//! keys with mode 0600 from the moment the file exists.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::PkiError;

fn create(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|cause| match cause.kind() {
            std::io::ErrorKind::AlreadyExists => PkiError::Exists(path.display().to_string()),
            _ => PkiError::Io {
                path: path.display().to_string(),
                cause,
            },
        })?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|cause| PkiError::Io {
            path: path.display().to_string(),
            cause,
        })
}

/// Writes a private key to a new file readable by its owner only (0600).
pub fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    create(path, contents, 0o600)
}

/// Writes a certificate, CRL or other public file to a new file (0644).
pub fn write_public(path: &Path, contents: &str) -> Result<(), PkiError> {
    create(path, contents, 0o644)
}

/// Reads a text file, naming it in the error.
pub(crate) fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|cause| PkiError::Io {
        path: path.display().to_string(),
        cause,
    })
}
