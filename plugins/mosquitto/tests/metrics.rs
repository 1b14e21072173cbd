//! Prometheus metrics from the plugin (issue 12 item 2): a real Mosquitto
//! with `plugin_opt_metrics_listen`, real logins, refusals, a denial and a
//! kick, then an HTTP scrape whose numbers must match what the test did.

mod support;

use std::io::{Read as _, Write as _};
use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{connect, connect_with, seed};
use devicegate_test_support::scenarios::{closed, login_refused, suback};
use devicegate_test_support::{cli, sign};
use rumqttc::{QoS, SubscribeReasonCode};
use support::{Broker, free_port};

/// `GET /metrics` on `port`: the body.
fn scrape(port: u16) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics endpoint listens");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample `line` (name and labels exactly), if present.
fn value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_counts_what_the_broker_did() {
    let db = db::sqlite();
    seed(&db.url);
    let metrics_port = free_port();
    let broker = Broker::spawn(&db.url, &format!("plugin_opt_metrics_listen 127.0.0.1:{metrics_port}"));
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let wrong = sign("Ab3dEf9h", "dev_0003", "WrongSecret00001", &[]);
    for _ in 0..3 {
        let (client, _events) = connect(broker.port, &good).await.expect("accepted");
        client.disconnect().await.unwrap();
    }
    for _ in 0..2 {
        assert!(login_refused(broker.port, &wrong).await);
    }
    let (client, mut events) = connect_with(broker.port, &good, Duration::from_secs(1))
        .await
        .expect("accepted");
    client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    assert_eq!(suback(&mut events).await, [SubscribeReasonCode::Failure]);
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "kicked");

    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(metrics_port);
        if value(&text, "devicegate_kicks_total{reason=\"device_changed\"}") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(value(&text, "devicegate_logins_accepted_total"), Some(4.0), "{text}");
    assert_eq!(
        value(&text, "devicegate_logins_refused_total{reason=\"bad_signature\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "devicegate_denials_total{kind=\"subscribe\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "devicegate_kicks_total{reason=\"device_changed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value(&text, "devicegate_registry_devices"), Some(3.0), "{text}");
    assert_eq!(value(&text, "devicegate_database_up"), Some(1.0), "{text}");
    assert!(
        value(&text, "devicegate_change_feed_lag_seconds").is_some_and(|lag| (0.0..5.0).contains(&lag)),
        "{text}"
    );
    assert!(value(&text, "devicegate_write_queue_depth").is_some(), "{text}");
    assert!(
        text.contains("# TYPE devicegate_logins_refused_total counter"),
        "{text}"
    );

    // A live session shows under its product.
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    let (_client, _events) = connect(broker.port, &other).await.expect("accepted");
    let mut connected = false;
    for _ in 0..50 {
        if value(&scrape(metrics_port), "devicegate_connections{product=\"Ab3dEf9h\"}") == Some(1.0) {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(connected, "{}", scrape(metrics_port));
}
