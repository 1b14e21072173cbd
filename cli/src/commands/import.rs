//! `devicegate device import PK FILE.csv`: read rows, refuse bad ones with
//! their line numbers, insert the rest in batches (one transaction each),
//! print generated secrets once and a summary.

use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::output::Output;
use devicegate::store::{ImportFile, ImportFileError, ImportRow, RefusedRow, Store, read_import};

/// Reads the CSV into good rows and refused ones (`devicegate::store::read_import`:
/// the header must name `device_key`; `secret` and `gateway` are optional columns).
fn read(file: &Path) -> anyhow::Result<(Vec<ImportRow>, Vec<RefusedRow>)> {
    let input = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    match read_import(&input) {
        Ok(ImportFile { rows, refused }) => Ok((rows, refused)),
        Err(ImportFileError::Header(e)) => {
            Err(anyhow::anyhow!(e).context(format!("cannot read the header of {}", file.display())))
        }
        Err(e) => Err(anyhow::anyhow!("{}: {e}", file.display())),
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
                Err(reason) => refused.push(RefusedRow { line: row.line, reason }),
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
