//! TLS pre-shared keys end to end (IDENTITIES.md §2): a real Mosquitto
//! with a PSK listener (`psk_hint`, no `psk_file`) beside a plain one, the
//! plugin answering each handshake from the registry. Devices are
//! `mosquitto_pub` / `mosquitto_sub` with `--psk`, and rumqttc through a
//! real `openssl s_client -psk` (rumqttc has no PSK), which runs the same
//! shared scenarios as the signed-triple login.

mod support;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use devicegate_test_support as db;
use devicegate_test_support::cli;
use devicegate_test_support::mqtt::{eventually, seed};
use devicegate_test_support::scenarios::{
    DeviceLogin, closed, device_show, disabling_kicks, own_topics_are_routed, single_session,
};
use devicegate_test_support::tls_relay::TlsRelay;
use support::{Broker, free_port};

/// A broker with a plain listener (`broker.port`) and a PSK listener (the
/// returned port): the two lines a user adds for PSK devices.
fn psk_broker(url: &str) -> (Broker, u16) {
    let psk_port = free_port();
    let broker = Broker::spawn(url, &format!("listener {psk_port} 127.0.0.1\npsk_hint devicegate\n"));
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    (broker, psk_port)
}

/// `devicegate device psk Ab3dEf9h DK --json`: (identity, key).
fn new_psk(url: &str, dk: &str) -> (String, String) {
    let v = cli(url, &["device", "psk", "Ab3dEf9h", dk]);
    (
        v["identity"].as_str().unwrap().to_owned(),
        v["key"].as_str().unwrap().to_owned(),
    )
}

/// `mosquitto_pub` over TLS-PSK with QoS 1.
fn psk_pub(port: u16, (identity, key): (&str, &str), extra: &[&str], topic: &str, payload: &str) -> Output {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "--psk",
            key,
            "--psk-identity",
            identity,
        ])
        .args(["-i", "dev_0001", "-q", "1", "-t", topic, "-m", payload])
        .args(extra)
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psk_device_logs_in_without_a_username_and_bad_handshakes_are_refused() {
    let db = db::sqlite();
    seed(&db.url);
    let (identity, key) = new_psk(&db.url, "dev_0001");
    let (broker, psk_port) = psk_broker(&db.url);
    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    let sub = support::first_device_message(broker.port).await;

    // Another device's topic is not routed; its own is.
    let foreign = psk_pub(
        psk_port,
        (&identity, &key),
        &[],
        "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post",
        "x",
    );
    assert!(foreign.status.success(), "{}", String::from_utf8_lossy(&foreign.stderr));
    let good = psk_pub(psk_port, (&identity, &key), &[], own, "21.5");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let out = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{own} 21.5"));
    eventually("a PSK login activates the device", || {
        !device_show(&db.url, "dev_0001")["activated_at"].is_null()
    })
    .await;

    // A username naming the same device is fine; another device's is refused.
    let same = psk_pub(psk_port, (&identity, &key), &["-u", "dev_0001&Ab3dEf9h"], own, "1");
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));
    let other = psk_pub(psk_port, (&identity, &key), &["-u", "dev_0003&Ab3dEf9h"], own, "1");
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("not authorised"));
    broker.wait_for_log(
        "username names another device than the TLS credential",
        Duration::from_secs(5),
    );

    // paho-mqtt where this Python has TLS-PSK (3.13+); otherwise mosquitto_pub
    // above is the client (IDENTITIES.md §2 allows either).
    let paho = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/paho_tls.py"))
        .args(["psk", &psk_port.to_string(), "dev_0001", own, &identity, &key])
        .output()
        .expect("python3 with paho-mqtt 2 (scripts/test.sh installs it)");
    match paho.status.code() {
        Some(0) => eprintln!("paho-mqtt logged in with the PSK"),
        Some(3) => eprintln!("paho-mqtt not tried: {}", String::from_utf8_lossy(&paho.stderr).trim()),
        _ => panic!("paho-mqtt with the PSK: {}", String::from_utf8_lossy(&paho.stderr)),
    }

    // A wrong key or an unknown identity fails the handshake itself.
    let wrong_key = "00".repeat(32);
    assert!(
        !psk_pub(psk_port, (&identity, &wrong_key), &[], own, "1")
            .status
            .success()
    );
    assert!(
        !psk_pub(psk_port, ("no-such-identity", &key), &[], own, "1")
            .status
            .success()
    );
    broker.wait_for_log(
        "TLS-PSK handshake refused: unknown or revoked PSK identity",
        Duration::from_secs(5),
    );
    assert!(!broker.log().contains(&key), "the key never reaches the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psk_devices_pass_the_shared_scenarios() {
    for db in [db::sqlite(), db::postgres().await] {
        seed(&db.url);
        let (identity, key) = new_psk(&db.url, "dev_0001");
        let (broker, psk_port) = psk_broker(&db.url);
        let relay = TlsRelay::psk(psk_port, &identity, &key);
        let device = DeviceLogin::tls(relay.port);
        drop(own_topics_are_routed(broker.port, &device).await);
        single_session(&db.url, &device).await;
        single_session(&db.url, &DeviceLogin::triple(broker.port)).await;
        disabling_kicks(&db.url, &device).await;
        assert!(
            !psk_pub(
                psk_port,
                (&identity, &key),
                &[],
                "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
                "1"
            )
            .status
            .success(),
            "a disabled device's PSK fails the handshake"
        );
        broker.wait_for_log(
            "TLS-PSK handshake refused: the device is disabled",
            Duration::from_secs(5),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_psk_closes_its_connection_within_two_seconds() {
    let db = db::sqlite();
    seed(&db.url);
    let (identity, key) = new_psk(&db.url, "dev_0001");
    let (kept_identity, kept_key) = new_psk(&db.url, "dev_0003");
    let (_broker, psk_port) = psk_broker(&db.url);
    let relay = TlsRelay::psk(psk_port, &identity, &key);
    let kept = TlsRelay::psk(psk_port, &kept_identity, &kept_key);
    let device = DeviceLogin::tls(relay.port);
    let (_client, mut events) =
        devicegate_test_support::mqtt::connect_with(device.port, &device.credentials, Duration::from_secs(1))
            .await
            .expect("PSK login accepted");
    let other = ("dev_0003".to_owned(), String::new(), String::new());
    let (_other, mut other_events) =
        devicegate_test_support::mqtt::connect_with(kept.port, &other, Duration::from_secs(1))
            .await
            .expect("the other device's PSK login accepted");
    eventually("online", || device_show(&db.url, "dev_0001")["online"] == true).await;
    let start = Instant::now();
    cli(&db.url, &["device", "psk", "revoke", "Ab3dEf9h", "dev_0001", &identity]);
    assert!(closed(&mut events).await, "closed after the revocation");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "closed after {elapsed:?}");
    eprintln!("revoking a PSK closed its connection after {elapsed:?}");
    assert!(
        devicegate_test_support::scenarios::stays_open(&mut other_events, Duration::from_secs(2)).await,
        "another device's PSK session stays"
    );
    assert!(
        !psk_pub(
            psk_port,
            (&identity, &key),
            &[],
            "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
            "1"
        )
        .status
        .success(),
        "a revoked PSK fails the handshake"
    );
    let shown = device_show(&db.url, "dev_0001");
    let psk = shown["credentials"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["kind"] == "psk"))
        .cloned()
        .unwrap_or_default();
    assert!(psk["revoked_at"].is_u64(), "device show lists the revoked PSK: {shown}");
}
