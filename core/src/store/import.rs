//! CSV import files (`devicegate device import PK FILE.csv`): a header that
//! names `device_key` and optionally `secret` and `gateway`, then one device
//! per row. This module only reads, as a stream: it turns bytes into rows to insert
//! ([`ImportRow`], for [`Store::import_devices`](super::Store::import_devices))
//! and rows refused with their line and a reason in the operator's terms.
//! The fuzz target `csv_import` feeds it arbitrary files.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;

use super::ImportRow;
use super::admin::check_key;
use crate::credentials::KeyKind;

/// The columns an import file may have.
const COLUMNS: [&str; 3] = ["device_key", "secret", "gateway"];

/// A row that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedRow {
    /// The 1-based line in the file.
    pub line: u64,
    /// Why, with what a good row looks like where that helps.
    pub reason: String,
}

/// An import file read: the rows to insert and the rows refused, each in
/// file order.
#[derive(Debug, Clone, Default)]
pub struct ImportFile {
    /// Rows whose device key is valid, to insert.
    pub rows: Vec<ImportRow>,
    /// Rows refused before reaching the database.
    pub refused: Vec<RefusedRow>,
}

/// Why a whole file cannot be imported (its header is wrong). Messages name
/// no file: the caller prefixes the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportFileError {
    /// The header line cannot be read (for example, it is not UTF-8).
    #[error("{0}")]
    Header(String),
    /// No `device_key` column.
    #[error("the header must name a `device_key` column (optional: `secret`, `gateway`)")]
    NoDeviceKey,
    /// A column other than the three known ones.
    #[error("unknown column `{0}` (expected device_key, secret, gateway)")]
    UnknownColumn(String),
    /// The input could not be read (not a bad row: the file itself).
    #[error("cannot read the file: {0}")]
    Read(String),
}

/// Splits a gateway given as `GWPK/GWDK`.
pub fn parse_gateway(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((pk, dk)) if !pk.is_empty() && !dk.is_empty() && !dk.contains('/') => Ok((pk.to_owned(), dk.to_owned())),
        _ => Err(format!("gateway `{text}` must be PRODUCT_KEY/DEVICE_KEY")),
    }
}

/// Reads an import file held in memory: the header, then every row (see
/// [`ImportReader`]). For tests and the fuzz target; the CLI streams.
pub fn read_import(input: &[u8]) -> Result<ImportFile, ImportFileError> {
    let mut reader = ImportReader::new(input)?;
    let mut file = ImportFile::default();
    while let Some(row) = reader.next_row()? {
        match row {
            Ok(row) => file.rows.push(row),
            Err(refused) => file.refused.push(refused),
        }
    }
    Ok(file)
}

/// Reads an import file as a stream, one row at a time, so a file of
/// millions of rows is never held in memory. Fields are trimmed; an empty
/// `secret` means "generate one", an empty `gateway` none. A row with the
/// wrong number of fields, invalid UTF-8, an empty or invalid device key
/// or a malformed gateway is refused with its line; only a bad header
/// refuses the whole file.
///
/// Lines are counted here, not taken from the csv crate, whose count is off
/// by one per CRLF line end (found by the `csv_import` fuzz target:
/// spreadsheet exports got every refusal on the wrong line): the input
/// passes through [`Tracked`], which notes where each line end is.
pub struct ImportReader<R: Read> {
    reader: csv::Reader<Tracked<R>>,
    headers: csv::StringRecord,
    dk_col: usize,
    secret_col: Option<usize>,
    gateway_col: Option<usize>,
    record: csv::StringRecord,
}

impl<R: Read> ImportReader<R> {
    /// Reads and checks the header.
    pub fn new(input: R) -> Result<Self, ImportFileError> {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(Tracked::new(input));
        let headers = reader
            .headers()
            .map_err(|e| ImportFileError::Header(e.to_string()))?
            .clone();
        let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
        let dk_col = column("device_key").ok_or(ImportFileError::NoDeviceKey)?;
        let (secret_col, gateway_col) = (column("secret"), column("gateway"));
        if let Some(unknown) = headers
            .iter()
            .find(|h| !COLUMNS.contains(&h.to_ascii_lowercase().as_str()))
        {
            return Err(ImportFileError::UnknownColumn(unknown.to_owned()));
        }
        Ok(ImportReader {
            reader,
            headers,
            dk_col,
            secret_col,
            gateway_col,
            record: csv::StringRecord::new(),
        })
    }

    /// The next row to insert or the next refused one; `None` at the end.
    /// An error reading the input (not a bad row) ends the file.
    pub fn next_row(&mut self) -> Result<Option<Result<ImportRow, RefusedRow>>, ImportFileError> {
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(None),
            Ok(true) => {
                let line = self.line_of(self.record.position());
                Ok(Some(
                    row(
                        &self.record,
                        line,
                        &self.headers,
                        self.dk_col,
                        self.secret_col,
                        self.gateway_col,
                    )
                    .map_err(|reason| RefusedRow { line, reason }),
                ))
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => Err(ImportFileError::Read(e.to_string())),
            Err(e) => {
                let line = self.line_of(e.position());
                Ok(Some(Err(RefusedRow {
                    line,
                    reason: explain(&e, &self.headers),
                })))
            }
        }
    }

    /// How far into the input the rows read so far reach, in bytes (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.reader.position().byte()
    }

    fn line_of(&self, position: Option<&csv::Position>) -> u64 {
        position.map_or(0, |p| self.reader.get_ref().line_at(p.byte()))
    }
}

/// The input of an [`ImportReader`], noting the line ends that pass
/// through (`\n`, `\r\n` or a lone `\r`, as the csv crate accepts) until
/// the rows before them are read: at most the csv reader's read-ahead.
struct Tracked<R> {
    inner: R,
    ends: RefCell<LineEnds>,
}

/// Line ends read but not yet behind a row, and how many are behind.
#[derive(Default)]
struct LineEnds {
    /// Offsets of `\r` and `\n` bytes, each with whether it ends a line
    /// (the `\n` of a `\r\n` does not: the `\r` did).
    pending: VecDeque<(u64, bool)>,
    /// Line ends before the last row's start.
    counted: u64,
    /// Bytes read so far.
    offset: u64,
    after_cr: bool,
}

impl<R> Tracked<R> {
    fn new(inner: R) -> Self {
        Tracked {
            inner,
            ends: RefCell::new(LineEnds::default()),
        }
    }

    /// The 1-based line of the record the csv crate places at `byte`: one
    /// more than the line ends before it. The csv crate puts a record that
    /// follows empty lines at the first of them, so those count too.
    fn line_at(&self, byte: u64) -> u64 {
        let mut ends = self.ends.borrow_mut();
        let LineEnds { pending, counted, .. } = &mut *ends;
        let mut start = byte;
        while let Some(&(at, ends_line)) = pending.front() {
            if at < start {
                pending.pop_front();
            } else if at == start {
                pending.pop_front();
                start += 1;
            } else {
                break;
            }
            *counted += u64::from(ends_line);
        }
        1 + *counted
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        let ends = self.ends.get_mut();
        for &byte in buf.get(..read).unwrap_or_default() {
            match byte {
                b'\r' => {
                    ends.pending.push_back((ends.offset, true));
                    ends.after_cr = true;
                }
                b'\n' => {
                    ends.pending.push_back((ends.offset, !ends.after_cr));
                    ends.after_cr = false;
                }
                _ => ends.after_cr = false,
            }
            ends.offset += 1;
        }
        Ok(read)
    }
}

/// One record under the header: an [`ImportRow`] or why not.
fn row(
    record: &csv::StringRecord,
    line: u64,
    headers: &csv::StringRecord,
    dk_col: usize,
    secret_col: Option<usize>,
    gateway_col: Option<usize>,
) -> Result<ImportRow, String> {
    let field = |col: Option<usize>| {
        col.and_then(|c| record.get(c))
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let device_key = field(Some(dk_col)).ok_or_else(|| format!("empty device_key; {}", good_row(headers)))?;
    check_key(KeyKind::Device, &device_key).map_err(|e| e.to_string())?;
    let gateway = field(gateway_col).as_deref().map(parse_gateway).transpose()?;
    Ok(ImportRow {
        line,
        device_key,
        secret: field(secret_col),
        gateway,
    })
}

/// What a good row under `headers` looks like, for messages.
fn good_row(headers: &csv::StringRecord) -> String {
    let example: Vec<&str> = headers
        .iter()
        .map(|h| match h.to_ascii_lowercase().as_str() {
            "device_key" => "dev_0001",
            "secret" => "S3cretDevice0001",
            _ => "GWPK/GWDK",
        })
        .collect();
    format!(
        "under the header `{}` a good row is `{}` (leave a field empty to leave it out: a secret is then generated)",
        headers.iter().collect::<Vec<_>>().join(","),
        example.join(",")
    )
}

/// A CSV error in the operator's terms: the row, the header, a good row.
fn explain(error: &csv::Error, headers: &csv::StringRecord) -> String {
    match error.kind() {
        csv::ErrorKind::UnequalLengths { len, .. } => format!(
            "the row has {len} fields, the header {}; {}",
            headers.len(),
            good_row(headers)
        ),
        csv::ErrorKind::Utf8 { .. } => format!("the row is not valid UTF-8; {}", good_row(headers)),
        _ => format!("{error}; {}", good_row(headers)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> ImportFile {
        read_import(text.as_bytes()).unwrap()
    }

    #[test]
    fn rows_and_refusals_carry_their_lines() {
        let file = read("device_key,secret,gateway\nd1,S3cretDevice00d1,\nd 2,,\nd3,,pk/gw\nd4,,pk\nd5,s5\n");
        let lines: Vec<u64> = file.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4]);
        assert_eq!(file.rows[0].secret.as_deref(), Some("S3cretDevice00d1"));
        assert_eq!(file.rows[1].gateway, Some(("pk".to_owned(), "gw".to_owned())));
        let refused: Vec<u64> = file.refused.iter().map(|r| r.line).collect();
        assert_eq!(refused, [3, 5, 6]);
        assert!(file.refused[0].reason.starts_with("`d 2`: "), "{:?}", file.refused[0]);
        assert!(file.refused[1].reason.contains("PRODUCT_KEY/DEVICE_KEY"));
        assert!(file.refused[2].reason.starts_with(
            "the row has 2 fields, the header 3; under the header `device_key,secret,gateway` \
             a good row is `dev_0001,S3cretDevice0001,GWPK/GWDK`"
        ));
    }

    #[test]
    fn line_ends_of_every_kind_count_once() {
        for text in [
            "device_key\nd 1\nd2\n\nd 3\n",
            "device_key\r\nd 1\r\nd2\r\n\r\nd 3\r\n",
            "device_key\rd 1\rd2\r\rd 3\r",
        ] {
            let file = read(text);
            assert_eq!(file.rows.iter().map(|r| r.line).collect::<Vec<_>>(), [3], "{text:?}");
            assert_eq!(
                file.refused.iter().map(|r| r.line).collect::<Vec<_>>(),
                [2, 5],
                "{text:?}"
            );
        }
        let quoted = read("device_key,secret\n\"d 1\",\"two\nlines\"\nd 2,\n");
        assert_eq!(quoted.refused.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4]);
    }

    /// Hands its input out one byte per read: every line end split from
    /// its neighbours, as a chunk boundary of a large file may split it.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn a_stream_read_byte_by_byte_gets_the_same_lines() {
        for text in [
            "device_key\r\nd 1\r\nd2\r\n\r\nd 3\r\n",
            "device_key\rd 1\rd2\r\rd 3\r",
            "device_key,secret\n\"d 1\",\"two\r\nlines\"\r\nd 2,\n",
        ] {
            let mut reader = ImportReader::new(OneByte(text.as_bytes())).unwrap();
            let mut lines = Vec::new();
            while let Some(row) = reader.next_row().unwrap() {
                lines.push(row.map_or_else(|r| r.line, |r| r.line));
            }
            let whole = read(text);
            let mut expected: Vec<u64> = whole
                .rows
                .iter()
                .map(|r| r.line)
                .chain(whole.refused.iter().map(|r| r.line))
                .collect();
            expected.sort_unstable();
            assert_eq!(lines, expected, "{text:?}");
            assert_eq!(reader.bytes_read(), text.len() as u64);
        }
    }

    #[test]
    fn only_device_key_is_required_and_case_does_not_matter() {
        let file = read(" Device_Key \n dev_0001 \n\n,\n");
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0].device_key, "dev_0001");
        assert_eq!(file.rows[0].secret, None);
    }

    #[test]
    fn a_bad_header_refuses_the_file() {
        assert!(matches!(
            read_import(&b"name\nx\n"[..]),
            Err(ImportFileError::NoDeviceKey)
        ));
        assert!(matches!(read_import(&b""[..]), Err(ImportFileError::NoDeviceKey)));
        assert!(matches!(
            read_import(&b"device_key,colour\nx,y\n"[..]),
            Err(ImportFileError::UnknownColumn(c)) if c == "colour"
        ));
        assert!(matches!(
            read_import(&b"device_\xff\n"[..]),
            Err(ImportFileError::Header(_))
        ));
    }

    #[test]
    fn gateways_split_once() {
        assert_eq!(parse_gateway("pk/gw"), Ok(("pk".to_owned(), "gw".to_owned())));
        for bad in ["pk", "/gw", "pk/", "pk/gw/x"] {
            assert!(parse_gateway(bad).is_err(), "{bad}");
        }
    }
}
