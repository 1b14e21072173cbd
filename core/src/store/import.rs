//! CSV import files (`devicegate device import PK FILE.csv`): a header that
//! names `device_key` and optionally `secret` and `gateway`, then one device
//! per row. This module only reads: it turns bytes into rows to insert
//! ([`ImportRow`], for [`Store::import_devices`](super::Store::import_devices))
//! and rows refused with their line and a reason in the operator's terms.
//! The fuzz target `csv_import` feeds it arbitrary files.

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
}

/// Splits a gateway given as `GWPK/GWDK`.
pub fn parse_gateway(text: &str) -> Result<(String, String), String> {
    match text.split_once('/') {
        Some((pk, dk)) if !pk.is_empty() && !dk.is_empty() && !dk.contains('/') => Ok((pk.to_owned(), dk.to_owned())),
        _ => Err(format!("gateway `{text}` must be PRODUCT_KEY/DEVICE_KEY")),
    }
}

/// Reads an import file: the header, then every row. Fields are trimmed;
/// an empty `secret` means "generate one", an empty `gateway` none. A row
/// with the wrong number of fields, invalid UTF-8, an empty or invalid
/// device key or a malformed gateway is refused with its line; only a bad
/// header refuses the whole file. Lines are counted here, not taken from
/// the csv crate, whose count is off by one per CRLF line end (found by the
/// `csv_import` fuzz target: spreadsheet exports got every refusal on the
/// wrong line).
pub fn read_import(input: &[u8]) -> Result<ImportFile, ImportFileError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(input);
    let line_of = |position: Option<&csv::Position>| position.map_or(0, |p| line_at(input, p.byte()));
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
    let mut file = ImportFile::default();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = line_of(e.position());
                file.refused.push(RefusedRow {
                    line,
                    reason: explain(&e, &headers),
                });
                continue;
            }
        };
        let line = line_of(record.position());
        match row(&record, line, &headers, dk_col, secret_col, gateway_col) {
            Ok(row) => file.rows.push(row),
            Err(reason) => file.refused.push(RefusedRow { line, reason }),
        }
    }
    Ok(file)
}

/// The 1-based line of the record starting at `byte` in `input`: one more
/// than the line ends (`\n`, `\r\n` or a lone `\r`, as the csv crate
/// accepts) before it. The csv crate puts a record that follows empty lines
/// at the first of them, so those are skipped first.
fn line_at(input: &[u8], byte: u64) -> u64 {
    let mut start = usize::try_from(byte).unwrap_or(usize::MAX).min(input.len());
    while input.get(start).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
        start += 1;
    }
    let before = input.get(..start).unwrap_or(input);
    let ends = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
        .count();
    1 + ends as u64
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
