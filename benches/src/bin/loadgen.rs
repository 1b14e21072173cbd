//! The end-to-end load generator: opens N MQTT connections (signed device
//! logins, plain username/password, or anonymous), subscribes each to its
//! own topic, publishes M messages per connection, and reports connects/s
//! and messages/s as one JSON line. `benches/compare.sh` runs it against
//! Mosquitto with and without devicegate and the other auth methods.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use devicegate::sign::{Content, HashAlg, Scheme, SignMethod, compute};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::Semaphore;

/// How the clients log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Auth {
    /// No credentials.
    None,
    /// Username `dev_N`, client id `dev_N`, the shared secret as password.
    Password,
    /// devicegate EnOS signed logins for device `dev_N` of the product.
    Devicegate,
}

/// Load generator options.
#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    #[arg(long, default_value_t = 100)]
    messages: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    #[arg(long, value_enum)]
    auth: Auth,
    #[arg(long, default_value = "LoadPk01")]
    product: String,
    /// The device secret (devicegate) or password (password).
    #[arg(long, default_value = "load-secret-0001")]
    secret: String,
    /// QoS of the publishes and subscriptions (0 or 1).
    #[arg(long, default_value_t = 0)]
    qos: u8,
}

fn options(args: &Args, i: usize) -> MqttOptions {
    let dk = format!("dev_{i}");
    let client_id = match args.auth {
        Auth::Devicegate => {
            let ts = "1700000000000";
            let content = Content::new(&[
                ("clientId", &dk),
                ("deviceKey", &dk),
                ("productKey", &args.product),
                ("timestamp", ts),
            ]);
            let method = SignMethod {
                alg: HashAlg::Sha256,
                scheme: Scheme::AppendSecret,
            };
            let password = compute(method, &content, args.secret.as_bytes()).to_hex_upper();
            let mut o = MqttOptions::new(
                format!("{dk}|securemode=2,signmethod=sha256,timestamp={ts}|"),
                &args.host,
                args.port,
            );
            o.set_credentials(format!("{dk}&{}", args.product), password);
            return finish(o);
        }
        _ => dk.clone(),
    };
    let mut o = MqttOptions::new(client_id, &args.host, args.port);
    if args.auth == Auth::Password {
        o.set_credentials(dk, args.secret.clone());
    }
    finish(o)
}

fn finish(mut o: MqttOptions) -> MqttOptions {
    o.set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_max_packet_size(1 << 20, 1 << 20);
    o
}

async fn connect(options: MqttOptions) -> Result<(AsyncClient, EventLoop), String> {
    let (client, mut events) = AsyncClient::new(options, 256);
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) if ack.code == ConnectReturnCode::Success => {
                return Ok((client, events));
            }
            Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => return Err(format!("refused: {:?}", ack.code)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no CONNACK within 10 s".to_owned()),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args = Arc::new(Args::parse());
    let qos = if args.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    // Phase 1: connect everyone, `concurrency` at a time.
    let gate = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let start = Instant::now();
    let mut pending = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let (gate, args) = (Arc::clone(&gate), Arc::clone(&args));
        pending.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.map_err(|e| e.to_string())?;
            connect(options(&args, i)).await
        }));
    }
    let mut clients = Vec::with_capacity(args.clients);
    let mut failures = 0usize;
    let mut first_error = None;
    for task in pending {
        match task.await.map_err(|e| e.to_string())? {
            Ok(c) => clients.push(c),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let connect_secs = start.elapsed().as_secs_f64();
    if clients.is_empty() {
        return Err(format!("no client connected: {}", first_error.unwrap_or_default()));
    }
    // Phase 2: each subscribes to its own topic; then every loop runs in a
    // task that counts the messages coming back.
    let received = Arc::new(AtomicU64::new(0));
    let subscribed = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::with_capacity(clients.len());
    for (i, (client, mut events)) in clients.into_iter().enumerate() {
        let topic = format!("/sys/{}/dev_{i}/thing/measurepoint/post", args.product);
        client.subscribe(topic.clone(), qos).await.map_err(|e| e.to_string())?;
        let (received, subscribed) = (Arc::clone(&received), Arc::clone(&subscribed));
        tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                match event {
                    Event::Incoming(Packet::SubAck(_)) => {
                        subscribed.fetch_add(1, Ordering::Relaxed);
                    }
                    Event::Incoming(Packet::Publish(_)) => {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        });
        senders.push((client, topic));
    }
    let clients_n = senders.len() as u64;
    let wait = Instant::now();
    while subscribed.load(Ordering::Relaxed) < clients_n && wait.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Phase 3: publish M messages per client and wait for them to come back.
    let expected = clients_n * args.messages as u64;
    let payload = br#"{"id":"1","params":{"measurepoints":{"temp":21.5}}}"#.to_vec();
    let start = Instant::now();
    let mut publishing = Vec::with_capacity(senders.len());
    for (client, topic) in &senders {
        let (client, topic, payload, n) = (client.clone(), topic.clone(), payload.clone(), args.messages);
        publishing.push(tokio::spawn(async move {
            for _ in 0..n {
                if client
                    .publish(topic.clone(), qos, false, payload.clone())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        }));
    }
    for task in publishing {
        task.await.map_err(|e| e.to_string())?;
    }
    let deadline = Duration::from_secs(120);
    let mut last = (0, Instant::now());
    while received.load(Ordering::Relaxed) < expected && start.elapsed() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = received.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    let message_secs = start.elapsed().as_secs_f64();
    let got = received.load(Ordering::Relaxed);
    println!(
        "{{\"auth\":\"{:?}\",\"clients\":{},\"failed_connects\":{failures},\"connect_secs\":{connect_secs:.3},\
         \"connects_per_sec\":{:.0},\"messages\":{expected},\"received\":{got},\"message_secs\":{message_secs:.3},\
         \"messages_per_sec\":{:.0}}}",
        args.auth,
        clients_n,
        clients_n as f64 / connect_secs,
        got as f64 / message_secs,
    );
    for (client, _) in senders {
        let _ = client.disconnect().await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    match first_error {
        Some(e) if failures > 0 => Err(format!("{failures} connects failed, first: {e}")),
        _ => Ok(()),
    }
}
