//! A load loop for the provisioning service's `POST /authenticate`
//! (IDENTITIES.md §4): C clients, each sending its next request as soon
//! as the last is answered, for S seconds, over a set of access keys.
//! Prints requests per second and latency percentiles (one human line and
//! one JSON line). `benches/authenticate.sh` prepares the database, starts
//! `devicegate serve` and runs it on SQLite and Postgres. Not a test: the
//! figures depend on the machine.
//!
//!   authload prepare --database-url URL --devices N --out KEYS
//!   authload run --url http://127.0.0.1:PORT --keys KEYS --concurrency C --seconds S

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use devicegate::credentials::Dialect;
use devicegate::store::{ImportRow, ProductSpec, Store};

/// What to do.
#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates a product with N devices and one access key each; writes
    /// `accessKey secretKey` lines to `--out`.
    Prepare {
        #[arg(long)]
        database_url: String,
        #[arg(long, default_value_t = 1000)]
        devices: usize,
        #[arg(long, default_value = "LoadPk01")]
        product: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Sends `POST /authenticate` from C concurrent clients for S seconds.
    Run {
        /// The service, `http://127.0.0.1:PORT`.
        #[arg(long)]
        url: String,
        /// The file `prepare` wrote.
        #[arg(long)]
        keys: PathBuf,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Seconds of load before measuring (not counted).
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// A label for the JSON line (the backend).
        #[arg(long, default_value = "")]
        label: String,
    },
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    match args.command {
        Command::Prepare {
            database_url,
            devices,
            product,
            out,
        } => runtime.block_on(prepare(&database_url, devices, &product, &out)),
        Command::Run {
            url,
            keys,
            concurrency,
            seconds,
            warmup,
            label,
        } => runtime.block_on(run(&url, &keys, concurrency, seconds, warmup, &label)),
    }
}

async fn prepare(url: &str, devices: usize, pk: &str, out: &PathBuf) -> Result<(), String> {
    let store = Store::connect(url).await.map_err(|e| e.to_string())?;
    store
        .create_product(ProductSpec::new(pk, Dialect::Enos))
        .await
        .map_err(|e| e.to_string())?;
    let keys: Vec<String> = (0..devices).map(|i| format!("dev_{i}")).collect();
    for chunk in keys.chunks(500) {
        let rows: Vec<ImportRow> = chunk
            .iter()
            .zip(1u64..)
            .map(|(dk, line)| ImportRow {
                line,
                device_key: dk.clone(),
                secret: None,
                gateway: None,
            })
            .collect();
        for result in store
            .import_devices(pk, &rows, false)
            .await
            .map_err(|e| e.to_string())?
        {
            result?;
        }
    }
    let mut lines = String::new();
    for dk in &keys {
        let pair = store.create_access_key(pk, dk).await.map_err(|e| e.to_string())?;
        lines.push_str(&format!("{} {}\n", pair.access_key, pair.secret_key));
    }
    store.close().await;
    std::fs::write(out, lines).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("{devices} devices with access keys in product {pk}");
    Ok(())
}

/// What one client saw while measuring.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn run(
    url: &str,
    keys: &PathBuf,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
    label: &str,
) -> Result<(), String> {
    let text = std::fs::read_to_string(keys).map_err(|e| format!("{}: {e}", keys.display()))?;
    let bodies: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(access, secret)| {
            format!(r#"{{"deviceAuthParameters":{{"accessKey":"{access}","secretKey":"{secret}"}}}}"#)
        })
        .collect();
    if bodies.is_empty() {
        return Err(format!("{}: no access keys", keys.display()));
    }
    let bodies = std::sync::Arc::new(bodies);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .map_err(|e| e.to_string())?;
    let endpoint = format!("{url}/authenticate");
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(warmup);
    let end = measure_from + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, endpoint, bodies) = (client.clone(), endpoint.clone(), bodies.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut next = worker;
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        return tally;
                    }
                    let body = bodies[next % bodies.len()].clone();
                    next += concurrency;
                    let answer = client
                        .post(&endpoint)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match answer {
                        Ok(response) => response.status().as_u16() == 200 && response.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if sent < measure_from {
                        continue;
                    }
                    if ok {
                        let us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
                        tally.latencies_us.push(us);
                    } else {
                        tally.errors += 1;
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for worker in workers {
        let tally = worker.await.map_err(|e| e.to_string())?;
        all.extend(tally.latencies_us);
        errors += tally.errors;
    }
    all.sort_unstable();
    let pick = |q: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    let rate = all.len() as f64 / seconds as f64;
    let (p50, p99, max) = (pick(0.50), pick(0.99), pick(1.0));
    println!(
        "{label}: {rate:.0} requests/s over {seconds} s with {concurrency} clients ({} ok, {errors} failed); \
         latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        all.len()
    );
    println!(
        r#"{{"label":"{label}","concurrency":{concurrency},"seconds":{seconds},"ok":{},"errors":{errors},"requests_per_sec":{rate:.1},"p50_ms":{p50:.3},"p99_ms":{p99:.3},"max_ms":{max:.3}}}"#,
        all.len()
    );
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    Ok(())
}
