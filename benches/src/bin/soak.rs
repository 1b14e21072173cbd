//! The soak driver (issue 10, item 8): many devices connect and disconnect
//! over real MQTT while devices are disabled and enabled through the CLI and
//! the database is stopped and started; every login decision, kick and ACL
//! decision is checked against the database state at that time (the
//! driver's own record of every change, with its start and end time), the
//! broker's resident memory is sampled every 10 s, and at the end the
//! database must hold every state write the broker owed it. Prints a
//! summary and exits 1 on any wrong decision or lost write.
//! `benches/soak.sh` sets up Postgres, the database and Mosquitto.
//!
//! A decision whose interval touches a change's propagation window (from
//! the start of the CLI command to its end plus refresh interval + 2 s) is
//! "in flight": either answer is right.

use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use devicegate::sign::{Content, HashAlg, Scheme, SignMethod, compute};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter, SubscribeReasonCode,
};

/// Options.
#[derive(Debug, Parser)]
struct Args {
    /// The broker's port on 127.0.0.1.
    #[arg(long)]
    port: u16,
    /// The broker's pid, for the resident-memory samples.
    #[arg(long)]
    broker_pid: u32,
    /// The database URL, for the CLI and psql.
    #[arg(long)]
    database_url: String,
    /// The devicegate CLI.
    #[arg(long, default_value = "target/release/devicegate")]
    cli: String,
    /// Devices `dev_0` .. `dev_{N-1}` of the product, all with `--secret`.
    #[arg(long, default_value_t = 10_000)]
    devices: usize,
    #[arg(long, default_value = "SoakPk01")]
    product: String,
    #[arg(long, default_value = "soak-secret-000001")]
    secret: String,
    /// Devices disabled before the broker started: every `dev_i` with i % this == 0.
    #[arg(long, default_value_t = 20)]
    initially_disabled_every: usize,
    /// The monitor principal, `NAME:PASSWORD`, subscribed to every device topic.
    #[arg(long)]
    monitor: String,
    /// Run time in seconds.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// Devices connected at once.
    #[arg(long, default_value_t = 300)]
    concurrency: usize,
    /// Longest time a device stays connected, in seconds (uniform from 1).
    #[arg(long, default_value_t = 12)]
    hold_max_secs: u64,
    /// One enable or disable every this many milliseconds.
    #[arg(long, default_value_t = 300)]
    change_every_ms: u64,
    /// The plugin's refresh interval (the propagation window is this + 2 s).
    #[arg(long, default_value_t = 500)]
    refresh_ms: u64,
    /// Database restarts spread over the run.
    #[arg(long, default_value_t = 3)]
    restarts: u32,
    /// How long the database stays down each time, in seconds.
    #[arg(long, default_value_t = 15)]
    down_secs: u64,
    /// Shell command that stops the database.
    #[arg(long)]
    db_stop: String,
    /// Shell command that starts the database.
    #[arg(long)]
    db_start: String,
    /// Seconds after the run before the database is checked.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Share of the run treated as warm-up for the memory curve.
    #[arg(long, default_value_t = 0.2)]
    warmup: f64,
}

/// One enable or disable: `done` is None while the CLI has not succeeded.
#[derive(Debug, Clone)]
struct Change {
    start: Instant,
    done: Option<Instant>,
    enabled: bool,
}

#[derive(Debug, Default)]
struct Dev {
    busy: bool,
    changes: Vec<Change>,
    /// The live connection: its id and CONNACK time.
    conn: Option<(u64, Instant)>,
    /// Wall clock (ms) of the CONNECT of the last accepted login.
    last_accepted_connect_ms: i64,
    logins: u64,
    refusals: u64,
    kicks: u64,
}

/// What a decision should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Enabled,
    Disabled,
    InFlight,
}

struct World {
    args: Args,
    t0: Instant,
    start_ms: i64,
    window: Duration,
    devs: Vec<Mutex<Dev>>,
    initially_enabled: Vec<bool>,
    stop: AtomicBool,
    db_down: AtomicBool,
    next_conn: AtomicU64,
    c: Counters,
    wrong: Mutex<Vec<String>>,
}

#[derive(Default)]
struct Counters {
    logins: AtomicU64,
    refusals: AtomicU64,
    in_flight: AtomicU64,
    connect_errors: AtomicU64,
    kicks: AtomicU64,
    wrong_accept: AtomicU64,
    wrong_refuse: AtomicU64,
    wrong_close: AtomicU64,
    wrong_not_kicked: AtomicU64,
    wrong_foreign_sub: AtomicU64,
    wrong_foreign_delivered: AtomicU64,
    wrong_own_lost: AtomicU64,
    own_published: AtomicU64,
    own_echoed: AtomicU64,
    foreign_published: AtomicU64,
    foreign_subs_refused: AtomicU64,
    changes_ok: AtomicU64,
    changes_failed: AtomicU64,
    monitor_messages: AtomicU64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn lock(m: &Mutex<Dev>) -> MutexGuard<'_, Dev> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// xorshift64*: enough randomness for picking devices and times.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

impl World {
    fn secs(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    /// The state device `i` must have had for a decision made between `a`
    /// and `b`.
    fn expect(&self, dev: &Dev, i: usize, a: Instant, b: Instant) -> Expect {
        let mut state = self.initially_enabled[i];
        for ch in &dev.changes {
            match ch.done {
                None if ch.start <= b => return Expect::InFlight,
                None => {}
                Some(done) => {
                    if ch.start <= b && done + self.window >= a {
                        return Expect::InFlight;
                    }
                    if done < a {
                        state = ch.enabled;
                    }
                }
            }
        }
        if state { Expect::Enabled } else { Expect::Disabled }
    }

    fn history(&self, dev: &Dev) -> String {
        dev.changes
            .iter()
            .map(|c| {
                format!(
                    "{}@{:.3}..{}",
                    if c.enabled { "enable" } else { "disable" },
                    self.secs(c.start),
                    c.done.map_or("open".to_owned(), |d| format!("{:.3}", self.secs(d)))
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn wrong(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut w = self.wrong.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() < 50 {
            eprintln!("WRONG: {what}");
            w.push(what);
        }
    }

    fn options(&self, i: usize) -> MqttOptions {
        let dk = format!("dev_{i}");
        let ts = "1700000000000";
        let content = Content::new(&[
            ("clientId", &dk),
            ("deviceKey", &dk),
            ("productKey", &self.args.product),
            ("timestamp", ts),
        ]);
        let method = SignMethod {
            alg: HashAlg::Sha256,
            scheme: Scheme::AppendSecret,
        };
        let password = compute(method, &content, self.args.secret.as_bytes()).to_hex_upper();
        let mut o = MqttOptions::new(
            format!("{dk}|securemode=2,signmethod=sha256,timestamp={ts}|"),
            "127.0.0.1",
            self.args.port,
        );
        o.set_credentials(format!("{dk}&{}", self.args.product), password);
        o.set_keep_alive(Duration::from_secs(60)).set_clean_session(true);
        o
    }

    fn own_topic(&self, i: usize) -> String {
        format!("/sys/{}/dev_{i}/thing/measurepoint/post", self.args.product)
    }
}

enum Outcome {
    Accepted(AsyncClient, Box<EventLoop>),
    Refused(ConnectReturnCode),
    Error(String),
}

async fn connect(options: MqttOptions) -> Outcome {
    let (client, mut events) = AsyncClient::new(options, 64);
    loop {
        match tokio::time::timeout(Duration::from_secs(15), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                if ack.code == ConnectReturnCode::Success {
                    return Outcome::Accepted(client, Box::new(events));
                }
                return Outcome::Refused(ack.code);
            }
            Ok(Ok(_)) => {}
            Ok(Err(rumqttc::ConnectionError::ConnectionRefused(code))) => return Outcome::Refused(code),
            Ok(Err(e)) => return Outcome::Error(e.to_string()),
            Err(_) => return Outcome::Error("no CONNACK within 15 s".to_owned()),
        }
    }
}

/// One worker: picks a free device, logs it in, holds the session for a
/// while (publishing on its own topic, now and then on a foreign one),
/// disconnects, and again, until the run ends.
async fn worker(w: Arc<World>, seed: u64) {
    let mut rng = Rng::new(seed);
    let n = w.args.devices;
    while !w.stop.load(Ordering::Relaxed) {
        let i = loop {
            let i = rng.below(n as u64) as usize;
            let mut d = lock(&w.devs[i]);
            if !d.busy {
                d.busy = true;
                break i;
            }
        };
        session(&w, &mut rng, i).await;
        lock(&w.devs[i]).busy = false;
    }
}

async fn session(w: &Arc<World>, rng: &mut Rng, i: usize) {
    let c = &w.c;
    let connect_ms = now_ms();
    let a = Instant::now();
    let outcome = connect(w.options(i)).await;
    let b = Instant::now();
    let (client, mut events) = {
        let mut d = lock(&w.devs[i]);
        let expect = w.expect(&d, i, a, b);
        match outcome {
            Outcome::Error(e) => {
                c.connect_errors.fetch_add(1, Ordering::Relaxed);
                if c.connect_errors.load(Ordering::Relaxed) <= 5 {
                    eprintln!("connect error dev_{i} at {:.1}s: {e}", w.secs(b));
                }
                return;
            }
            Outcome::Refused(code) => {
                c.refusals.fetch_add(1, Ordering::Relaxed);
                d.refusals += 1;
                match expect {
                    Expect::InFlight => {
                        c.in_flight.fetch_add(1, Ordering::Relaxed);
                    }
                    Expect::Disabled => {}
                    Expect::Enabled => w.wrong(
                        &c.wrong_refuse,
                        format!(
                            "dev_{i} refused ({code:?}) at {:.3}..{:.3}s while enabled; changes: [{}]",
                            w.secs(a),
                            w.secs(b),
                            w.history(&d)
                        ),
                    ),
                }
                return;
            }
            Outcome::Accepted(client, events) => {
                c.logins.fetch_add(1, Ordering::Relaxed);
                d.logins += 1;
                d.last_accepted_connect_ms = connect_ms;
                match expect {
                    Expect::InFlight => {
                        c.in_flight.fetch_add(1, Ordering::Relaxed);
                    }
                    Expect::Enabled => {}
                    Expect::Disabled => w.wrong(
                        &c.wrong_accept,
                        format!(
                            "dev_{i} accepted at {:.3}..{:.3}s while disabled; changes: [{}]",
                            w.secs(a),
                            w.secs(b),
                            w.history(&d)
                        ),
                    ),
                }
                let id = w.next_conn.fetch_add(1, Ordering::Relaxed);
                d.conn = Some((id, b));
                (client, events)
            }
        }
    };
    let connack = b;
    let closed_at = hold(w, rng, i, &client, &mut events).await;
    let mut d = lock(&w.devs[i]);
    d.conn = None;
    if let Some(t) = closed_at {
        // Closed by the broker: right only if a disable started before.
        let disabled = d
            .changes
            .iter()
            .any(|ch| !ch.enabled && ch.start <= t && ch.done.is_none_or(|done| done + w.window >= connack));
        if disabled {
            c.kicks.fetch_add(1, Ordering::Relaxed);
            d.kicks += 1;
        } else {
            let hist = w.history(&d);
            w.wrong(
                &c.wrong_close,
                format!(
                    "dev_{i} closed by the broker at {:.3}s (connected {:.3}s) with no disable; changes: [{hist}]",
                    w.secs(t),
                    w.secs(connack)
                ),
            );
        }
    }
}

/// Holds a session; returns the time the broker closed it, or None when
/// the driver disconnected it.
async fn hold(
    w: &Arc<World>,
    rng: &mut Rng,
    i: usize,
    client: &AsyncClient,
    events: &mut EventLoop,
) -> Option<Instant> {
    let c = &w.c;
    let n = w.args.devices;
    let own = w.own_topic(i);
    let foreign = w.own_topic((i + 1 + rng.below(n as u64 - 1) as usize) % n);
    let try_foreign_sub = rng.below(4) == 0;
    let mut filters = vec![SubscribeFilter::new(own.clone(), QoS::AtLeastOnce)];
    if try_foreign_sub {
        filters.push(SubscribeFilter::new(foreign.clone(), QoS::AtLeastOnce));
    }
    if client.subscribe_many(filters).await.is_err() {
        return None;
    }
    let start = Instant::now();
    let end = start + Duration::from_millis(1000 + rng.below(w.args.hold_max_secs.saturating_sub(1) * 1000 + 1));
    let mut subscribed = false;
    let mut seq = 0u64;
    let mut echoed = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(1000));
    let mut draining: Option<Instant> = None;
    loop {
        let stop = w.stop.load(Ordering::Relaxed);
        if draining.is_none() && (Instant::now() >= end || stop) {
            draining = Some(Instant::now() + Duration::from_secs(3));
        }
        if let Some(until) = draining
            && (echoed >= seq || Instant::now() >= until)
        {
            break;
        }
        tokio::select! {
            ev = events.poll() => match ev {
                Ok(Event::Incoming(Packet::SubAck(ack))) => {
                    subscribed = true;
                    if try_foreign_sub {
                        match ack.return_codes.get(1) {
                            Some(SubscribeReasonCode::Failure) => {
                                c.foreign_subs_refused.fetch_add(1, Ordering::Relaxed);
                            }
                            other => w.wrong(&c.wrong_foreign_sub, format!("dev_{i} subscribed to {foreign}: {other:?}")),
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if p.topic == own {
                        echoed += 1;
                        c.own_echoed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        w.wrong(&c.wrong_foreign_delivered, format!("dev_{i} received a message on {}", p.topic));
                    }
                }
                Ok(_) => {}
                Err(_) => return Some(Instant::now()),
            },
            _ = ticker.tick(), if subscribed && draining.is_none() => {
                seq += 1;
                if client.try_publish(own.clone(), QoS::AtLeastOnce, false, format!("own dev_{i} {seq}")).is_ok() {
                    c.own_published.fetch_add(1, Ordering::Relaxed);
                } else {
                    seq -= 1;
                }
                if rng.below(8) == 0 {
                    let _ = client.try_publish(foreign.clone(), QoS::AtLeastOnce, false, format!("FOREIGN from dev_{i}"));
                    c.foreign_published.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    if echoed < seq {
        // Own publishes that never came back: wrong only if the device was
        // enabled the whole time.
        let d = lock(&w.devs[i]);
        if w.expect(&d, i, start, Instant::now()) == Expect::Enabled {
            let hist = w.history(&d);
            drop(d);
            w.wrong(
                &c.wrong_own_lost,
                format!(
                    "dev_{i}: {} of {seq} own publishes not delivered back; changes: [{hist}]",
                    seq - echoed
                ),
            );
        }
    }
    let _ = client.try_disconnect();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), events.poll()).await {
            Ok(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect))) => break,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    None
}

/// Runs the CLI to set device `i`'s state; true when it succeeded.
async fn set_enabled(w: &Arc<World>, i: usize, enabled: bool) -> bool {
    let (cli, url, pk) = (w.args.cli.clone(), w.args.database_url.clone(), w.args.product.clone());
    tokio::task::spawn_blocking(move || {
        Command::new(cli)
            .args([
                "--database-url",
                &url,
                "device",
                if enabled { "enable" } else { "disable" },
                &pk,
            ])
            .arg(format!("dev_{i}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// Enable/disable churn: keeps about 5 % of the devices disabled, disables
/// connected devices half of the time, and retries a failed command until
/// it succeeds (the change stays "in flight" until then).
async fn churn(w: Arc<World>) {
    let mut rng = Rng::new(7);
    let n = w.args.devices;
    let target_disabled = (n / w.args.initially_disabled_every.max(1)).max(1);
    let mut disabled: Vec<usize> = (0..n).filter(|&i| !w.initially_enabled[i]).collect();
    let mut retry: Vec<(usize, bool)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(w.args.change_every_ms));
    while !w.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        if w.db_down.load(Ordering::Relaxed) {
            continue;
        }
        let (i, enabled) = if let Some(r) = retry.pop() {
            r
        } else if disabled.len() < target_disabled || rng.below(2) == 0 && disabled.len() < 2 * target_disabled {
            // Disable: a connected device half of the time.
            let want_connected = rng.below(2) == 0;
            let mut pick = None;
            for _ in 0..200 {
                let i = rng.below(n as u64) as usize;
                let d = lock(&w.devs[i]);
                let enabled_now = d.changes.last().map_or(w.initially_enabled[i], |c| c.enabled);
                if enabled_now && (!want_connected || d.conn.is_some()) {
                    pick = Some(i);
                    break;
                }
            }
            let Some(i) = pick else { continue };
            disabled.push(i);
            (i, false)
        } else {
            let k = rng.below(disabled.len() as u64) as usize;
            (disabled.swap_remove(k), true)
        };
        {
            let mut d = lock(&w.devs[i]);
            let open = d.changes.last().is_some_and(|c| c.done.is_none());
            if !open {
                d.changes.push(Change {
                    start: Instant::now(),
                    done: None,
                    enabled,
                });
            }
        }
        let ok = set_enabled(&w, i, enabled).await;
        let done = Instant::now();
        if !ok {
            w.c.changes_failed.fetch_add(1, Ordering::Relaxed);
            retry.push((i, enabled));
            continue;
        }
        w.c.changes_ok.fetch_add(1, Ordering::Relaxed);
        {
            let mut d = lock(&w.devs[i]);
            if let Some(last) = d.changes.last_mut() {
                last.done = Some(done);
            }
        }
        if !enabled {
            // A connected device must be closed within the window.
            let w2 = Arc::clone(&w);
            tokio::spawn(async move {
                let deadline = done + w2.window;
                tokio::time::sleep_until(deadline.into()).await;
                let d = lock(&w2.devs[i]);
                let still_disabled = d.changes.last().is_some_and(|c| !c.enabled);
                if let Some((id, connack)) = d.conn
                    && still_disabled
                    && connack <= deadline
                {
                    let hist = w2.history(&d);
                    drop(d);
                    w2.wrong(
                        &w2.c.wrong_not_kicked,
                        format!(
                            "dev_{i} (connection {id}, connected {:.3}s) still connected {:.1} s after its disable; changes: [{hist}]",
                            w2.secs(connack),
                            w2.window.as_secs_f64()
                        ),
                    );
                }
            });
        }
    }
}

fn shell(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Stops the database `restarts` times, evenly over the run.
async fn restarts(w: Arc<World>, log: Arc<Mutex<Vec<String>>>) {
    let run = Duration::from_secs(w.args.seconds);
    for k in 1..=w.args.restarts {
        let at = w.t0 + run * k / (w.args.restarts + 1);
        tokio::time::sleep_until(at.into()).await;
        if w.stop.load(Ordering::Relaxed) {
            return;
        }
        w.db_down.store(true, Ordering::Relaxed);
        let stop = w.args.db_stop.clone();
        let stopped = tokio::task::spawn_blocking(move || shell(&stop)).await.unwrap_or(false);
        let down = Instant::now();
        eprintln!(
            "database stopped at {:.1}s ({})",
            w.secs(down),
            if stopped { "ok" } else { "FAILED" }
        );
        tokio::time::sleep(Duration::from_secs(w.args.down_secs)).await;
        let start = w.args.db_start.clone();
        let started = tokio::task::spawn_blocking(move || shell(&start))
            .await
            .unwrap_or(false);
        let up = Instant::now();
        eprintln!(
            "database started at {:.1}s ({})",
            w.secs(up),
            if started { "ok" } else { "FAILED" }
        );
        w.db_down.store(false, Ordering::Relaxed);
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{:.0}s..{:.0}s", w.secs(down), w.secs(up)));
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The monitor principal: subscribed to every device's topics; a message
/// marked FOREIGN reaching it is a publish the ACL should have refused.
async fn monitor(w: Arc<World>) {
    let (name, password) = w.args.monitor.split_once(':').unwrap_or(("monitor", ""));
    while !w.stop.load(Ordering::Relaxed) {
        let mut o = MqttOptions::new("soak-monitor", "127.0.0.1", w.args.port);
        o.set_credentials(name, password)
            .set_keep_alive(Duration::from_secs(60));
        o.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut events) = AsyncClient::new(o, 1024);
        let topic = format!("/sys/{}/+/thing/#", w.args.product);
        let _ = client.subscribe(topic, QoS::AtMostOnce).await;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    w.c.monitor_messages.fetch_add(1, Ordering::Relaxed);
                    if p.payload.starts_with(b"FOREIGN") {
                        w.wrong(
                            &w.c.wrong_foreign_delivered,
                            format!(
                                "a foreign publish reached {}: {}",
                                p.topic,
                                String::from_utf8_lossy(&p.payload)
                            ),
                        );
                    }
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code != ConnectReturnCode::Success => {
                    eprintln!("monitor refused: {:?}", ack.code);
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    if !w.stop.load(Ordering::Relaxed) {
                        eprintln!("monitor connection lost at {:.1}s: {e}", w.secs(Instant::now()));
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args([url, "-Atq", "-F", ",", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The end check: every state write the broker owed the database is there.
fn lost_writes(w: &World) -> Result<(u64, Vec<String>), String> {
    let url = &w.args.database_url;
    let pk = &w.args.product;
    let mut lost = 0u64;
    let mut notes = Vec::new();
    let mut note = |lost: &mut u64, s: String| {
        *lost += 1;
        if notes.len() < 30 {
            eprintln!("LOST: {s}");
            notes.push(s);
        }
    };
    let rows = psql(
        url,
        &format!(
            "SELECT device_key, enabled, online, COALESCE(last_seen_at, 0) FROM devices WHERE product_key = '{pk}'"
        ),
    )?;
    let mut seen = 0usize;
    for line in rows.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let [dk, enabled, online, last_seen] = f[..] else {
            continue;
        };
        let Some(i) = dk.strip_prefix("dev_").and_then(|s| s.parse::<usize>().ok()) else {
            continue;
        };
        if i >= w.devs.len() {
            continue;
        }
        seen += 1;
        let d = lock(&w.devs[i]);
        let want = d.changes.last().map_or(w.initially_enabled[i], |c| c.enabled);
        if (enabled == "1") != want {
            note(
                &mut lost,
                format!("{dk}: enabled={enabled} in the database, the driver last set {want}"),
            );
        }
        if online != "0" {
            note(
                &mut lost,
                format!("{dk}: online={online} after every client disconnected"),
            );
        }
        let last_seen: i64 = last_seen.parse().unwrap_or(0);
        if d.logins > 0 && last_seen < d.last_accepted_connect_ms {
            note(
                &mut lost,
                format!(
                    "{dk}: last_seen_at {last_seen} older than its last accepted CONNECT {} ({} ms)",
                    d.last_accepted_connect_ms,
                    d.last_accepted_connect_ms - last_seen
                ),
            );
        }
    }
    if seen != w.devs.len() {
        note(
            &mut lost,
            format!("{} devices in the database, {} expected", seen, w.devs.len()),
        );
    }
    // Events: one `login` per accepted login, one `login_refused` per refusal,
    // one `kicked` per kick the driver saw.
    let rows = psql(
        url,
        &format!(
            "SELECT subject, kind, count(*) FROM events WHERE at >= {} GROUP BY 1, 2",
            w.start_ms - 1000
        ),
    )?;
    let mut events: HashMap<(usize, String), u64> = HashMap::new();
    let mut totals: HashMap<String, u64> = HashMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.rsplitn(3, ',').collect();
        let [count, kind, subject] = f[..] else { continue };
        let count: u64 = count.parse().unwrap_or(0);
        *totals.entry(kind.to_owned()).or_default() += count;
        if let Some(i) = subject
            .rsplit(['/', '&'])
            .find_map(|s| s.strip_prefix("dev_").and_then(|n| n.parse::<usize>().ok()))
        {
            *events.entry((i, kind.to_owned())).or_default() += count;
        }
    }
    let mut sums = (0u64, 0u64, 0u64);
    for (i, m) in w.devs.iter().enumerate() {
        let d = lock(m);
        let logins = events.get(&(i, "login".to_owned())).copied().unwrap_or(0);
        let refused = events.get(&(i, "login_refused".to_owned())).copied().unwrap_or(0);
        let kicked = events.get(&(i, "kicked".to_owned())).copied().unwrap_or(0);
        sums.0 += logins;
        sums.1 += refused;
        sums.2 += kicked;
        if logins < d.logins {
            note(
                &mut lost,
                format!("dev_{i}: {} accepted logins, {logins} `login` events", d.logins),
            );
        }
        if refused < d.refusals {
            note(
                &mut lost,
                format!("dev_{i}: {} refusals, {refused} `login_refused` events", d.refusals),
            );
        }
        if kicked < d.kicks {
            note(
                &mut lost,
                format!("dev_{i}: {} kicks seen, {kicked} `kicked` events", d.kicks),
            );
        }
    }
    println!(
        "events in the database: login {} (per device sum {}), login_refused {} ({}), kicked {} ({}); all kinds: {:?}",
        totals.get("login").copied().unwrap_or(0),
        sums.0,
        totals.get("login_refused").copied().unwrap_or(0),
        sums.1,
        totals.get("kicked").copied().unwrap_or(0),
        sums.2,
        totals
    );
    Ok((lost, notes))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    let n = args.devices;
    let every = args.initially_disabled_every.max(1);
    let w = Arc::new(World {
        t0: Instant::now(),
        start_ms: now_ms(),
        window: Duration::from_millis(args.refresh_ms + 2000),
        devs: (0..n).map(|_| Mutex::new(Dev::default())).collect(),
        initially_enabled: (0..n).map(|i| i % every != 0).collect(),
        stop: AtomicBool::new(false),
        db_down: AtomicBool::new(false),
        next_conn: AtomicU64::new(0),
        c: Counters::default(),
        wrong: Mutex::new(Vec::new()),
        args,
    });
    let outages = Arc::new(Mutex::new(Vec::new()));
    let mon = tokio::spawn(monitor(Arc::clone(&w)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tasks = Vec::new();
    for k in 0..w.args.concurrency {
        tasks.push(tokio::spawn(worker(Arc::clone(&w), 1000 + k as u64)));
    }
    let churner = tokio::spawn(churn(Arc::clone(&w)));
    let restarter = tokio::spawn(restarts(Arc::clone(&w), Arc::clone(&outages)));

    // Resident memory every 10 s, with a progress line.
    let mut rss: Vec<(u64, u64)> = Vec::new();
    let run = Duration::from_secs(w.args.seconds);
    let mut t = 0u64;
    loop {
        if let Some(kb) = rss_kb(w.args.broker_pid) {
            rss.push((t, kb));
        } else {
            eprintln!("the broker (pid {}) is gone at {t}s", w.args.broker_pid);
            break;
        }
        let c = &w.c;
        eprintln!(
            "t={t:>4}s rss={:>7} kB logins={} refused={} in-flight={} kicks={} changes={} (failed {}) errors={} wrong={}",
            rss.last().map_or(0, |r| r.1),
            c.logins.load(Ordering::Relaxed),
            c.refusals.load(Ordering::Relaxed),
            c.in_flight.load(Ordering::Relaxed),
            c.kicks.load(Ordering::Relaxed),
            c.changes_ok.load(Ordering::Relaxed),
            c.changes_failed.load(Ordering::Relaxed),
            c.connect_errors.load(Ordering::Relaxed),
            w.wrong.lock().map_or(0, |v| v.len()),
        );
        if w.t0.elapsed() >= run {
            break;
        }
        t += 10;
        tokio::time::sleep_until((w.t0 + Duration::from_secs(t)).into()).await;
    }
    w.stop.store(true, Ordering::Relaxed);
    restarter.abort();
    let _ = churner.await;
    for task in tasks {
        let _ = task.await;
    }
    let run_secs = w.t0.elapsed().as_secs_f64();
    // Give kick checks in progress their window, then the write-behind time to flush.
    tokio::time::sleep(w.window + Duration::from_secs(w.args.settle_secs)).await;
    mon.abort();
    if let Some(kb) = rss_kb(w.args.broker_pid) {
        rss.push(((run_secs + w.args.settle_secs as f64) as u64, kb));
    }
    let lost = match lost_writes(&w) {
        Ok((lost, _)) => lost,
        Err(e) => {
            eprintln!("cannot check the database: {e}");
            u64::MAX
        }
    };

    let c = &w.c;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let wrong = g(&c.wrong_accept)
        + g(&c.wrong_refuse)
        + g(&c.wrong_close)
        + g(&c.wrong_not_kicked)
        + g(&c.wrong_foreign_sub)
        + g(&c.wrong_foreign_delivered)
        + g(&c.wrong_own_lost);
    println!("\n== soak summary ({} devices, {:.0} s) ==", n, run_secs);
    println!(
        "logins accepted {} ({:.1}/s), refused {}, decisions in a propagation window {}, connect errors {}",
        g(&c.logins),
        g(&c.logins) as f64 / run_secs,
        g(&c.refusals),
        g(&c.in_flight),
        g(&c.connect_errors)
    );
    println!(
        "enable/disable changes {} (CLI failures retried: {}), kicks {}, database outages {:?}",
        g(&c.changes_ok),
        g(&c.changes_failed),
        g(&c.kicks),
        outages.lock().map(|v| v.clone()).unwrap_or_default()
    );
    println!(
        "own publishes {} (echoed {}), foreign publishes {}, foreign subscriptions refused {}, monitor saw {} messages",
        g(&c.own_published),
        g(&c.own_echoed),
        g(&c.foreign_published),
        g(&c.foreign_subs_refused),
        g(&c.monitor_messages)
    );
    println!(
        "wrong decisions {wrong}: accepted while disabled {}, refused while enabled {}, closed while enabled {}, not kicked in time {}, foreign subscription granted {}, foreign publish delivered {}, own publishes lost {}",
        g(&c.wrong_accept),
        g(&c.wrong_refuse),
        g(&c.wrong_close),
        g(&c.wrong_not_kicked),
        g(&c.wrong_foreign_sub),
        g(&c.wrong_foreign_delivered),
        g(&c.wrong_own_lost)
    );
    println!("lost writes {lost}");
    let curve: Vec<String> = rss.iter().map(|(t, kb)| format!("{t}s:{}", kb / 1024)).collect();
    println!("broker RSS (MiB) every 10 s: {}", curve.join(" "));
    let warm = (w.args.seconds as f64 * w.args.warmup) as u64;
    let after: Vec<u64> = rss.iter().filter(|(t, _)| *t >= warm).map(|r| r.1).collect();
    if let (Some(min), Some(max)) = (after.iter().min(), after.iter().max()) {
        let third = (after.len() / 3).max(1);
        let mean = |s: &[u64]| s.iter().sum::<u64>() as f64 / s.len().max(1) as f64;
        println!(
            "RSS after warm-up ({warm} s): min {} kB, max {} kB (spread {:.1} %), first third mean {:.0} kB, last third mean {:.0} kB",
            min,
            max,
            (*max - *min) as f64 * 100.0 / *min as f64,
            mean(&after[..third]),
            mean(&after[after.len() - third..])
        );
    }
    if wrong > 0 || lost > 0 {
        std::process::exit(1);
    }
}
