//! The scenarios every broker adapter must pass, on the test fleet of
//! [`crate::mqtt::seed`], against a broker listening on `port` over the
//! database `url`. Each adapter's tests run them and add what is specific
//! to its broker (refusal codes, how a denial looks on the wire).

use std::time::Duration;

use rumqttc::{AsyncClient, EventLoop, Packet, QoS, SubscribeReasonCode};
use serde_json::Value;

use crate::cli;
use crate::mqtt::{answer_activation, connect, connect_with, eventually, message_on, next, publish_acked};

/// `devicegate device show Ab3dEf9h DK --json`.
pub fn device_show(url: &str, dk: &str) -> Value {
    cli(url, &["device", "show", "Ab3dEf9h", dk])
}

/// Whether the broker closes the connection within 5 s.
pub async fn closed(events: &mut EventLoop) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => return true,
            Err(_) => return false,
        }
    }
}

/// Whether a login is refused, with a CONNACK code or by a close without
/// one (rumqttd), within 5 s.
pub async fn login_refused(port: u16, (client_id, user, pass): &(String, String, String)) -> bool {
    let mut options = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_credentials(user, pass);
    let (_client, mut events) = AsyncClient::new(options, 4);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(Packet::ConnAck(ack)))) => {
                return ack.code != rumqttc::ConnectReturnCode::Success;
            }
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => return true,
            Err(_) => return false,
        }
    }
}

/// Whether the connection stays open (no error, no close) for `period`.
pub async fn stays_open(events: &mut EventLoop, period: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + period;
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Err(_) => return true,
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => return false,
        }
    }
}

/// The return codes of the next SUBACK.
pub async fn suback(events: &mut EventLoop) -> Vec<SubscribeReasonCode> {
    next(events, Duration::from_secs(5), |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await
    .expect("SUBACK")
}

/// Adds Aliyun product `a1B2c3D4e5F` with device `dev01` (secret
/// `secret123`) to the test fleet; call it before the broker starts.
pub fn seed_aliyun(url: &str) {
    cli(url, &["product", "create", "a1B2c3D4e5F", "--dialect", "aliyun"]);
    cli(
        url,
        &[
            "device",
            "create",
            "a1B2c3D4e5F",
            "dev01",
            "--secret",
            "secret123",
            "--allow-weak-secret",
        ],
    );
}

/// An EnOS and an Aliyun device ([`seed_aliyun`]) log in with their signed
/// triples and show online in the database. Returns their connections, to
/// keep them open.
pub async fn both_dialects_log_in(url: &str, port: u16) -> Vec<(AsyncClient, EventLoop)> {
    let enos = crate::sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let aliyun = crate::sign("a1B2c3D4e5F", "dev01", "secret123", &["--dialect", "aliyun"]);
    let connections = vec![
        connect(port, &enos).await.expect("EnOS device accepted"),
        connect(port, &aliyun).await.expect("Aliyun device accepted"),
    ];
    eventually("online in the database", || {
        device_show(url, "dev_0001")["online"] == true
    })
    .await;
    connections
}

/// How the test fleet's `dev_0001` reaches a broker: a port and the
/// CONNECT fields it sends. With a signed triple the credential is in the
/// fields; over TLS it is the connection (a PSK relay's port), and the
/// fields carry only a client id.
#[derive(Debug, Clone)]
pub struct DeviceLogin {
    /// The port the device connects to.
    pub port: u16,
    /// Client id, username and password.
    pub credentials: (String, String, String),
}

impl DeviceLogin {
    /// `dev_0001` with its signed triple, on `port`.
    pub fn triple(port: u16) -> Self {
        DeviceLogin {
            port,
            credentials: crate::sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]),
        }
    }

    /// `dev_0001` with a device token as its password (IDENTITIES.md §4)
    /// and its `dk&pk` as username: MQTT 3.1.1 allows no password without
    /// a username (rumqttc would send an empty one as none).
    pub fn token(port: u16, token: &str) -> Self {
        DeviceLogin {
            port,
            credentials: ("dev_0001".to_owned(), "dev_0001&Ab3dEf9h".to_owned(), token.to_owned()),
        }
    }

    /// `dev_0001` over a TLS connection on `port` that proves who it is,
    /// with client id `dev_0001` and no username or password.
    pub fn tls(port: u16) -> Self {
        DeviceLogin {
            port,
            credentials: ("dev_0001".to_owned(), String::new(), String::new()),
        }
    }
}

/// The principal reads a device's own publish; the device gets its own
/// command filter and a command the principal sends. The principal
/// connects to `port`, the device as `device` says. Returns the device's
/// connection, for the broker's own denial checks.
pub async fn own_topics_are_routed(port: u16, device: &DeviceLogin) -> (AsyncClient, EventLoop) {
    let principal = ("backend".to_owned(), "backend".to_owned(), "backend-pw".to_owned());
    let (backend, mut backend_events) = connect(port, &principal).await.expect("principal accepted");
    backend.subscribe("/sys/+/+/thing/#", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(
        suback(&mut backend_events).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let (client, mut events) = connect(device.port, &device.credentials)
        .await
        .expect("device accepted");
    client
        .subscribe("/sys/Ab3dEf9h/dev_0001/thing/service/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(
        suback(&mut events).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    publish_acked(&client, &mut events, own, r#"{"id":"1","params":{}}"#).await;
    assert!(
        message_on(&mut backend_events, own, Duration::from_secs(5))
            .await
            .is_some(),
        "routed to the principal"
    );
    let command = "/sys/Ab3dEf9h/dev_0001/thing/service/reboot";
    publish_acked(&backend, &mut backend_events, command, "{}").await;
    assert!(
        message_on(&mut events, command, Duration::from_secs(5)).await.is_some(),
        "command delivered"
    );
    (client, events)
}

/// `dev_0002` logs in with the product secret (securemode 3), receives its
/// device secret without subscribing, confirms, shows activated in the
/// database, and logs in with the secret it received. A 1 s keep-alive
/// bounds brokers that deliver only with the client's next packet.
pub async fn dynamic_activation(url: &str, port: u16) {
    let creds = crate::sign("Ab3dEf9h", "dev_0002", "ProdSecretXYZ123", &["--secure-mode", "3"]);
    let (client, mut events) = connect_with(port, &creds, Duration::from_secs(1))
        .await
        .expect("product-secret login accepted");
    let secret = answer_activation(&client, &mut events, Duration::from_secs(5)).await;
    eventually("the reply activates the device", || {
        !device_show(url, "dev_0002")["activated_at"].is_null()
    })
    .await;
    drop(client);
    connect(port, &crate::sign("Ab3dEf9h", "dev_0002", &secret, &[]))
        .await
        .expect("login with the delivered secret");
}

/// Disabling a connected device in the database closes its connection
/// (with a 1 s keep-alive, for brokers that close only at the client's
/// next packet) and it goes offline.
pub async fn disabling_kicks(url: &str, device: &DeviceLogin) {
    let (_client, mut events) = connect_with(device.port, &device.credentials, Duration::from_secs(1))
        .await
        .expect("accepted");
    eventually("online", || device_show(url, "dev_0001")["online"] == true).await;
    cli(url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "closed after the disable");
    eventually("offline after the kick", || {
        device_show(url, "dev_0001")["online"] == false
    })
    .await;
}

/// A device token for `dev_0001` from `devicegate token issue` with the
/// key file `key` (made by `devicegate token keygen`), living `ttl`
/// (`15m`, `4s`, …; the product's TTL when `None`).
pub fn issue_token(url: &str, key: &std::path::Path, ttl: Option<&str>) -> String {
    let key = key.to_str().expect("a UTF-8 path");
    let mut args = vec!["token", "issue", "Ab3dEf9h", "dev_0001", "--key", key];
    if let Some(ttl) = ttl {
        args.extend(["--ttl", ttl]);
    }
    cli(url, &args)["token"].as_str().expect("a token").to_owned()
}

/// A token session ends when the token expires: accepted, open until
/// `exp`, closed within 2 s after it (PROTOCOL-independent, IDENTITIES.md
/// §4). `token` must live `ttl_secs` from about now.
pub async fn token_session_ends_at_exp(device: &DeviceLogin, ttl_secs: u64) {
    let issued = std::time::Instant::now();
    let (_client, mut events) = connect_with(device.port, &device.credentials, Duration::from_secs(1))
        .await
        .expect("token login accepted");
    let open_until = Duration::from_secs(ttl_secs.saturating_sub(2));
    assert!(
        stays_open(&mut events, open_until.saturating_sub(issued.elapsed())).await,
        "the session stays open while the token is valid"
    );
    let limit = Duration::from_secs(ttl_secs + 2);
    loop {
        match tokio::time::timeout(Duration::from_secs(1), events.poll()).await {
            Ok(Err(_)) => break,
            _ => assert!(issued.elapsed() < limit, "closed within 2 s of exp"),
        }
    }
    assert!(
        issued.elapsed() >= Duration::from_secs(ttl_secs.saturating_sub(1)),
        "not closed before exp"
    );
}

/// Single session and online state (PROTOCOL.md §9 S4): the device shows
/// online once logged in, a second login of the same device closes the
/// first, and the device goes offline when the second disconnects.
pub async fn single_session(url: &str, device: &DeviceLogin) {
    let (_first, mut first_events) = connect_with(device.port, &device.credentials, Duration::from_secs(1))
        .await
        .expect("first login accepted");
    eventually("online", || device_show(url, "dev_0001")["online"] == true).await;
    let (second, mut second_events) = connect_with(device.port, &device.credentials, Duration::from_secs(1))
        .await
        .expect("second login accepted");
    assert!(closed(&mut first_events).await, "the first session is closed");
    assert!(
        stays_open(&mut second_events, Duration::from_secs(2)).await,
        "the second session stays"
    );
    assert_eq!(device_show(url, "dev_0001")["online"], true);
    second.disconnect().await.unwrap();
    let _ = stays_open(&mut second_events, Duration::from_millis(500)).await;
    eventually("offline after the disconnect", || {
        device_show(url, "dev_0001")["online"] == false
    })
    .await;
}

/// Adds product `Zz9Zz9Zz` with a device `dev_0001` (secret
/// `OtherSecret0001`): an SDK that sends a fixed timestamp gives it the same
/// client id as `dev_0001` of the test fleet. Call it before the broker starts.
pub fn seed_client_id_twin(url: &str) {
    cli(url, &["product", "create", "Zz9Zz9Zz"]);
    cli(
        url,
        &[
            "device",
            "create",
            "Zz9Zz9Zz",
            "dev_0001",
            "--secret",
            "OtherSecret0001",
            "--allow-weak-secret",
        ],
    );
}

/// A device with valid credentials and another device's live client id
/// ([`seed_client_id_twin`]) is refused, however the broker refuses, and
/// the victim keeps its session; the same device reconnecting still takes
/// its own session over. A 1 s keep-alive makes brokers that act only on
/// the client's next packet show a close within the wait.
pub async fn client_ids_cannot_be_taken_over(port: u16) {
    let ts = ["--timestamp", "1700000000000"];
    let victim = crate::sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &ts);
    let twin = crate::sign("Zz9Zz9Zz", "dev_0001", "OtherSecret0001", &ts);
    assert_eq!(victim.0, twin.0, "the same client id");
    let (_victim, mut victim_events) = connect_with(port, &victim, Duration::from_secs(1))
        .await
        .expect("victim accepted");
    assert!(
        login_refused(port, &twin).await,
        "a login with another device's live client id is refused"
    );
    assert!(
        stays_open(&mut victim_events, Duration::from_secs(3)).await,
        "the victim keeps its session"
    );
    let (_again, _events) = connect(port, &victim).await.expect("the device itself takes over");
    assert!(closed(&mut victim_events).await, "its old session is closed");
}
