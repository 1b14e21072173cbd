//! End to end: the ntex-mqtt broker of `devicegate_ntex::broker` on a free
//! port, over a real SQLite database prepared with the CLI, against real
//! rumqttc clients speaking MQTT 3.1.1 and MQTT 5.

use std::time::Duration;

use devicegate_ntex::{Gate, broker};
use devicegate_test_support::mqtt::{connect, eventually, ready_hooks, seed, spawn_listener};
use devicegate_test_support::scenarios::{
    DeviceLogin, both_dialects_log_in, client_ids_cannot_be_taken_over, closed, device_show, disabling_kicks,
    dynamic_activation, own_topics_are_routed, seed_aliyun, seed_client_id_twin, suback,
};
use devicegate_test_support::{self as db, sign};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as Code5, Packet as Packet5, PubAckReason, SubscribeReasonCode as Sub5,
};
use rumqttc::{ConnectReturnCode, QoS, SubscribeReasonCode};

/// Starts the broker on a free port over `url`; returns the port once the
/// registry is loaded and the port accepts connections.
fn start(url: &str) -> u16 {
    let gate = Gate::new(ready_hooks(url));
    gate.spawn_ticker(Duration::from_millis(100)).unwrap();
    spawn_listener(move |addr| {
        let _ = broker::serve(addr, gate);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_both_dialects_and_each_refusal_code_v3() {
    let db = db::sqlite();
    seed(&db.url);
    seed_aliyun(&db.url);
    let port = start(&db.url);
    let _online = both_dialects_log_in(&db.url, port).await;
    let wrong = sign("Ab3dEf9h", "dev_0001", "WrongSecret00000", &[]);
    assert_eq!(
        connect(port, &wrong).await.err(),
        Some(ConnectReturnCode::BadUserNamePassword)
    );
    let enos = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    assert_eq!(
        connect(port, &(enos.0, other.1, other.2)).await.err(),
        Some(ConnectReturnCode::BadClientId)
    );
    let anonymous = ("anonymous".to_owned(), String::new(), String::new());
    assert_eq!(
        connect(port, &anonymous).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reach_only_their_own_topics_v3() {
    let db = db::sqlite();
    seed(&db.url);
    let port = start(&db.url);
    let (client, mut events) = own_topics_are_routed(port, &DeviceLogin::triple(port)).await;
    client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    assert_eq!(
        suback(&mut events).await,
        [SubscribeReasonCode::Failure],
        "SUBACK 0x80 for that filter"
    );
    // MQTT 3.1.1 has no negative PUBACK: a foreign publish closes the connection.
    let foreign = "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post";
    client.publish(foreign, QoS::AtLeastOnce, false, "{}").await.unwrap();
    assert!(closed(&mut events).await, "a denied v3 publish closes the connection");
    eventually("offline after the close", || {
        device_show(&db.url, "dev_0001")["online"] == false
    })
    .await;
}

/// A connected MQTT 5 client, or the CONNACK reason.
async fn connect5(
    port: u16,
    (client_id, user, pass): &(String, String, String),
) -> Result<(rumqttc::v5::AsyncClient, rumqttc::v5::EventLoop), Code5> {
    let mut options = rumqttc::v5::MqttOptions::new(client_id, "127.0.0.1", port);
    options
        .set_credentials(user, pass)
        .set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = rumqttc::v5::AsyncClient::new(options, 16);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll())
            .await
            .expect("CONNACK")
        {
            Ok(rumqttc::v5::Event::Incoming(Packet5::ConnAck(ack))) if ack.code == Code5::Success => {
                return Ok((client, events));
            }
            Ok(rumqttc::v5::Event::Incoming(Packet5::ConnAck(ack))) => return Err(ack.code),
            Ok(_) => {}
            Err(rumqttc::v5::ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("connection failed: {e}"),
        }
    }
}

/// The first incoming MQTT 5 packet `pick` accepts within 5 s, or the
/// client's error.
async fn next5<T>(
    events: &mut rumqttc::v5::EventLoop,
    mut pick: impl FnMut(&Packet5) -> Option<T>,
) -> Result<T, String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(rumqttc::v5::Event::Incoming(packet))) => {
                if let Some(found) = pick(&packet) {
                    return Ok(found);
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("{e:?}")),
            Err(_) => panic!("nothing within 5 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_gets_reason_codes_per_filter_and_publish() {
    let db = db::sqlite();
    seed(&db.url);
    let port = start(&db.url);
    let wrong = sign("Ab3dEf9h", "dev_0001", "WrongSecret00000", &[]);
    assert_eq!(connect5(port, &wrong).await.err(), Some(Code5::BadUserNamePassword));
    let creds = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (client, mut events) = connect5(port, &creds).await.expect("accepted");
    client
        .subscribe("/sys/Ab3dEf9h/dev_0001/thing/service/+", QoS5::AtLeastOnce)
        .await
        .unwrap();
    let granted = next5(&mut events, |p| match p {
        Packet5::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(granted, Ok([Sub5::Success(QoS5::AtLeastOnce)].to_vec()));
    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    client.publish(own, QoS5::AtLeastOnce, false, "{}").await.unwrap();
    let puback = |p: &Packet5| match p {
        Packet5::PubAck(ack) => Some(ack.reason),
        _ => None,
    };
    assert_eq!(next5(&mut events, puback).await, Ok(PubAckReason::Success));
    // rumqttc reports a refused filter or publish as an error carrying the
    // reason code the broker sent (and then reconnects).
    client.subscribe("/sys/+/+/#", QoS5::AtMostOnce).await.unwrap();
    let refused = next5(&mut events, |_| None::<()>).await.unwrap_err();
    assert!(refused.contains("SubFail { reason: NotAuthorized }"), "{refused}");
    let (client, mut events) = connect5(port, &creds).await.expect("accepted again");
    let foreign = "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post";
    client.publish(foreign, QoS5::AtLeastOnce, false, "{}").await.unwrap();
    let denied = next5(&mut events, puback).await.unwrap_err();
    assert!(denied.contains("PubAckFail { reason: NotAuthorized }"), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_activation_pushes_the_secret_to_the_session() {
    let db = db::sqlite();
    seed(&db.url);
    dynamic_activation(&db.url, start(&db.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_device_kicks_it_and_it_goes_offline() {
    let db = db::sqlite();
    seed(&db.url);
    disabling_kicks(&db.url, &DeviceLogin::triple(start(&db.url))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_take_over_another_devices_client_id() {
    let db = db::sqlite();
    seed(&db.url);
    seed_client_id_twin(&db.url);
    let port = start(&db.url);
    client_ids_cannot_be_taken_over(port).await;
}

/// A free local port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA, a server certificate for 127.0.0.1 and certificates for the test
/// fleet's `dev_0001` and `dev_0003`, all from the `devicegate` CLI.
fn pki(url: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).display().to_string();
    devicegate_test_support::cli(url, &["ca", "init", "--dir", &path("ca")]);
    devicegate_test_support::cli(
        url,
        &[
            "ca",
            "server-cert",
            "--dir",
            &path("ca"),
            "--ip",
            "127.0.0.1",
            "--out",
            &path("server"),
        ],
    );
    for dk in ["dev_0001", "dev_0003"] {
        devicegate_test_support::cli(
            url,
            &[
                "device",
                "cert",
                "issue",
                "Ab3dEf9h",
                dk,
                "--ca-dir",
                &path("ca"),
                "--out",
                &path(dk),
            ],
        );
    }
    dir
}

/// Starts the broker with a plain and a TLS listener (client certificates
/// from the devicegate CA required); returns (plain port, TLS port).
async fn start_tls(url: &str, pki: &std::path::Path) -> (u16, u16) {
    let config =
        devicegate_ntex::tls::server_config(&pki.join("server.pem"), &pki.join("server.key"), &pki.join("ca/ca.pem"))
            .unwrap();
    let (plain, tls) = (free_port(), free_port());
    let gate = Gate::new(ready_hooks(url));
    gate.spawn_ticker(Duration::from_millis(100)).unwrap();
    let listeners = broker::Listeners {
        plain: Some(([127, 0, 0, 1], plain).into()),
        tls: Some((([127, 0, 0, 1], tls).into(), config)),
    };
    std::thread::spawn(move || broker::serve_listeners(listeners, gate));
    eventually("both listeners accept", || {
        [plain, tls]
            .iter()
            .all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
    })
    .await;
    (plain, tls)
}

/// rumqttc over TLS (rustls) with `dk`'s client certificate, no username.
async fn certificate_client(
    port: u16,
    pki: &std::path::Path,
    dk: &str,
) -> Result<(rumqttc::AsyncClient, rumqttc::EventLoop), ConnectReturnCode> {
    let mut options = rumqttc::MqttOptions::new(dk, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(1));
    options.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple {
        ca: std::fs::read(pki.join("ca/ca.pem")).unwrap(),
        alpn: None,
        client_auth: Some((
            std::fs::read(pki.join(format!("{dk}.pem"))).unwrap(),
            std::fs::read(pki.join(format!("{dk}.key"))).unwrap(),
        )),
    }));
    let (client, mut events) = rumqttc::AsyncClient::new(options, 16);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll())
            .await
            .expect("CONNACK within 5 s")
        {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
                return Ok((client, events));
            }
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack))) => return Err(ack.code),
            Ok(_) => {}
            Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return Err(code),
            Err(e) => panic!("TLS connection failed: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_logs_in_over_tls_and_a_revoked_one_is_closed_and_refused() {
    let db = db::sqlite();
    seed(&db.url);
    let pki = pki(&db.url);
    let (_plain, tls) = start_tls(&db.url, pki.path()).await;
    let (client, mut events) = certificate_client(tls, pki.path(), "dev_0001")
        .await
        .expect("a registered certificate logs its device in");
    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    devicegate_test_support::mqtt::publish_acked(&client, &mut events, own, "{}").await;
    let (_other, mut other_events) = certificate_client(tls, pki.path(), "dev_0003").await.unwrap();
    eventually("online", || device_show(&db.url, "dev_0001")["online"] == true).await;
    let start = std::time::Instant::now();
    devicegate_test_support::cli(&db.url, &["device", "cert", "revoke", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "a revoked certificate's session is closed");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "closed after {elapsed:?}");
    assert!(
        devicegate_test_support::scenarios::stays_open(&mut other_events, Duration::from_secs(2)).await,
        "another device's certificate session stays"
    );
    assert_eq!(
        certificate_client(tls, pki.path(), "dev_0001").await.err(),
        Some(ConnectReturnCode::BadUserNamePassword),
        "a revoked certificate is refused although its chain is valid"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_devices_pass_the_shared_scenarios_over_tls() {
    let db = db::sqlite();
    seed(&db.url);
    let pki = pki(&db.url);
    let (plain, tls) = start_tls(&db.url, pki.path()).await;
    let relay = devicegate_test_support::tls_relay::TlsRelay::certificate(
        tls,
        &pki.path().join("ca/ca.pem"),
        &pki.path().join("dev_0001.pem"),
        &pki.path().join("dev_0001.key"),
    );
    let device = DeviceLogin::tls(relay.port);
    drop(own_topics_are_routed(plain, &device).await);
    devicegate_test_support::scenarios::single_session(&db.url, &device).await;
    disabling_kicks(&db.url, &device).await;
}

/// The MQTT 5 CONNACK the broker on `port` answers `credentials` with,
/// decoded by rumqttc's MQTT 5 codec (its client reports only the code of
/// a refusal, not the properties).
async fn connack5(
    port: u16,
    (client_id, user, pass): &(String, String, String),
) -> rumqttc::v5::mqttbytes::v5::ConnAck {
    use rumqttc::v5::mqttbytes::v5::{Connect, Login, Packet};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connect = Connect {
        keep_alive: 30,
        client_id: client_id.clone(),
        clean_start: true,
        properties: None,
    };
    let login = Login {
        username: user.clone(),
        password: pass.clone(),
    };
    let mut out = bytes::BytesMut::new();
    Packet::Connect(connect, None, Some(login)).write(&mut out).unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(&out).await.unwrap();
    let mut incoming = bytes::BytesMut::new();
    loop {
        match Packet::read(&mut incoming, None) {
            Ok(Packet::ConnAck(ack)) => return ack,
            Ok(other) => panic!("expected CONNACK, got {other:?}"),
            Err(_) => {
                let read = tokio::time::timeout(Duration::from_secs(5), stream.read_buf(&mut incoming))
                    .await
                    .expect("CONNACK within 5 s")
                    .unwrap();
                assert!(read > 0, "closed without CONNACK");
            }
        }
    }
}

/// The broker with an engine that knows its own URL.
fn start_at(url: &str, server_url: &str) -> u16 {
    let config = devicegate::engine::EngineConfig {
        server_url: Some(server_url.to_owned()),
        ..devicegate::engine::EngineConfig::default()
    };
    let gate = Gate::new(devicegate_test_support::mqtt::ready_hooks_with(url, config));
    gate.spawn_ticker(Duration::from_millis(100)).unwrap();
    spawn_listener(move |addr| {
        let _ = broker::serve(addr, gate);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_assigned_elsewhere_gets_0x9c_with_the_server_reference() {
    let db = db::sqlite();
    seed(&db.url);
    devicegate_test_support::cli(
        &db.url,
        &[
            "device",
            "assign",
            "Ab3dEf9h",
            "dev_0001",
            "--server",
            "mqtts://broker-b.example:8883",
        ],
    );
    let port = start_at(&db.url, "mqtt://127.0.0.1:1883");
    let assigned = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let ack = connack5(port, &assigned).await;
    assert_eq!(ack.code, Code5::UseAnotherServer);
    assert_eq!(
        ack.properties.and_then(|p| p.server_reference).as_deref(),
        Some("mqtts://broker-b.example:8883")
    );
    // MQTT 3.1.1 has no such code: refused as not authorized.
    assert_eq!(
        connect(port, &assigned).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    // Unassigned devices, and a wrong secret for the assigned one, learn nothing.
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    assert_eq!(connack5(port, &other).await.code, Code5::Success);
    let wrong = sign("Ab3dEf9h", "dev_0001", "WrongSecret00001", &[]);
    let ack = connack5(port, &wrong).await;
    assert_eq!(ack.code, Code5::BadUserNamePassword);
    assert_eq!(ack.properties.and_then(|p| p.server_reference), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_device_logs_in_over_mqtt5_and_is_closed_at_expiry() {
    // Seed 003 through this broker: an access key from the CLI, a token
    // from `POST /authenticate` of a real `devicegate serve`.
    let db = db::sqlite();
    seed(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("token.key");
    devicegate_test_support::cli(&db.url, &["token", "keygen", "--out", key.to_str().unwrap()]);
    let pair = devicegate_test_support::cli(&db.url, &["device", "access-key", "Ab3dEf9h", "dev_0001"]);
    let service =
        devicegate_test_support::service::Service::start(&db.url, &["--token-key", key.to_str().unwrap()]).await;
    let request = serde_json::json!({"deviceAuthParameters": {
        "accessKey": pair["accessKey"], "secretKey": pair["secretKey"],
    }});
    let answer = service.post("/authenticate", None, &request).await;
    let token = answer.ok(200)["token"].as_str().expect("a token").to_owned();
    let port = start(&db.url);
    // The token with an empty username.
    let bare = ("dev_0001".to_owned(), String::new(), token.clone());
    let (_client, _events) = connect5(port, &bare)
        .await
        .expect("a token with an empty username is accepted");
    own_topics_are_routed(port, &DeviceLogin::token(port, &token)).await;
    let short = devicegate_test_support::scenarios::issue_token(&db.url, &key, Some("3s"));
    devicegate_test_support::scenarios::token_session_ends_at_exp(&DeviceLogin::token(port, &short), 3).await;
}
