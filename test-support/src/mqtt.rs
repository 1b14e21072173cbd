//! MQTT as the broker tests speak it: a real rumqttc client, the shared
//! test fleet, and waiting for packets with a deadline.

use std::process::{Command, Stdio};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS};

/// A connected rumqttc client, or the CONNACK refusal.
pub async fn connect(
    port: u16,
    credentials: &(String, String, String),
) -> Result<(AsyncClient, EventLoop), ConnectReturnCode> {
    connect_with(port, credentials, Duration::from_secs(30)).await
}

/// Tries [`connect`] every 100 ms until the broker accepts the login or
/// `within` has passed: for a change the broker learns through the change
/// feed. Whether it was accepted.
pub async fn accepted_within(port: u16, credentials: &(String, String, String), within: Duration) -> bool {
    let start = std::time::Instant::now();
    loop {
        if connect_with(port, credentials, Duration::from_secs(5)).await.is_ok() {
            return true;
        }
        if start.elapsed() >= within {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`connect`] with a keep-alive interval.
pub async fn connect_with(
    port: u16,
    (client_id, user, pass): &(String, String, String),
    keep_alive: Duration,
) -> Result<(AsyncClient, EventLoop), ConnectReturnCode> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_credentials(user, pass)
        .set_keep_alive(keep_alive)
        .set_clean_session(true);
    let (client, mut events) = AsyncClient::new(options, 16);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll())
            .await
            .expect("CONNACK within 5 s")
        {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                return Ok((client, events));
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(ack.code),
            Ok(_) => {}
            Err(ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("connection failed: {e}"),
        }
    }
}

/// The next incoming packet matching `pick`, within `limit`.
pub async fn next<T>(events: &mut EventLoop, limit: Duration, mut pick: impl FnMut(&Packet) -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(tokio::time::Instant::now())?;
        match tokio::time::timeout(left, events.poll()).await {
            Ok(Ok(Event::Incoming(packet))) => {
                if let Some(found) = pick(&packet) {
                    return Some(found);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return None,
        }
    }
}

/// Products, devices and a principal the broker tests share: EnOS product
/// `Ab3dEf9h` (dynamic activation, product secret `ProdSecretXYZ123`),
/// devices `dev_0001` and `dev_0003` with secrets, `dev_0002` waiting for
/// activation, and principal `backend` (password `backend-pw`) reading
/// every device's data and sending commands.
pub fn seed(url: &str) {
    crate::cli(
        url,
        &[
            "product",
            "create",
            "Ab3dEf9h",
            "--dynamic-activation",
            "--secret",
            "ProdSecretXYZ123",
        ],
    );
    crate::cli(
        url,
        &[
            "device",
            "create",
            "Ab3dEf9h",
            "dev_0001",
            "--secret",
            "S3cretDevice0001",
        ],
    );
    crate::cli(url, &["device", "create", "Ab3dEf9h", "dev_0002", "--no-secret"]);
    crate::cli(
        url,
        &[
            "device",
            "create",
            "Ab3dEf9h",
            "dev_0003",
            "--secret",
            "S3cretDevice0003",
        ],
    );
    let hash_stdin = Command::new(crate::cli_binary())
        .args([
            "--database-url",
            url,
            "principal",
            "create",
            "backend",
            "--password-stdin",
        ])
        .args([
            "--allow",
            "sub:/sys/+/+/thing/#",
            "--allow",
            "pub:/sys/+/+/thing/service/#",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"backend-pw\n")?;
            child.wait()
        })
        .unwrap();
    assert!(hash_stdin.success());
}

/// Publishes with QoS 1 and waits for the PUBACK.
pub async fn publish_acked(client: &AsyncClient, events: &mut EventLoop, topic: &str, payload: &str) {
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.to_owned())
        .await
        .unwrap();
    next(events, Duration::from_secs(5), |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await
    .expect("PUBACK");
}

/// The payload of the next message on `topic`, if one comes within `limit`.
pub async fn message_on(events: &mut EventLoop, topic: &str, limit: Duration) -> Option<Vec<u8>> {
    next(events, limit, |p| match p {
        Packet::Publish(publish) if publish.topic == topic => Some(publish.payload.to_vec()),
        _ => None,
    })
    .await
}

/// Waits up to `limit` for the activation push to the test fleet's
/// `dev_0002` (delivered without a subscription), answers it as the EnOS
/// SDK does, waits for the PUBACK of the answer, and returns the pushed
/// device secret.
pub async fn answer_activation(client: &AsyncClient, events: &mut EventLoop, limit: Duration) -> String {
    let (topic, payload) = next(events, limit, |p| match p {
        Packet::Publish(publish) => Some((publish.topic.clone(), publish.payload.to_vec())),
        _ => None,
    })
    .await
    .expect("activate/info is pushed");
    assert_eq!(topic, "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info");
    let push: serde_json::Value = serde_json::from_slice(&payload).expect("the push is JSON");
    let secret = push["params"]["deviceSecret"]
        .as_str()
        .expect("the push carries deviceSecret")
        .to_owned();
    let reply = format!(
        r#"{{"id": "{}", "code": 200, "data": null, "message": "device activate success"}}"#,
        push["id"].as_str().expect("the push has an id")
    );
    publish_acked(client, events, &format!("{topic}_reply"), &reply).await;
    secret
}

/// Runs `serve` on its own thread for a free port on 127.0.0.1 and returns
/// the port once it accepts connections (10 s at most).
pub fn spawn_listener(serve: impl FnOnce(std::net::SocketAddr) + Send + 'static) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::thread::spawn(move || serve(addr));
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the broker listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    port
}

/// Polls `done` every 50 ms for up to 5 s; fails the test with `what` then.
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The engine on `url` with its registry loaded (10 s at most), following
/// the database every 100 ms: what the embedded-broker tests put behind
/// their adapters.
pub fn ready_hooks(url: &str) -> std::sync::Arc<dyn devicegate::engine::Hooks> {
    ready_hooks_with(url, devicegate::engine::EngineConfig::default())
}

/// [`ready_hooks`] with the engine configuration `config`.
pub fn ready_hooks_with(
    url: &str,
    config: devicegate::engine::EngineConfig,
) -> std::sync::Arc<dyn devicegate::engine::Hooks> {
    use devicegate::sync::{Authenticator, SyncConfig};
    let sync = SyncConfig {
        poll_interval: Duration::from_millis(100),
        ..SyncConfig::default()
    };
    let auth = Authenticator::start(config, sync, url).expect("a supported URL");
    let start = std::time::Instant::now();
    while !auth.is_ready() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the registry loads from {url}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::sync::Arc::new(auth)
}
