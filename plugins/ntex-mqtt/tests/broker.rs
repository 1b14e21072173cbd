//! End to end: the ntex-mqtt broker of `devicegate_ntex::broker` on a free
//! port, over a real SQLite database prepared with the CLI, against real
//! rumqttc clients speaking MQTT 3.1.1 and MQTT 5.

use std::sync::Arc;
use std::time::{Duration, Instant};

use devicegate::engine::{EngineConfig, Hooks};
use devicegate::sync::{Authenticator, SyncConfig};
use devicegate_ntex::{Gate, broker};
use devicegate_test_support::mqtt::{connect, message_on, next, publish_acked, seed};
use devicegate_test_support::{self as db, cli, sign};
use rumqttc::v5::mqttbytes::QoS as QoS5;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode as Code5, Packet as Packet5, PubAckReason, SubscribeReasonCode as Sub5,
};
use rumqttc::{ConnectReturnCode, Packet, QoS, SubscribeReasonCode};
use serde_json::Value;

/// Starts the broker on a free port over `url`; returns the port once the
/// registry is loaded and the port accepts connections.
fn start(url: &str) -> u16 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sync = SyncConfig {
        poll_interval: Duration::from_millis(100),
        ..SyncConfig::default()
    };
    let auth = Arc::new(Authenticator::start(EngineConfig::default(), sync, url).unwrap());
    let start = Instant::now();
    while !auth.is_ready() {
        assert!(start.elapsed() < Duration::from_secs(10), "the registry loads");
        std::thread::sleep(Duration::from_millis(20));
    }
    let hooks: Arc<dyn Hooks> = auth;
    let gate = Gate::new(hooks);
    gate.spawn_ticker(Duration::from_millis(100)).unwrap();
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    std::thread::spawn(move || broker::serve(addr, gate));
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "the broker listens");
        std::thread::sleep(Duration::from_millis(20));
    }
    port
}

fn device(url: &str, dk: &str) -> Value {
    cli(url, &["device", "show", "Ab3dEf9h", dk])
}

/// Polls `done` for up to 5 s.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The return codes of the next SUBACK.
async fn suback(events: &mut rumqttc::EventLoop) -> Vec<SubscribeReasonCode> {
    next(events, Duration::from_secs(5), |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await
    .expect("SUBACK")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_both_dialects_and_each_refusal_code_v3() {
    let db = db::sqlite();
    seed(&db.url);
    cli(&db.url, &["product", "create", "a1B2c3D4e5F", "--dialect", "aliyun"]);
    cli(
        &db.url,
        &["device", "create", "a1B2c3D4e5F", "dev01", "--secret", "secret123"],
    );
    let port = start(&db.url);
    let enos = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (_enos, _enos_events) = connect(port, &enos).await.expect("EnOS device accepted");
    let aliyun = sign("a1B2c3D4e5F", "dev01", "secret123", &["--dialect", "aliyun"]);
    let (_aliyun, _aliyun_events) = connect(port, &aliyun).await.expect("Aliyun device accepted");
    eventually("online in the database", || {
        device(&db.url, "dev_0001")["online"] == true
    })
    .await;
    let wrong = sign("Ab3dEf9h", "dev_0001", "WrongSecret00000", &[]);
    assert_eq!(
        connect(port, &wrong).await.err(),
        Some(ConnectReturnCode::BadUserNamePassword)
    );
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    let mismatched = (enos.0.clone(), other.1, other.2);
    assert_eq!(
        connect(port, &mismatched).await.err(),
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
    let principal = ("backend".to_owned(), "backend".to_owned(), "backend-pw".to_owned());
    let (backend, mut backend_events) = connect(port, &principal).await.expect("principal accepted");
    backend.subscribe("/sys/+/+/thing/#", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(
        suback(&mut backend_events).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    let (client, mut events) = connect(port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    client
        .subscribe("/sys/Ab3dEf9h/dev_0001/thing/service/+", QoS::AtLeastOnce)
        .await
        .unwrap();
    assert_eq!(
        suback(&mut events).await,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );
    client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    assert_eq!(suback(&mut events).await, [SubscribeReasonCode::Failure]);

    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    publish_acked(&client, &mut events, own, r#"{"id":"1","params":{}}"#).await;
    assert!(
        message_on(&mut backend_events, own, Duration::from_secs(5))
            .await
            .is_some(),
        "routed"
    );
    // A command from the backend reaches the device's own subscription.
    let command = "/sys/Ab3dEf9h/dev_0001/thing/service/reboot";
    publish_acked(&backend, &mut backend_events, command, "{}").await;
    assert!(
        message_on(&mut events, command, Duration::from_secs(5)).await.is_some(),
        "command delivered"
    );
    // MQTT 3.1.1 has no negative PUBACK: a foreign publish closes the connection.
    client
        .publish(
            "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post",
            QoS::AtLeastOnce,
            false,
            "{}",
        )
        .await
        .unwrap();
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(rumqttc::Event::Incoming(Packet::PubAck(_)))) => break false,
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => break true,
            Err(_) => panic!("neither PUBACK nor close within 5 s"),
        }
    };
    assert!(closed, "a denied v3 publish closes the connection");
    eventually("offline after the close", || {
        device(&db.url, "dev_0001")["online"] == false
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
    let port = start(&db.url);
    let creds = sign("Ab3dEf9h", "dev_0002", "ProdSecretXYZ123", &["--secure-mode", "3"]);
    let (client, mut events) = connect(port, &creds).await.expect("product-secret login accepted");
    let (topic, payload) = next(&mut events, Duration::from_secs(5), |p| match p {
        Packet::Publish(publish) => Some((publish.topic.clone(), publish.payload.to_vec())),
        _ => None,
    })
    .await
    .expect("activate/info is pushed without a subscription");
    assert_eq!(topic, "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info");
    let push: Value = serde_json::from_slice(&payload).unwrap();
    let secret = push["params"]["deviceSecret"].as_str().unwrap().to_owned();
    let reply = format!(r#"{{"id":"{}","code":200,"data":null}}"#, push["id"].as_str().unwrap());
    let reply_topic = "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info_reply";
    publish_acked(&client, &mut events, reply_topic, &reply).await;
    eventually("the reply activates the device", || {
        !device(&db.url, "dev_0002")["activated_at"].is_null()
    })
    .await;
    drop(client);
    connect(port, &sign("Ab3dEf9h", "dev_0002", &secret, &[]))
        .await
        .expect("login with the delivered secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_device_kicks_it_and_it_goes_offline() {
    let db = db::sqlite();
    seed(&db.url);
    let port = start(&db.url);
    let (_client, mut events) = connect(port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    eventually("online", || device(&db.url, "dev_0001")["online"] == true).await;
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => break,
            Err(_) => panic!("still connected 5 s after the disable"),
        }
    }
    eventually("offline after the kick", || {
        device(&db.url, "dev_0001")["online"] == false
    })
    .await;
}
