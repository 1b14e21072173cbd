//! Watching an SQLite database file: an open connection keeps reading and
//! writing a file that was deleted or replaced under it (the old inode),
//! silently. So the background task checks the path every second and, when
//! it no longer names the file it opened, has the writer reopen the
//! database (which fails, and spools, while the file is missing or empty)
//! and reloads the registry from whatever file is there now.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::store::sqlite_files;

/// What one check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FileState {
    /// The path still names the file that was opened (or this is no SQLite database).
    Same,
    /// Deleted, emptied or replaced: reopen.
    Changed,
}

/// The identity of a file: device, inode.
type FileId = (u64, u64);

fn file_id(path: &std::path::Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The watched file and what was last seen of it.
#[derive(Debug)]
pub(super) struct FileWatch {
    path: Option<PathBuf>,
    /// Its `-wal` and `-shm`.
    companions: Vec<PathBuf>,
    opened: Option<FileId>,
    /// Reported missing or empty, and not back yet (one log line per loss).
    lost: bool,
}

impl FileWatch {
    /// Watches the SQLite file of `url` (nothing for other databases), as
    /// it is now.
    pub(super) fn new(url: &str) -> FileWatch {
        let files = sqlite_files(url);
        let mut watch = FileWatch {
            companions: files
                .as_ref()
                .map_or_else(Vec::new, |(_, [wal, shm, _])| vec![wal.clone(), shm.clone()]),
            path: files.map(|(path, _)| path),
            opened: None,
            lost: false,
        };
        watch.rebase();
        watch
    }

    fn current(&self) -> Option<(FileId, u64)> {
        let path = self.path.as_ref()?;
        Some((file_id(path)?, std::fs::metadata(path).ok()?.len()))
    }

    /// The database was (re)opened: the file now at the path is the one in use.
    pub(super) fn rebase(&mut self) {
        self.opened = self.current().map(|(id, _)| id);
        self.lost = false;
    }

    /// The paths of the file's `-wal` and `-shm`.
    pub(super) fn companions(&self) -> Vec<PathBuf> {
        self.companions.clone()
    }

    /// Compares the path with the file in use, logging what changed.
    pub(super) fn check(&mut self) -> FileState {
        let Some(path) = &self.path else {
            return FileState::Same;
        };
        match self.current() {
            None | Some((_, 0)) => {
                if !self.lost {
                    self.lost = true;
                    tracing::error!(
                        "the SQLite database {} was deleted or emptied; devicegate serves logins from memory, keeps \
                         state changes in its spool, and reopens the database when a file is back",
                        path.display()
                    );
                    return FileState::Changed;
                }
                FileState::Same
            }
            Some((id, _)) if Some(id) != self.opened => {
                tracing::warn!(
                    "the SQLite database {} was replaced (now inode {}); devicegate reopens it and reloads its \
                     registry",
                    path.display(),
                    id.1
                );
                self.opened = Some(id);
                self.lost = false;
                FileState::Changed
            }
            Some(_) => FileState::Same,
        }
    }
}
