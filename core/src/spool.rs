//! The write-ahead spool: state changes the database would not take,
//! kept in a file until it takes them again.
//!
//! While the database refuses writes (down, read-only, full, gone), the
//! background task appends every state change here instead of holding it
//! in memory, and replays the file in order once the database answers; at
//! shutdown whatever is still pending is appended too, and the next start
//! replays it. So memory stays bounded and a broker restart loses nothing.
//!
//! The file holds one JSON record per line, each with an id; a cursor file
//! beside it holds the byte offset of the first record not yet applied.
//! Replay is idempotent: the store records each id it applies in the same
//! transaction (`applied_writes`), so a record applied just before a crash
//! and replayed after it is written once. Records carry device secrets
//! (activation), so the file is created with mode 0600, like the database.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::{ConnectionId, IssueKind, StoreWrite};
use crate::secret::Secret;

/// One spooled write, read back for replay.
#[derive(Debug)]
pub struct Spooled {
    /// Its id: unique across processes, recorded by the store when applied.
    pub id: String,
    /// The write.
    pub write: StoreWrite,
    /// Whether this process spooled it: only then does its connection id
    /// still name the connection that asked for it.
    pub from_this_process: bool,
    /// The byte offset just after its record.
    end: u64,
    /// Lines from the cursor up to and including its own (damaged lines
    /// skipped on the way count too).
    lines: usize,
}

/// A spool file and its cursor.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    cursor_path: PathBuf,
    file: File,
    cursor: u64,
    pending: usize,
    instance: String,
    next_seq: u64,
}

#[derive(Serialize, Deserialize)]
struct Line {
    id: String,
    #[serde(flatten)]
    record: Record,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Record {
    Presence {
        device: String,
        online: bool,
        at_ms: u64,
        address: Option<String>,
    },
    Activated {
        device: String,
        at_ms: u64,
    },
    Issue {
        device: String,
        kind: String,
        secret: String,
        connection: u64,
    },
    Event {
        at_ms: u64,
        kind: String,
        subject: Option<String>,
        address: Option<String>,
        reason: Option<String>,
    },
    CredentialUsed {
        device: String,
        kind: String,
        identity: String,
        at_ms: u64,
    },
    RegisterCertificate {
        product_key: String,
        device_key: String,
        fingerprint: String,
        der_hex: String,
        not_after_ms: u64,
    },
}

fn issue_kind_name(kind: IssueKind) -> &'static str {
    match kind {
        IssueKind::Activation => "activation",
        IssueKind::Register => "register",
        IssueKind::Regnwl => "regnwl",
    }
}

impl Record {
    fn of(write: &StoreWrite) -> Record {
        match write {
            StoreWrite::Presence {
                device,
                online,
                at_ms,
                address,
            } => Record::Presence {
                device: device.to_string(),
                online: *online,
                at_ms: *at_ms,
                address: address.as_deref().map(str::to_owned),
            },
            StoreWrite::Activated { device, at_ms } => Record::Activated {
                device: device.to_string(),
                at_ms: *at_ms,
            },
            StoreWrite::Issue {
                device,
                kind,
                secret,
                connection,
            } => Record::Issue {
                device: device.to_string(),
                kind: issue_kind_name(*kind).to_owned(),
                secret: secret.expose_str(),
                connection: connection.0,
            },
            StoreWrite::CredentialUsed {
                device,
                kind,
                identity,
                at_ms,
            } => Record::CredentialUsed {
                device: device.to_string(),
                kind: (*kind).to_owned(),
                identity: identity.to_string(),
                at_ms: *at_ms,
            },
            StoreWrite::RegisterCertificate {
                product_key,
                device_key,
                fingerprint,
                der,
                not_after_ms,
            } => Record::RegisterCertificate {
                product_key: product_key.to_string(),
                device_key: device_key.to_string(),
                fingerprint: fingerprint.to_string(),
                der_hex: hex::encode(der),
                not_after_ms: *not_after_ms,
            },
            StoreWrite::Event {
                at_ms,
                kind,
                subject,
                address,
                reason,
            } => Record::Event {
                at_ms: *at_ms,
                kind: kind.to_string(),
                subject: subject.as_deref().map(str::to_owned),
                address: address.as_deref().map(str::to_owned),
                reason: reason.as_deref().map(str::to_owned),
            },
        }
    }

    fn into_write(self) -> Option<StoreWrite> {
        Some(match self {
            Record::Presence {
                device,
                online,
                at_ms,
                address,
            } => StoreWrite::Presence {
                device: device.into(),
                online,
                at_ms,
                address: address.map(Into::into),
            },
            Record::Activated { device, at_ms } => StoreWrite::Activated {
                device: device.into(),
                at_ms,
            },
            Record::Issue {
                device,
                kind,
                secret,
                connection,
            } => StoreWrite::Issue {
                device: device.into(),
                kind: match kind.as_str() {
                    "activation" => IssueKind::Activation,
                    "register" => IssueKind::Register,
                    "regnwl" => IssueKind::Regnwl,
                    _ => return None,
                },
                secret: Secret::new(secret.into_bytes()),
                connection: ConnectionId(connection),
            },
            Record::CredentialUsed {
                device,
                kind,
                identity,
                at_ms,
            } => StoreWrite::CredentialUsed {
                device: device.into(),
                kind: match kind.as_str() {
                    "secret" => "secret",
                    "psk" => "psk",
                    "certificate" => "certificate",
                    _ => return None,
                },
                identity: identity.into(),
                at_ms,
            },
            Record::RegisterCertificate {
                product_key,
                device_key,
                fingerprint,
                der_hex,
                not_after_ms,
            } => StoreWrite::RegisterCertificate {
                product_key: product_key.into(),
                device_key: device_key.into(),
                fingerprint: fingerprint.into(),
                der: hex::decode(der_hex).ok()?.into(),
                not_after_ms,
            },
            Record::Event {
                at_ms,
                kind,
                subject,
                address,
                reason,
            } => StoreWrite::Event {
                at_ms,
                kind: kind.into(),
                subject: subject.map(Into::into),
                address: address.map(Into::into),
                reason: reason.map(Into::into),
            },
        })
    }
}

/// Where the spool of the database at `url` lives: beside an SQLite file
/// (`devicegate.db.spool`), or in `dir` when given; for Postgres, in `dir`
/// or the system's temporary directory, named after the database.
pub fn spool_path(url: &str, dir: Option<&Path>) -> PathBuf {
    if let Some((db, _)) = crate::store::sqlite_files(url) {
        let mut name = db.file_name().unwrap_or_default().to_owned();
        name.push(".spool");
        return match dir {
            Some(dir) => dir.join(name),
            None => db.with_file_name(name),
        };
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(crate::store::redact_url(url).as_bytes());
    let name = format!("devicegate-{}.spool", hex::encode(digest.get(..8).unwrap_or_default()));
    dir.map_or_else(std::env::temp_dir, Path::to_path_buf).join(name)
}

impl Spool {
    /// Opens (or creates, mode 0600) the spool at `path` and counts the
    /// records left by an earlier run. A record cut short by a crash while
    /// it was appended is removed.
    pub fn open(path: &Path) -> std::io::Result<Spool> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        let mut cursor_path = path.as_os_str().to_owned();
        cursor_path.push(".cursor");
        let cursor_path = PathBuf::from(cursor_path);
        let cursor = std::fs::read_to_string(&cursor_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let instance = crate::secret::random_hex(8).map_err(std::io::Error::other)?;
        let mut spool = Spool {
            path: path.to_owned(),
            cursor_path,
            file,
            cursor,
            pending: 0,
            instance,
            next_seq: 0,
        };
        let (complete_end, count) = spool.scan()?;
        if complete_end < spool.file.metadata()?.len() {
            spool.file.set_len(complete_end)?;
        }
        if spool.cursor > complete_end {
            spool.cursor = complete_end;
        }
        spool.pending = count;
        Ok(spool)
    }

    /// The end of the last complete line, and how many complete lines
    /// follow the cursor.
    fn scan(&mut self) -> std::io::Result<(u64, usize)> {
        let mut reader = BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(0))?;
        let (mut offset, mut end, mut count) = (0u64, 0u64, 0usize);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                return Ok((end, count));
            }
            offset += n as u64;
            end = offset;
            if offset > self.cursor {
                count += 1;
            }
        }
    }

    /// The spool file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many writes wait in the spool.
    pub fn len(&self) -> usize {
        self.pending
    }

    /// Whether no write waits.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Appends `writes`, in order, and syncs the file to disk.
    pub fn append(&mut self, writes: &[StoreWrite]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for write in writes {
            let line = Line {
                id: format!("{}-{}", self.instance, self.next_seq),
                record: Record::of(write),
            };
            self.next_seq += 1;
            serde_json::to_writer(&mut text, &line).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let before = self.file.metadata()?.len();
        if let Err(e) = self.file.write_all(&text).and_then(|()| self.file.sync_data()) {
            // Leave no half record behind: the next append would join it.
            let _ = self.file.set_len(before);
            return Err(e);
        }
        self.pending += writes.len();
        Ok(())
    }

    /// Up to `max` writes from the cursor, oldest first. Lines that do not
    /// parse (the file was damaged) are logged and skipped.
    pub fn read(&mut self, max: usize) -> std::io::Result<Vec<Spooled>> {
        let mut reader = BufReader::new(&self.file);
        reader.seek(SeekFrom::Start(self.cursor))?;
        let mut offset = self.cursor;
        let mut out = Vec::new();
        let mut line = Vec::new();
        let mut lines = 0;
        while out.len() < max {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            offset += n as u64;
            lines += 1;
            let parsed = serde_json::from_slice::<Line>(&line)
                .ok()
                .and_then(|l| Some((l.record.into_write()?, l.id)));
            match parsed {
                Some((write, id)) => out.push(Spooled {
                    from_this_process: id.split('-').next() == Some(self.instance.as_str()),
                    id,
                    write,
                    end: offset,
                    lines,
                }),
                None => {
                    tracing::error!(
                        "skipping a damaged line in the devicegate spool {} at byte {}",
                        self.path.display(),
                        offset - n as u64
                    );
                    if out.is_empty() {
                        // Nothing before it to carry it: pass it at once.
                        self.cursor = offset;
                        self.pending = self.pending.saturating_sub(1);
                        lines = 0;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Marks the writes up to and including `last` (from the latest
    /// [`Spool::read`]) as applied: the cursor moves past them, and an
    /// emptied spool is truncated.
    pub fn advance(&mut self, last: &Spooled) -> std::io::Result<()> {
        self.pending = self.pending.saturating_sub(last.lines);
        self.cursor = last.end;
        if self.pending == 0 && self.file.metadata()?.len() <= self.cursor {
            self.file.set_len(0)?;
            self.cursor = 0;
        }
        let tmp = self.cursor_path.with_extension("cursor.tmp");
        std::fs::write(&tmp, self.cursor.to_string())?;
        std::fs::rename(&tmp, &self.cursor_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence(n: u64) -> StoreWrite {
        StoreWrite::Presence {
            device: "dev&pk".into(),
            online: n.is_multiple_of(2),
            at_ms: n,
            address: None,
        }
    }

    #[test]
    fn writes_survive_a_reopen_and_replay_in_order_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devicegate.db.spool");
        let mut spool = Spool::open(&path).unwrap();
        spool.append(&(0..5).map(presence).collect::<Vec<_>>()).unwrap();
        spool
            .append(&[StoreWrite::Issue {
                device: "dev&pk".into(),
                kind: IssueKind::Activation,
                secret: Secret::new(*b"0123"),
                connection: ConnectionId(9),
            }])
            .unwrap();
        let first = spool.read(2).unwrap();
        assert_eq!(
            first.iter().map(|s| s.write.clone()).collect::<Vec<_>>(),
            vec![presence(0), presence(1)]
        );
        assert!(first.iter().all(|s| s.from_this_process));
        spool.advance(&first[1]).unwrap();
        drop(spool);
        let mut again = Spool::open(&path).unwrap();
        assert_eq!(again.len(), 4);
        let rest = again.read(10).unwrap();
        assert_eq!(rest[0].write, presence(2));
        assert!(!rest[0].from_this_process, "a new process does not own old connections");
        assert!(matches!(&rest[3].write, StoreWrite::Issue { secret, .. } if secret.expose() == b"0123"));
        again.advance(&rest[3]).unwrap();
        assert!(again.is_empty());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "an emptied spool is truncated"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_damaged_lines_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.spool");
        let mut spool = Spool::open(&path).unwrap();
        spool.append(&[presence(1)]).unwrap();
        drop(spool);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"not json\n{\"id\":\"a-1\",\"type\":\"presence\"")
            .unwrap();
        let mut spool = Spool::open(&path).unwrap();
        assert_eq!(spool.len(), 2, "the torn record is gone");
        let read = spool.read(10).unwrap();
        assert_eq!(read.len(), 1, "the damaged line is skipped");
        assert_eq!(read[0].write, presence(1));
        spool.advance(&read[0]).unwrap();
        assert_eq!(spool.len(), 1, "the damaged line still counts until passed");
        assert!(spool.read(10).unwrap().is_empty());
        assert!(spool.is_empty(), "a damaged line with nothing after it is passed");
    }

    #[test]
    fn paths() {
        assert_eq!(
            spool_path("sqlite:///var/lib/devicegate/devicegate.db", None),
            PathBuf::from("/var/lib/devicegate/devicegate.db.spool")
        );
        assert_eq!(
            spool_path("sqlite://devicegate.db", Some(Path::new("/spool"))),
            PathBuf::from("/spool/devicegate.db.spool")
        );
        let pg = spool_path("postgres://u:pw@h/db", Some(Path::new("/spool")));
        assert!(pg.starts_with("/spool") && pg.to_string_lossy().ends_with(".spool"));
        assert_eq!(pg, spool_path("postgres://u:other@h/db", Some(Path::new("/spool"))));
    }
}
