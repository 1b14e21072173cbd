//! `devicegate device import PK FILE.csv`: streams the file (never all of
//! it in memory), refuses bad rows with their line numbers, and imports the
//! rest in batches, one transaction and one change for brokers each
//! (`Store::import_devices`). Generated secrets are printed as each batch
//! commits (CSV on standard output, or all at the end with `--json`);
//! refusals go to standard error as `FILE:LINE: reason`; a progress bar
//! shows rows/s and the time left. Exit code 1 if any row was refused.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::output::Output;
use devicegate::store::{ImportFileError, ImportReader, ImportRow, RefusedRow, Store};

/// What the import did so far.
#[derive(Default)]
struct Tally {
    imported: u64,
    refused: u64,
    /// Printed at the end with `--json`; streamed otherwise.
    generated: Vec<(String, String)>,
    failed: Vec<RefusedRow>,
    printed_header: bool,
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
    let handle = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = ImportReader::new(BufReader::with_capacity(1 << 16, handle)).map_err(|e| file_error(file, e))?;
    let progress = if out.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(size)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut batch: Vec<ImportRow> = Vec::with_capacity(batch_size);
    let mut refused: Vec<RefusedRow> = Vec::new();
    loop {
        let next = reader.next_row().map_err(|e| file_error(file, e))?;
        let end = next.is_none();
        match next {
            Some(Ok(row)) => batch.push(row),
            Some(Err(row)) => refused.push(row),
            None => {}
        }
        if batch.len() >= batch_size || (end && !(batch.is_empty() && refused.is_empty())) {
            let results = store
                .import_devices(pk, &batch, allow_weak_secret)
                .await
                .with_context(|| {
                    format!(
                        "the batch starting at line {} of {} was not imported (earlier batches were)",
                        batch.first().map_or(0, |r| r.line),
                        file.display()
                    )
                })?;
            for (row, result) in batch.drain(..).zip(results) {
                match result {
                    Ok(None) => tally.imported += 1,
                    Ok(Some(secret)) => {
                        tally.imported += 1;
                        tally.generated.push((row.device_key, secret));
                    }
                    Err(reason) => refused.push(RefusedRow { line: row.line, reason }),
                }
            }
            report(out, file, &progress, &mut tally, &mut refused);
            let rate = tally.imported as f64 / started.elapsed().as_secs_f64().max(1e-3);
            progress.set_position(reader.bytes_read());
            progress.set_message(format!("{} devices, {rate:.0}/s", tally.imported));
        }
        if end {
            break;
        }
    }
    progress.finish_and_clear();
    if out.json {
        let failed: Vec<_> = tally
            .failed
            .iter()
            .map(|r| json!({"line": r.line, "error": r.reason}))
            .collect();
        let secrets: Vec<_> = tally
            .generated
            .iter()
            .map(|(dk, s)| json!({"device_key": dk, "device_secret": s}))
            .collect();
        println!(
            "{}",
            json!({"product_key": pk, "imported": tally.imported, "failed": failed, "generated_secrets": secrets})
        );
    } else {
        eprintln!(
            "imported {} devices into {pk} in {:.1} s, refused {} rows",
            tally.imported,
            started.elapsed().as_secs_f64(),
            tally.refused
        );
    }
    if tally.refused > 0 {
        anyhow::bail!("{} rows of {} were refused", tally.refused, file.display());
    }
    Ok(())
}

/// After each batch: its generated secrets and its refusals, in line
/// order, printed now (kept for the end with `--json`).
fn report(out: &Output, file: &Path, progress: &ProgressBar, tally: &mut Tally, refused: &mut Vec<RefusedRow>) {
    refused.sort_by_key(|r| r.line);
    tally.refused += refused.len() as u64;
    if out.json {
        tally.failed.append(refused);
        return;
    }
    let generated = std::mem::take(&mut tally.generated);
    let header = !tally.printed_header && !generated.is_empty();
    tally.printed_header |= header;
    progress.suspend(|| {
        if header {
            println!("device_key,secret");
        }
        for (dk, secret) in &generated {
            println!("{dk},{secret}");
        }
        for r in refused.iter() {
            eprintln!("{}:{}: {}", file.display(), r.line, r.reason);
        }
    });
    refused.clear();
}

/// A file that cannot be imported at all, with its path.
fn file_error(file: &Path, error: ImportFileError) -> anyhow::Error {
    match error {
        ImportFileError::Header(e) => {
            anyhow::anyhow!(e).context(format!("cannot read the header of {}", file.display()))
        }
        e => anyhow::anyhow!("{}: {e}", file.display()),
    }
}
