//! `devicegate device import PK FILE.csv`: read rows, refuse bad ones with
//! their line numbers, insert the rest in batches (one transaction each),
//! print generated secrets once and a summary.

use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::device::gateway;
use crate::output::Output;
use devicegate::store::{ImportRow, Store};

/// A refused row.
struct Refused {
    line: u64,
    reason: String,
}

/// Reads the CSV into good rows and refused ones. The header must name
/// `device_key`; `secret` and `gateway` are optional columns.
fn read(file: &Path) -> anyhow::Result<(Vec<ImportRow>, Vec<Refused>)> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_path(file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let headers = reader
        .headers()
        .with_context(|| format!("cannot read the header of {}", file.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let dk_col = column("device_key").with_context(|| {
        format!(
            "{}: the header must name a `device_key` column (optional: `secret`, `gateway`)",
            file.display()
        )
    })?;
    let (secret_col, gateway_col) = (column("secret"), column("gateway"));
    if let Some(unknown) = headers
        .iter()
        .find(|h| !["device_key", "secret", "gateway"].contains(&h.to_ascii_lowercase().as_str()))
    {
        anyhow::bail!(
            "{}: unknown column `{unknown}` (expected device_key, secret, gateway)",
            file.display()
        );
    }
    let (mut rows, mut refused) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                refused.push(Refused {
                    line,
                    reason: explain(&e, &headers),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |col: Option<usize>| {
            col.and_then(|c| record.get(c))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let Some(device_key) = field(Some(dk_col)) else {
            refused.push(Refused {
                line,
                reason: format!("empty device_key; {}", good_row(&headers)),
            });
            continue;
        };
        let gateway = match field(gateway_col).as_deref().map(gateway).transpose() {
            Ok(g) => g,
            Err(e) => {
                refused.push(Refused {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        rows.push(ImportRow {
            line,
            device_key,
            secret: field(secret_col),
            gateway,
        });
    }
    Ok((rows, refused))
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

pub async fn run(
    out: &Output,
    store: &Store,
    pk: &str,
    file: &Path,
    batch_size: usize,
    allow_weak_secret: bool,
) -> anyhow::Result<()> {
    store.product_info(pk).await?;
    let (rows, mut refused) = read(file)?;
    let progress = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(rows.len() as u64)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} devices ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut generated = Vec::new();
    let mut imported = 0u64;
    for batch in rows.chunks(batch_size.max(1)) {
        let results = store
            .import_devices(pk, batch, allow_weak_secret)
            .await
            .with_context(|| {
                format!(
                    "batch starting at line {} was not imported (earlier batches were)",
                    batch.first().map_or(0, |r| r.line)
                )
            })?;
        for (row, result) in batch.iter().zip(results) {
            match result {
                Ok(secret) => {
                    imported += 1;
                    if let Some(secret) = secret {
                        generated.push((row.device_key.clone(), secret));
                    }
                }
                Err(reason) => refused.push(Refused { line: row.line, reason }),
            }
        }
        progress.inc(batch.len() as u64);
    }
    progress.finish_and_clear();
    refused.sort_by_key(|r| r.line);
    if out.json {
        let failed: Vec<_> = refused
            .iter()
            .map(|r| json!({"line": r.line, "error": r.reason}))
            .collect();
        let secrets: Vec<_> = generated
            .iter()
            .map(|(dk, s)| json!({"device_key": dk, "device_secret": s}))
            .collect();
        println!(
            "{}",
            json!({"product_key": pk, "imported": imported, "failed": failed, "generated_secrets": secrets})
        );
    } else {
        if !generated.is_empty() {
            println!("device_key,secret");
            for (dk, secret) in &generated {
                println!("{dk},{secret}");
            }
        }
        for r in &refused {
            eprintln!("{}:{}: {}", file.display(), r.line, r.reason);
        }
        eprintln!("imported {imported} devices into {pk}, refused {} rows", refused.len());
    }
    if !refused.is_empty() {
        anyhow::bail!("{} rows of {} were refused", refused.len(), file.display());
    }
    Ok(())
}
