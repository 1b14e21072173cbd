//! End to end: a real `mosquitto` process per test, on a free port, with
//! the plugin loaded and a database prepared through the `devicegate` CLI;
//! real MQTT clients (rumqttc, and mosquitto_pub / mosquitto_sub).
//! Mosquitto 2.0.11 answers every plugin refusal with CONNACK 5 (3.1.1),
//! whatever PROTOCOL.md's outcome (BROKERS.md §1.5).

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{answer_activation, connect, message_on, next, publish_acked, seed};
use devicegate_test_support::{cli, sign};
use rumqttc::{ConnectReturnCode, Packet, QoS};
use serde_json::Value;
use support::Broker;

fn device_show(url: &str, dk: &str) -> Value {
    cli(url, &["device", "show", "Ab3dEf9h", dk])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_logins_activate_and_refusals_get_connack_5() {
    for db in [db::sqlite(), db::postgres().await] {
        static_logins_on(&db).await;
    }
}

/// The login scenario on one database (SQLite or Postgres).
async fn static_logins_on(db: &db::TestDb) {
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (client, mut events) = connect(broker.port, &good).await.expect("signed login accepted");
    let start = Instant::now();
    while device_show(&db.url, "dev_0001")["activated_at"].is_null() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the first login activates the device"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(device_show(&db.url, "dev_0001")["online"], true);
    client.disconnect().await.unwrap();
    let _ = next(&mut events, Duration::from_millis(500), |_| None::<()>).await;
    let refused = [
        ("wrong signature", sign("Ab3dEf9h", "dev_0001", "not-the-secret", &[])),
        ("unknown device", sign("Ab3dEf9h", "dev_0009", "S3cretDevice0001", &[])),
        ("wrong product", sign("Zz9Zz9Zz", "dev_0001", "S3cretDevice0001", &[])),
        (
            "sha1 not allowed",
            sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &["--method", "sha1"]),
        ),
    ];
    for (what, creds) in refused {
        assert_eq!(
            connect(broker.port, &creds).await.err(),
            Some(ConnectReturnCode::NotAuthorized),
            "{what}"
        );
    }
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0003"]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let disabled = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    assert_eq!(
        connect(broker.port, &disabled).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    let log = broker.log();
    for reason in [
        "reason=bad signature",
        "reason=unknown device",
        "reason=unknown product",
        "reason=sign method not allowed",
        "reason=device disabled",
    ] {
        assert!(
            log.contains(reason),
            "one log line per refusal with its reason: {reason}\n{log}"
        );
    }
    assert!(!log.contains("S3cretDevice0001"), "no secret in the log");
    assert!(
        !log.contains("db.statement"),
        "debug level is devicegate's own events, not sqlx's statements"
    );
    let start = Instant::now();
    while device_show(&db.url, "dev_0001")["online"] == true {
        assert!(start.elapsed() < Duration::from_secs(5), "offline after the disconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reach_only_their_own_topics_and_principals_read_all() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let principal = ("backend-1".to_owned(), "backend".to_owned(), "backend-pw".to_owned());
    let (backend, mut backend_events) = connect(broker.port, &principal).await.expect("principal login");
    backend.subscribe("/sys/+/+/thing/#", QoS::AtLeastOnce).await.unwrap();
    let granted = next(&mut backend_events, Duration::from_secs(5), |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap();
    assert_eq!(granted, vec![rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]);

    let (device, mut device_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    let filters = [
        "#",
        "/sys/+/+/#",
        "+/sys/Ab3dEf9h/dev_0001/#",
        "/sys/Ab3dEf9h/dev_0003/#",
        "$SYS/#",
        "$share/g/#",
        "/sys/Ab3dEf9h/dev_0001/#",
    ];
    for filter in filters {
        device.subscribe(filter, QoS::AtMostOnce).await.unwrap();
    }
    let mut codes = Vec::new();
    while codes.len() < filters.len() {
        let ack = next(&mut device_events, Duration::from_secs(5), |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await
        .expect("a SUBACK per filter");
        codes.extend(ack);
    }
    let refused: Vec<bool> = codes
        .iter()
        .map(|c| *c == rumqttc::SubscribeReasonCode::Failure)
        .collect();
    assert_eq!(
        refused,
        [true, true, true, true, true, true, false],
        "{filters:?} -> {codes:?}"
    );

    device
        .publish(
            "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post",
            QoS::AtLeastOnce,
            false,
            "forged",
        )
        .await
        .unwrap();
    device
        .publish(
            "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
            QoS::AtLeastOnce,
            false,
            "mine",
        )
        .await
        .unwrap();
    // rumqttc sends when its loop runs: drive it until both PUBACKs (MQTT 3.1.1
    // acknowledges a refused publish too, and drops it).
    for _ in 0..2 {
        next(&mut device_events, Duration::from_secs(5), |p| {
            matches!(p, Packet::PubAck(_)).then_some(())
        })
        .await
        .unwrap();
    }
    let seen = next(&mut backend_events, Duration::from_secs(5), |p| match p {
        Packet::Publish(publish) => Some((publish.topic.clone(), publish.payload.to_vec())),
        _ => None,
    })
    .await
    .expect("the principal reads the device's telemetry");
    assert_eq!(
        seen,
        (
            "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post".to_owned(),
            b"mine".to_vec()
        )
    );
    // Each denial is in the log at warning level, with the rule that refused it.
    broker.wait_for_log(
        "publish denied: outside its topic families subject=\"dev_0001&Ab3dEf9h\"",
        Duration::from_secs(5),
    );
    broker.wait_for_log("subscribe denied: shared subscriptions are off", Duration::from_secs(5));
    assert!(broker.log().contains("/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post"));
    // The principal sends a command on the device's service topic; the device subscribed to its own family.
    backend
        .publish(
            "/sys/Ab3dEf9h/dev_0001/thing/service/reboot",
            QoS::AtLeastOnce,
            false,
            "{}",
        )
        .await
        .unwrap();
    next(&mut backend_events, Duration::from_secs(5), |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await
    .unwrap();
    let command = next(&mut device_events, Duration::from_secs(5), |p| match p {
        Packet::Publish(publish) => Some(publish.topic.clone()),
        _ => None,
    })
    .await;
    assert_eq!(command.as_deref(), Some("/sys/Ab3dEf9h/dev_0001/thing/service/reboot"));
    drop(broker);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_activation_pushes_the_secret_without_a_subscription() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let creds = sign("Ab3dEf9h", "dev_0002", "ProdSecretXYZ123", &["--secure-mode", "3"]);
    let (client, mut events) = connect(broker.port, &creds)
        .await
        .expect("product-secret login accepted");
    let secret = answer_activation(&client, &mut events, Duration::from_secs(5)).await;
    let start = Instant::now();
    while device_show(&db.url, "dev_0002")["activated_at"].is_null() {
        let _ = next(&mut events, Duration::from_millis(100), |_| None::<()>).await;
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the reply activates the device"
        );
    }
    drop(client);
    let (_again, _) = connect(broker.port, &sign("Ab3dEf9h", "dev_0002", &secret, &[]))
        .await
        .expect("login with the delivered secret");
    assert_eq!(
        connect(broker.port, &creds).await.err(),
        Some(ConnectReturnCode::NotAuthorized),
        "a second activation is refused"
    );
    assert!(
        !broker.log().contains(&secret),
        "the pushed secret never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_connected_device_kicks_it_within_two_seconds() {
    for db in [db::sqlite(), db::postgres().await] {
        seed(&db.url);
        let broker = Broker::start(&db.url);
        let (_client, mut events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
            .await
            .unwrap();
        let start = Instant::now();
        cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(3), events.poll()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => break start.elapsed(),
                Err(_) => panic!("still connected 3 s after the disable"),
            }
        };
        assert!(closed < Duration::from_secs(2), "kicked after {closed:?}");
        eprintln!("{}: disable kicked the device after {closed:?}", db.url);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_on_one_postgres_both_see_a_disable() {
    let db = db::postgres().await;
    seed(&db.url);
    let (a, b) = (Broker::start(&db.url), Broker::start(&db.url));
    let (_c1, mut e1) = connect(a.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    let (_c3, mut e3) = connect(b.port, &sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]))
        .await
        .unwrap();
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0003"]);
    let start = Instant::now();
    for events in [&mut e1, &mut e3] {
        loop {
            match tokio::time::timeout(Duration::from_secs(3), events.poll()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => break,
                Err(_) => panic!("a broker did not kick its device"),
            }
        }
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "both kicked within {:?}",
        start.elapsed()
    );
}

/// Publishes and drives the loop until the PUBACK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliyun_logins_and_dynamic_registration() {
    let db = db::sqlite();
    let url = db.url.clone();
    cli(
        &url,
        &[
            "product",
            "create",
            "a1B2c3D4e5F",
            "--dialect",
            "aliyun",
            "--dynamic-activation",
            "--secret",
            "ProdSecretAli01",
            "--allow-weak-secret",
        ],
    );
    cli(
        &url,
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
    cli(&url, &["device", "create", "a1B2c3D4e5F", "dev02", "--no-secret"]);
    let broker = Broker::start(&url);
    let dev01 = sign("a1B2c3D4e5F", "dev01", "secret123", &["--dialect", "aliyun"]);
    let (_c, _e) = connect(broker.port, &dev01).await.expect("Aliyun hmacsha256 login");
    // PROTOCOL.md A4: authType=register with the product secret.
    let register = (
        "dev02.a1B2c3D4e5F|random=Xq3Lm9Zt2Wv8Rk1,authType=register,securemode=2,signmethod=hmacsha256|".to_owned(),
        "dev02&a1B2c3D4e5F".to_owned(),
        "78b27b9a02a66f3f106af5d7d586dab53fc69c439c27daa2c66eca916f34173c".to_owned(),
    );
    let (_r, mut events) = connect(broker.port, &register).await.expect("registration session");
    let pushed = message_on(&mut events, "/ext/register", Duration::from_secs(5))
        .await
        .expect("/ext/register is pushed");
    let push: Value = serde_json::from_slice(&pushed).unwrap();
    assert_eq!(push["deviceName"], "dev02");
    let secret = push["deviceSecret"].as_str().unwrap().to_owned();
    let dev02 = sign("a1B2c3D4e5F", "dev02", &secret, &["--dialect", "aliyun"]);
    let (_d, _) = connect(broker.port, &dev02)
        .await
        .expect("login with the registered secret");
    let start = Instant::now();
    while cli(&url, &["device", "show", "a1B2c3D4e5F", "dev02"])["activated_at"].is_null() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the first login with the issued secret activates"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        connect(broker.port, &register).await.err(),
        Some(ConnectReturnCode::NotAuthorized),
        "locked after activation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_logs_in_sub_devices_and_loses_them() {
    let db = db::sqlite();
    let url = db.url.clone();
    seed(&url);
    cli(&url, &["product", "create", "subPk"]);
    cli(
        &url,
        &[
            "device",
            "create",
            "subPk",
            "subDk",
            "--secret",
            "subSecret",
            "--allow-weak-secret",
            "--gateway",
            "Ab3dEf9h/dev_0001",
        ],
    );
    let broker = Broker::start(&url);
    let principal = ("backend-1".to_owned(), "backend".to_owned(), "backend-pw".to_owned());
    let (backend, mut backend_events) = connect(broker.port, &principal).await.unwrap();
    backend.subscribe("/sys/+/+/thing/#", QoS::AtLeastOnce).await.unwrap();
    next(&mut backend_events, Duration::from_secs(5), |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    // A sub-device cannot connect directly.
    let direct = sign("subPk", "subDk", "subSecret", &[]);
    assert_eq!(
        connect(broker.port, &direct).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );

    let (gw, mut gw_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    gw.subscribe("/ext/session/Ab3dEf9h/dev_0001/combine/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    next(&mut gw_events, Duration::from_secs(5), |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    let sub_topic = "/sys/subPk/subDk/thing/measurepoint/post";
    publish_acked(&gw, &mut gw_events, sub_topic, "before login").await;
    // PROTOCOL.md §10.2 S1, exactly as the Python SDK sends it.
    let login = r#"{"id": "7", "version": "1.1", "method": "combine.login", "params": {"productKey": "subPk", "deviceKey": "subDk", "clientId": "subPksubDk1795320666359", "timestamp": "1795320666359", "sign": "2fae1b6ec790f7bccb1023c4e123109cb053a04dea71ab00f8b1924fb9c888a3", "secureMode": "2", "signMethod": "hmacsha256", "cleanSession": "False"}}"#;
    gw.publish(
        "/ext/session/Ab3dEf9h/dev_0001/combine/login",
        QoS::AtLeastOnce,
        false,
        login,
    )
    .await
    .unwrap();
    let reply = message_on(
        &mut gw_events,
        "/ext/session/Ab3dEf9h/dev_0001/combine/login_reply",
        Duration::from_secs(5),
    )
    .await
    .expect("combine/login_reply");
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(
        (reply["id"].as_str(), reply["code"].as_u64()),
        (Some("7"), Some(200)),
        "{reply}"
    );
    assert_eq!(reply["data"]["productKey"], "subPk");
    publish_acked(&gw, &mut gw_events, sub_topic, "after login").await;
    let received = message_on(&mut backend_events, sub_topic, Duration::from_secs(5)).await;
    assert_eq!(
        received.as_deref(),
        Some(&b"after login"[..]),
        "only the publish after the login gets through"
    );
    assert_eq!(cli(&url, &["device", "show", "subPk", "subDk"])["online"], true);
    let logout = r#"{"id":"9","params":{"productKey":"subPk","deviceKey":"subDk"}}"#;
    gw.publish(
        "/ext/session/Ab3dEf9h/dev_0001/combine/logout",
        QoS::AtLeastOnce,
        false,
        logout,
    )
    .await
    .unwrap();
    let reply = message_on(
        &mut gw_events,
        "/ext/session/Ab3dEf9h/dev_0001/combine/logout_reply",
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(serde_json::from_slice::<Value>(&reply.unwrap()).unwrap()["code"], 200);
    publish_acked(&gw, &mut gw_events, sub_topic, "after logout").await;
    assert_eq!(
        message_on(&mut backend_events, sub_topic, Duration::from_millis(700)).await,
        None
    );
    let start = Instant::now();
    while cli(&url, &["device", "show", "subPk", "subDk"])["online"] == true {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the sub-device goes offline with the logout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_state_follows_takeover_disconnect_and_the_idle_window() {
    let db = db::sqlite();
    let url = db.url.clone();
    seed(&url);
    cli(&url, &["product", "update", "Ab3dEf9h", "--offline-after", "1"]);
    let broker = Broker::start(&url);
    let online = |url: &str| cli(url, &["device", "show", "Ab3dEf9h", "dev_0001"])["online"] == true;
    let wait_online = async |want: bool, what: &str| {
        let start = Instant::now();
        while online(&url) != want {
            assert!(start.elapsed() < Duration::from_secs(5), "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (first, mut first_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    wait_online(true, "online after login").await;
    // The C SDK's `pk.dk` client id is another session of the same device: the older one is thrown off.
    let c_sdk = (
        "Ab3dEf9h.dev_0001|securemode=2,signmethod=sha256,timestamp=2524608000000|".to_owned(),
        "dev_0001&Ab3dEf9h".to_owned(),
        "0E75DE5465D6FD737C1AC7471F7E384F4F0ED45A7F4AD8B1F8B057C89B3BEF57".to_owned(),
    );
    let (second, mut second_events) = connect(broker.port, &c_sdk).await.unwrap();
    let kicked = loop {
        match tokio::time::timeout(Duration::from_secs(3), first_events.poll()).await {
            Ok(Ok(_)) => continue,
            Ok(Err(_)) => break true,
            Err(_) => break false,
        }
    };
    assert!(kicked, "single session: the first connection is closed");
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        online(&url),
        "the old connection's close does not take the device offline"
    );
    // Idle for more than the product's 1 s window: offline; traffic: online again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    wait_online(false, "offline after the idle window").await;
    publish_acked(
        &second,
        &mut second_events,
        "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        "{}",
    )
    .await;
    wait_online(true, "online again with traffic").await;
    second.disconnect().await.unwrap();
    let _ = next(&mut second_events, Duration::from_millis(300), |_| None::<()>).await;
    wait_online(false, "offline after the disconnect").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_a_device_that_never_subscribed() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    // Like the EnOS and Aliyun SDKs: log in, subscribe to nothing.
    let (_device, mut device_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    let principal = ("backend-1".to_owned(), "backend".to_owned(), "backend-pw".to_owned());
    let (backend, mut backend_events) = connect(broker.port, &principal).await.unwrap();
    let command = "/sys/Ab3dEf9h/dev_0001/thing/service/measurepoint/set";
    publish_acked(
        &backend,
        &mut backend_events,
        command,
        r#"{"id":"1","params":{"temp":20}}"#,
    )
    .await;
    let got = message_on(&mut device_events, command, Duration::from_secs(5)).await;
    assert_eq!(
        got.as_deref(),
        Some(&br#"{"id":"1","params":{"temp":20}}"#[..]),
        "delivered directly:\n{}",
        broker.log()
    );
    // Exactly once: no second copy arrives.
    assert_eq!(
        message_on(&mut device_events, command, Duration::from_millis(500)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_and_sub_as_devices_and_principals() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let port = broker.port.to_string();
    let topic = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    let sub = Command::new("mosquitto_sub")
        .args([
            "-p",
            &port,
            "-i",
            "backend-1",
            "-u",
            "backend",
            "-P",
            "backend-pw",
            "-t",
            "/sys/+/+/thing/#",
            "-v",
            "-C",
            "1",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cid, user, pass) = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let forged = Command::new("mosquitto_pub")
        .args([
            "-p",
            &port,
            "-V",
            "mqttv311",
            "-i",
            &cid,
            "-u",
            &user,
            "-P",
            &"0".repeat(64),
            "-t",
            topic,
            "-m",
            "forged",
        ])
        .output()
        .unwrap();
    assert!(!forged.status.success());
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("not authorised"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );
    let good = Command::new("mosquitto_pub")
        .args([
            "-p", &port, "-V", "mqttv311", "-i", &cid, "-u", &user, "-P", &pass, "-t", topic, "-m", "21.5", "-q", "1",
        ])
        .output()
        .unwrap();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let out = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{topic} 21.5"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misspelled_option_stops_the_broker_with_one_clear_line() {
    let db = db::sqlite();
    let mut broker = Broker::spawn(&db.url, "plugin_opt_refresh_intervall_ms 100");
    let status = broker.exit_status();
    assert!(!status.success(), "the broker must not start with a bad option");
    let log = broker.log();
    assert!(log.contains("unknown option plugin_opt_refresh_intervall_ms"), "{log}");
    assert!(log.contains("did you mean plugin_opt_refresh_interval_ms?"), "{log}");
    let mut broker = Broker::spawn(&db.url, "plugin_opt_failed_logins_per_device many");
    assert!(!broker.exit_status().success());
    assert!(
        broker
            .log()
            .contains("plugin_opt_failed_logins_per_device: `many` is not a valid number"),
        "{}",
        broker.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_keeps_the_broker_up_and_refuses_logins() {
    let mut broker = Broker::spawn("postgres://devicegate:hunter2@127.0.0.1:1/none", "");
    broker.wait_for_log("cannot load its registry", Duration::from_secs(10));
    let creds = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    assert_eq!(
        connect(broker.port, &creds).await.err(),
        Some(ConnectReturnCode::NotAuthorized)
    );
    broker.wait_for_log("registry not loaded yet", Duration::from_secs(5));
    assert!(
        !broker.log().contains("hunter2"),
        "the database password never reaches the log"
    );
    let status = broker.stop();
    assert!(status.success(), "clean exit: {status:?}\n{}", broker.log());
    assert!(broker.log().contains("devicegate stopped"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_pgpass_file_does_not_hide_why_postgres_is_unreachable() {
    // No password in the URL: the driver looks for a .pgpass file, which
    // the broker's user often cannot open (HOME is root's after the drop).
    let broker = Broker::spawn_with_env(
        "postgres://devicegate@127.0.0.1:1/none",
        "",
        &[("PGPASSFILE", "/dev/null/pgpass")],
    );
    broker.wait_for_log("cannot load its registry", Duration::from_secs(10));
    let log = broker.log();
    assert!(log.contains("Connection refused"), "the real cause is logged: {log}");
    assert!(!log.contains("pgpass"), "no .pgpass noise: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_stops_cleanly_with_the_plugin_loaded() {
    let db = db::sqlite();
    seed(&db.url);
    let mut broker = Broker::start(&db.url);
    let (_c, _e) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    let status = broker.stop();
    assert!(
        status.success(),
        "mosquitto exits 0 after cleanup joins the background thread: {status:?}"
    );
    assert!(broker.log().contains("devicegate stopped"), "{}", broker.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_logs_in_a_batch_and_loses_it_on_disconnect() {
    let db = db::sqlite();
    let url = db.url.clone();
    seed(&url);
    cli(&url, &["product", "create", "subPk"]);
    cli(
        &url,
        &[
            "device",
            "create",
            "subPk",
            "subDk",
            "--secret",
            "subSecret",
            "--allow-weak-secret",
            "--gateway",
            "Ab3dEf9h/dev_0001",
        ],
    );
    let broker = Broker::start(&url);
    let (gw, mut gw_events) = connect(broker.port, &sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]))
        .await
        .unwrap();
    gw.subscribe("/ext/session/Ab3dEf9h/dev_0001/combine/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    next(&mut gw_events, Duration::from_secs(5), |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await
    .unwrap();
    // PROTOCOL.md §10.2 S2, exactly as the Python SDK sends it.
    let batch = r#"{"id": "8", "version": "1.1", "method": "combine.login.batch", "params": {"clientId": "login.batch", "timestamp": "1795320666.3600545", "signMethod": "hmacsha256", "subDevices": [{"productKey": "subPk", "deviceKey": "subDk", "secureMode": "2", "sign": "bfa142ec107597fe6553c25da7b915f283ceb2025d0d781a7afaf6b411b6f8be"}]}}"#;
    gw.publish(
        "/ext/session/Ab3dEf9h/dev_0001/combine/login/batch",
        QoS::AtLeastOnce,
        false,
        batch,
    )
    .await
    .unwrap();
    let reply = message_on(
        &mut gw_events,
        "/ext/session/Ab3dEf9h/dev_0001/combine/login/batch_reply",
        Duration::from_secs(5),
    )
    .await
    .expect("combine/login/batch_reply");
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["code"], 200, "{reply}");
    assert_eq!(reply["data"]["loginedSubDevices"][0]["deviceKey"], "subDk");
    let online = |url: &str| cli(url, &["device", "show", "subPk", "subDk"])["online"] == true;
    let start = Instant::now();
    while !online(&url) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the sub-device is online through its gateway"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    gw.disconnect().await.unwrap();
    let _ = next(&mut gw_events, Duration::from_millis(300), |_| None::<()>).await;
    let start = Instant::now();
    while online(&url) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the gateway's disconnect takes its sub-devices offline"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_devicegate_sign_prints_works_as_printed() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::start(&db.url);
    let out = Command::new(devicegate_test_support::cli_binary())
        .args([
            "sign",
            "Ab3dEf9h",
            "dev_0001",
            "S3cretDevice0001",
            "--port",
            &broker.port.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let command = printed.lines().last().unwrap();
    assert!(command.starts_with("mosquitto_pub -h '127.0.0.1' -p "), "{command}");
    let ran = Command::new("sh").args(["-c", command]).output().unwrap();
    assert!(
        ran.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    broker.wait_for_log("as dev_0001|securemode=2", Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_that_does_not_exist_stops_the_broker_unless_creation_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.db");
    let url = format!("sqlite://{}", file.display());
    let mut broker = Broker::spawn(&url, "");
    assert!(
        !broker.exit_status().success(),
        "a missing database file stops the broker"
    );
    let log = broker.log();
    assert!(
        log.contains(&format!("the SQLite database {} does not exist", file.display())),
        "{log}"
    );
    assert!(log.contains("plugin_opt_create_database true"), "{log}");
    assert!(!file.exists(), "no empty database is created");
    let broker = Broker::spawn(&url, "plugin_opt_create_database true");
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    assert!(file.exists(), "created when asked");
}
