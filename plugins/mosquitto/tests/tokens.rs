//! Device tokens and bootstrap assignments end to end (IDENTITIES.md §4,
//! §5) through a real Mosquitto with the plugin: tokens from `devicegate
//! token issue` (the service's `/authenticate` signs with the same code;
//! its own tests cover the exchange), logged in with rumqttc and
//! `mosquitto_pub`, closed at `exp`, by `device revoke-tokens` and by a
//! disable; and a broker that knows its URL refusing a device assigned
//! elsewhere, naming the server in its log.

mod support;

use std::process::Command;
use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::cli;
use devicegate_test_support::mqtt::{accepted_within, connect_with, seed};
use devicegate_test_support::scenarios::{
    DeviceLogin, closed, disabling_kicks, issue_token, login_refused, own_topics_are_routed, single_session,
    token_session_ends_at_exp,
};
use support::Broker;

/// The fleet, a token key in `dir`, and a broker on it.
fn token_fleet(dir: &std::path::Path) -> (db::TestDb, std::path::PathBuf, Broker) {
    let db = db::sqlite();
    seed(&db.url);
    let key = dir.join("token.key");
    cli(
        &db.url,
        &["token", "keygen", "--out", key.to_str().unwrap(), "--kid", "k1"],
    );
    let broker = Broker::spawn(&db.url, "");
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    (db, key, broker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_device_uses_its_topics_and_is_closed_when_the_token_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key, broker) = token_fleet(dir.path());
    let token = issue_token(&db.url, &key, None);
    let device = DeviceLogin::token(broker.port, &token);
    own_topics_are_routed(broker.port, &device).await;
    single_session(&db.url, &device).await;

    // mosquitto_pub: the token as -P, the device's GUID as -u.
    let guid = cli(&db.url, &["device", "show", "Ab3dEf9h", "dev_0001"])["guid"]
        .as_str()
        .unwrap()
        .to_owned();
    let published = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-i",
            "dev_0001",
            "-q",
            "1",
        ])
        .args(["-u", &guid, "-P", &token])
        .args(["-t", "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post", "-m", "1"])
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)");
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    let foreign = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-i",
            "dev_0001",
            "-q",
            "1",
        ])
        .args(["-u", "dev_0003&Ab3dEf9h", "-P", &token])
        .args(["-t", "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post", "-m", "1"])
        .output()
        .unwrap();
    assert!(
        !foreign.status.success(),
        "a token does not lend its rights to another username"
    );

    let short = issue_token(&db.url, &key, Some("4s"));
    token_session_ends_at_exp(&DeviceLogin::token(broker.port, &short), 4).await;
}

/// Logs `device` in until the broker accepts it (a key or change the
/// broker learns through the change feed, within 5 s).
async fn accepted_soon(device: &DeviceLogin) {
    assert!(
        accepted_within(device.port, &device.credentials, Duration::from_secs(5)).await,
        "not accepted within 5 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_tokens_removing_the_key_or_disabling_closes_token_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key, broker) = token_fleet(dir.path());
    let device = DeviceLogin::token(broker.port, &issue_token(&db.url, &key, None));

    let (_client, mut events) = connect_with(broker.port, &device.credentials, Duration::from_secs(1))
        .await
        .expect("token login accepted");
    cli(&db.url, &["device", "revoke-tokens", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "closed after revoke-tokens");
    assert!(
        login_refused(broker.port, &device.credentials).await,
        "the old token is refused"
    );
    broker.wait_for_log("issued before the device's tokens were revoked", Duration::from_secs(5));

    // Tokens issued after the revocation log in (iat is in seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = DeviceLogin::token(broker.port, &issue_token(&db.url, &key, None));
    let (_client, mut events) = connect_with(broker.port, &fresh.credentials, Duration::from_secs(1))
        .await
        .expect("a fresh token logs in");
    cli(&db.url, &["token", "remove-key", "k1"]);
    assert!(closed(&mut events).await, "closed when its key is removed");
    assert!(login_refused(broker.port, &fresh.credentials).await);

    let other_key = dir.path().join("k2.key");
    cli(
        &db.url,
        &["token", "keygen", "--out", other_key.to_str().unwrap(), "--kid", "k2"],
    );
    let again = DeviceLogin::token(broker.port, &issue_token(&db.url, &other_key, None));
    accepted_soon(&again).await;
    disabling_kicks(&db.url, &again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_knows_its_url_refuses_devices_assigned_elsewhere() {
    let db = db::sqlite();
    seed(&db.url);
    let own = "mqtt://127.0.0.1:1883";
    let broker = Broker::spawn(&db.url, &format!("plugin_opt_server_url {own}"));
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    let device = DeviceLogin::triple(broker.port);
    let (client, _events) = connect_with(broker.port, &device.credentials, Duration::from_secs(5))
        .await
        .expect("an unassigned device logs in anywhere");
    drop(client);
    cli(
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
    let refused = async {
        for _ in 0..50 {
            if login_refused(broker.port, &device.credentials).await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(refused.await, "refused once assigned elsewhere");
    broker.wait_for_log(
        "device assigned to another server: mqtts://broker-b.example:8883",
        Duration::from_secs(5),
    );
    cli(&db.url, &["device", "assign", "Ab3dEf9h", "dev_0001", "--server", own]);
    accepted_soon(&device).await;
}
