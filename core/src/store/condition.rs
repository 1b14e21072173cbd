//! Why a write failed: the row's own fault (its device was deleted, a
//! value the schema refuses), or a condition of the database (read-only,
//! full, permissions, gone, locked, a standby after failover, unreachable).
//! Writes hit by a condition are kept and retried; only row faults drop a
//! write. A condition comes with a message that names it and the fix,
//! with the paths and the user involved.

use std::path::{Path, PathBuf};

use super::{Backend, StoreError};

/// What kind of database condition stopped a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionKind {
    /// The database cannot be reached, or the connection broke.
    Unreachable,
    /// The file, its directory or the database refuses writes (SQLite
    /// `READONLY`, Postgres `25006` on a standby or with
    /// `default_transaction_read_only`).
    ReadOnly,
    /// The user may not write (Postgres `42501`, SQLite `PERM`/`AUTH`).
    PermissionDenied,
    /// No space left (SQLite `FULL`, Postgres class `53`).
    Full,
    /// The database file is missing, moved or replaced (SQLite `CANTOPEN`,
    /// `READONLY_DBMOVED`, `IOERR`).
    FileGone,
    /// Another writer holds a lock (SQLite `BUSY`/`LOCKED`, Postgres
    /// `55P03`, serialization failures, deadlocks, statement timeouts).
    Busy,
    /// Anything else the database says that is not about the row.
    Other,
}

impl StoreError {
    /// Whether this error is about the write itself (a constraint or a
    /// value the schema refuses), so retrying it can never succeed.
    pub fn is_row_fault(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(db)) => match DbCode::of(db.code().as_deref()) {
                // CONSTRAINT (19) and its extended codes, MISMATCH (20), RANGE (25).
                DbCode::Sqlite(n) => matches!(n & 0xff, 19 | 20 | 25),
                // Classes 22 (data exception) and 23 (integrity constraint).
                DbCode::Sqlstate(code) => code.starts_with("22") || code.starts_with("23"),
                DbCode::Unknown => false,
            },
            StoreError::Database(
                sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) | sqlx::Error::Encode(_),
            ) => true,
            StoreError::Invalid(_) => true,
            _ => false,
        }
    }

    /// The database condition behind a failed write (meaningful when
    /// [`StoreError::is_row_fault`] is false).
    pub fn condition(&self) -> ConditionKind {
        let db = match self {
            StoreError::Database(sqlx::Error::Database(db)) => db,
            StoreError::Missing(_) => return ConditionKind::FileGone,
            _ => return ConditionKind::Unreachable,
        };
        match DbCode::of(db.code().as_deref()) {
            DbCode::Sqlite(1032) => ConditionKind::FileGone,
            DbCode::Sqlite(n) => match n & 0xff {
                8 => ConditionKind::ReadOnly,
                3 | 23 => ConditionKind::PermissionDenied,
                13 => ConditionKind::Full,
                14 | 10 | 26 | 11 => ConditionKind::FileGone,
                5 | 6 => ConditionKind::Busy,
                _ => ConditionKind::Other,
            },
            DbCode::Sqlstate(code) => match code {
                "25006" => ConditionKind::ReadOnly,
                "42501" => ConditionKind::PermissionDenied,
                "55P03" | "40001" | "40P01" | "57014" => ConditionKind::Busy,
                c if c.starts_with("53") => ConditionKind::Full,
                c if c.starts_with("08") || c.starts_with("57P") => ConditionKind::Unreachable,
                _ => ConditionKind::Other,
            },
            DbCode::Unknown => ConditionKind::Other,
        }
    }
}

/// A database error code, told apart by its form: SQLite's are decimal
/// numbers below 10,000 (primary code in the low byte), Postgres's are
/// five-character SQLSTATEs (which may be all digits, like `23505`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DbCode<'a> {
    Sqlite(u32),
    Sqlstate(&'a str),
    Unknown,
}

impl<'a> DbCode<'a> {
    fn of(code: Option<&'a str>) -> Self {
        match code {
            Some(c) if c.len() == 5 => DbCode::Sqlstate(c),
            Some(c) if c.len() < 5 => c.parse().map_or(DbCode::Unknown, DbCode::Sqlite),
            _ => DbCode::Unknown,
        }
    }
}

/// The files an SQLite database at `url` consists of: the file, its `-wal`
/// and `-shm`, and its directory. `None` for other URLs.
pub fn sqlite_files(url: &str) -> Option<(PathBuf, [PathBuf; 3])> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = PathBuf::from(rest.split('?').next()?);
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    Some((path.clone(), [with("-wal"), with("-shm"), path]))
}

/// The name of the user this process runs as (`uid N` if it has none).
pub fn process_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_default();
    let name = std::fs::read_to_string("/etc/passwd").ok().and_then(|passwd| {
        passwd.lines().find_map(|l| {
            let mut fields = l.split(':');
            let name = fields.next()?;
            (fields.nth(1)? == uid).then(|| name.to_owned())
        })
    });
    name.unwrap_or_else(|| format!("uid {uid}"))
}

/// Whether this process can write `path` (an existing file, opened for
/// appending and closed at once; nothing is written) — `None` if it does
/// not exist.
fn writable(path: &Path) -> Option<bool> {
    if !path.exists() {
        return None;
    }
    if path.is_dir() {
        let probe = path.join(format!(".devicegate-probe-{}", std::process::id()));
        let ok = std::fs::File::create(&probe).is_ok();
        let _ = std::fs::remove_file(&probe);
        return Some(ok);
    }
    Some(std::fs::OpenOptions::new().append(true).open(path).is_ok())
}

/// One line naming what stops writes to the database at `url` and how to
/// fix it: the files and user for SQLite, the server's state for Postgres.
pub fn explain(backend: Backend, url: &str, kind: ConditionKind) -> String {
    let user = process_user();
    if backend == Backend::Sqlite
        && let Some((db, files)) = sqlite_files(url)
    {
        let dir = db
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut blocked: Vec<String> = files
            .iter()
            .map(PathBuf::as_path)
            .chain([dir])
            .filter(|p| writable(p) == Some(false))
            .map(|p| p.display().to_string())
            .collect();
        blocked.dedup();
        let listed = format!(
            "{} (with {}-wal and {}-shm) in {}",
            db.display(),
            db.display(),
            db.display(),
            dir.display()
        );
        return match kind {
            ConditionKind::ReadOnly | ConditionKind::PermissionDenied if !blocked.is_empty() => format!(
                "the SQLite database refuses writes: {} not writable by user {user}; fix: chown {user} {} && chmod u+w {}",
                blocked.join(", "),
                blocked.join(" "),
                blocked.join(" ")
            ),
            ConditionKind::ReadOnly | ConditionKind::PermissionDenied => format!(
                "the SQLite database {listed} refuses writes by user {user} (read-only file system or mount?); \
                 make them writable for {user}"
            ),
            ConditionKind::Full => format!("the disk holding {listed} is full; free space there"),
            ConditionKind::FileGone => format!(
                "the SQLite database {} is missing, moved or replaced; restore it (devicegate reopens it when it \
                 is back)",
                db.display()
            ),
            ConditionKind::Busy => format!(
                "the SQLite database {} is locked by another writer; it is retried",
                db.display()
            ),
            ConditionKind::Unreachable | ConditionKind::Other => {
                format!("the SQLite database {listed} cannot be written by user {user}")
            }
        };
    }
    let url = super::redact_url(url);
    match kind {
        ConditionKind::ReadOnly => format!(
            "the Postgres database {url} is read-only (a standby after failover, or \
             default_transaction_read_only): point the URL at the primary, or \
             `ALTER DATABASE … SET default_transaction_read_only = off`; devicegate reconnects by itself"
        ),
        ConditionKind::PermissionDenied => format!(
            "the Postgres role of {url} may not write devicegate's tables: GRANT INSERT, UPDATE, DELETE on them \
             to it"
        ),
        ConditionKind::Full => format!("the Postgres server of {url} is out of disk or resources (SQLSTATE class 53)"),
        ConditionKind::Busy => format!("the Postgres database {url} is busy (locks, timeouts); it is retried"),
        ConditionKind::FileGone | ConditionKind::Unreachable => {
            format!("the Postgres database {url} cannot be reached")
        }
        ConditionKind::Other => format!("the Postgres database {url} refuses writes"),
    }
}

#[cfg(test)]
mod tests {
    use super::DbCode;

    #[test]
    fn sqlite_codes_and_sqlstates_are_told_apart() {
        assert_eq!(DbCode::of(Some("8")), DbCode::Sqlite(8));
        assert_eq!(DbCode::of(Some("1032")), DbCode::Sqlite(1032));
        assert_eq!(DbCode::of(Some("2067")), DbCode::Sqlite(2067));
        assert_eq!(DbCode::of(Some("23505")), DbCode::Sqlstate("23505"));
        assert_eq!(DbCode::of(Some("25006")), DbCode::Sqlstate("25006"));
        assert_eq!(DbCode::of(Some("57P01")), DbCode::Sqlstate("57P01"));
        assert_eq!(DbCode::of(Some("x")), DbCode::Unknown);
        assert_eq!(DbCode::of(None), DbCode::Unknown);
    }
}
