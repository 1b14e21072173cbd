//! Secrets at rest end to end (issue 10 item 6): a fleet sealed with
//! `devicegate secrets seal` logs in through a Mosquitto whose plugin has
//! the key file, and through one without it no device does; the database
//! file holds no secret in plaintext; a bad key file stops the broker with
//! a line that names the option.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::cli;
use devicegate_test_support::mqtt::{connect, seed};
use devicegate_test_support::scenarios::{DeviceLogin, login_refused, own_topics_are_routed};
use support::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_fleet_logs_in_only_where_the_key_is() {
    let db = db::sqlite();
    seed(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secrets.key");
    let key_arg = key.to_str().unwrap();
    cli(&db.url, &["secrets", "keygen", "--out", key_arg]);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let report = cli(&db.url, &["--secret-key-file", key_arg, "secrets", "seal"]);
    assert!(report["sealed"].as_u64().unwrap() >= 3, "{report}");
    let file = std::fs::read(db.url.trim_start_matches("sqlite://")).unwrap();
    let wal = std::fs::read(format!("{}-wal", db.url.trim_start_matches("sqlite://"))).unwrap_or_default();
    for plaintext in ["S3cretDevice0001", "S3cretDevice0003", "ProdSecretXYZ123"] {
        let found = |bytes: &[u8]| bytes.windows(plaintext.len()).any(|w| w == plaintext.as_bytes());
        assert!(!found(&file), "{plaintext} left in the database file");
        assert!(!found(&wal), "{plaintext} left in the write-ahead log");
    }

    let keyed = Broker::spawn(&db.url, &format!("plugin_opt_secret_key_file {key_arg}"));
    keyed.wait_for_log("registry loaded", Duration::from_secs(15));
    own_topics_are_routed(keyed.port, &DeviceLogin::triple(keyed.port)).await;

    let keyless = Broker::spawn(&db.url, "");
    keyless.wait_for_log("registry loaded", Duration::from_secs(15));
    let device = DeviceLogin::triple(keyless.port);
    assert!(
        login_refused(keyless.port, &device.credentials).await,
        "no key, no secret, no login"
    );
    keyless.wait_for_log("no secret key file is configured", Duration::from_secs(5));
    assert!(
        connect(keyed.port, &device.credentials).await.is_ok(),
        "still fine where the key is"
    );
}

#[test]
fn a_key_file_others_can_read_stops_the_broker_with_the_reason() {
    let db = db::sqlite();
    seed(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secrets.key");
    cli(&db.url, &["secrets", "keygen", "--out", key.to_str().unwrap()]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let broker = Broker::spawn(&db.url, &format!("plugin_opt_secret_key_file {}", key.display()));
    broker.wait_for_log("plugin_opt_secret_key_file", Duration::from_secs(10));
    assert!(broker.log().contains("chmod 600"), "{}", broker.log());
}
