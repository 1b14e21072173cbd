//! Login-flood probe: while flood tasks send CONNECTs of one kind as fast
//! as the broker answers them, from many loopback addresses (each under
//! the failed-login limits), a probe logs one device in every 20 ms from
//! 127.0.0.1 and times CONNECT → CONNACK. Prints one JSON line: the flood's
//! rate and the probe's latency percentiles. `benches/login_flood.sh`
//! compares the kinds against a control flood the plugin does nothing for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use devicegate::sign::{Content, HashAlg, Scheme, SignMethod, compute};
use devicegate_test_support::raw::{connack_from, connect_packet};

/// What the flood sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Flood {
    /// Nothing: the probe alone.
    None,
    /// CONNECTs without a username: the plugin defers them at once (control).
    Anonymous,
    /// Principal-style usernames that name no principal.
    UnknownPrincipal,
    /// The PBKDF2 principal with wrong passwords.
    WrongPassword,
    /// The PBKDF2 principal with its right password.
    RightPassword,
    /// The generated-secret principal with its right password.
    GeneratedSecret,
}

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// The broker's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// What the flood sends.
    #[arg(long, value_enum)]
    flood: Flood,
    /// Flood tasks, each with its own connection at a time.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Loopback source addresses the flood rotates through (127.0.1.1 ...).
    #[arg(long, default_value_t = 200)]
    addresses: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// The probe device's product key (EnOS, device `dev_0`).
    #[arg(long, default_value = "LoadPk01")]
    product: String,
    /// The probe device's secret.
    #[arg(long, default_value = "load-secret-0001")]
    secret: String,
    /// The PBKDF2 principal's name and password, `NAME:PASSWORD`.
    #[arg(long, default_value = "legacy:legacy-password")]
    pbkdf2_principal: String,
    /// The generated-secret principal's name and password, `NAME:PASSWORD`.
    #[arg(long, default_value = "")]
    generated_principal: String,
}

fn probe_packet(args: &Args, n: u64) -> Vec<u8> {
    let ts = format!("{}", 1_700_000_000_000u64 + n);
    let method = SignMethod {
        alg: HashAlg::Sha256,
        scheme: Scheme::AppendSecret,
    };
    let content = Content::new(&[
        ("clientId", "dev_0"),
        ("deviceKey", "dev_0"),
        ("productKey", &args.product),
        ("timestamp", &ts),
    ]);
    let password = compute(method, &content, args.secret.as_bytes()).to_hex_upper();
    let client_id = format!("dev_0|securemode=2,signmethod=sha256,timestamp={ts}|");
    connect_packet(
        client_id.as_bytes(),
        Some(format!("dev_0&{}", args.product).as_bytes()),
        Some(password.as_bytes()),
    )
}

fn flood_packet(args: &Args, n: u64) -> Vec<u8> {
    let client_id = format!("flood-{n}");
    let split = |pair: &str| pair.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned()));
    let (user, password) = match args.flood {
        Flood::None | Flood::Anonymous => return connect_packet(client_id.as_bytes(), None, None),
        Flood::UnknownPrincipal => (format!("nobody-{n}"), "whatever".to_owned()),
        Flood::WrongPassword => (
            split(&args.pbkdf2_principal).unwrap_or_default().0,
            format!("wrong-{n}"),
        ),
        Flood::RightPassword => split(&args.pbkdf2_principal).unwrap_or_default(),
        Flood::GeneratedSecret => split(&args.generated_principal).unwrap_or_default(),
    };
    connect_packet(client_id.as_bytes(), Some(user.as_bytes()), Some(password.as_bytes()))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else {
        return 0.0;
    };
    let index = ((last as f64) * p).round() as usize;
    sorted.get(index.min(last)).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    let args = Arc::new(Args::parse());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut floods = Vec::new();
    if args.flood != Flood::None {
        for task in 0..args.tasks {
            let (args, stop, sent) = (Arc::clone(&args), Arc::clone(&stop), Arc::clone(&sent));
            floods.push(tokio::spawn(async move {
                let mut n = task as u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = (n as usize) % args.addresses.max(1);
                    let source = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250);
                    let _ = connack_from(&source, args.port, &flood_packet(&args, n)).await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += args.tasks as u64;
                }
            }));
        }
    }
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut refused = 0u64;
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(args.seconds) {
        let packet = probe_packet(&args, n);
        let t = Instant::now();
        let (code, stream) = connack_from("127.0.0.1", args.port, &packet).await;
        latencies.push(t.elapsed());
        if code != Some(0) {
            refused += 1;
        }
        drop(stream);
        n += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for flood in floods {
        let _ = flood.await;
    }
    latencies.sort();
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"flood\":\"{:?}\",\"flood_per_sec\":{:.0},\"probes\":{},\"probes_refused\":{},\"probe_p50_us\":{:.0},\"probe_p90_us\":{:.0},\"probe_p99_us\":{:.0}}}",
        args.flood,
        sent.load(Ordering::Relaxed) as f64 / elapsed,
        latencies.len(),
        refused,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
    );
    if refused > 0 {
        return Err(format!("{refused} probe logins were refused"));
    }
    Ok(())
}
