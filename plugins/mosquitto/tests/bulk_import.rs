//! Bulk import reaches a running broker (issue 11 item 1): `device import`
//! writes 12,000 devices in batches of 5,000, one change each; the broker,
//! already serving, loads each batch's devices from its change and lets
//! the first and the last of the file log in, while a row the import
//! refused stays out.

mod support;

use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{accepted_within, seed};
use devicegate_test_support::scenarios::login_refused;
use devicegate_test_support::{cli, sign};
use support::Broker;

const DEVICES: usize = 12_000;

fn secret(i: usize) -> String {
    format!("BulkSecret{i:08}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_batches_log_in_on_a_running_broker() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::spawn(&db.url, "");
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    let count = || {
        cli(&db.url, &["device", "list", "Ab3dEf9h"])
            .as_array()
            .map_or(0, Vec::len)
    };
    let seeded = count();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.csv");
    let mut csv = String::from("device_key,secret\n");
    for i in 0..DEVICES {
        csv.push_str(&format!("bulk_{i},{}\n", secret(i)));
    }
    csv.push_str("bulk_weak,short\n");
    std::fs::write(&file, csv).unwrap();
    let out = std::process::Command::new(db::cli_binary())
        .args(["--database-url", &db.url, "device", "import", "Ab3dEf9h"])
        .arg(&file)
        .args(["--batch-size", "5000"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one row refused: {stderr}");
    assert!(
        stderr.contains(&format!("fleet.csv:{}: ", DEVICES + 2)) && stderr.contains("too short"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("imported {DEVICES} devices")), "{stderr}");
    assert_eq!(count(), seeded + DEVICES, "every good row, nothing of the refused one");
    for i in [0, DEVICES / 2, DEVICES - 1] {
        let dk = format!("bulk_{i}");
        let login = sign("Ab3dEf9h", &dk, &secret(i), &[]);
        assert!(
            accepted_within(broker.port, &login, Duration::from_secs(10)).await,
            "{dk} logs in on the running broker"
        );
    }
    let weak = sign("Ab3dEf9h", "bulk_weak", "short", &[]);
    assert!(login_refused(broker.port, &weak).await, "a refused row is not a device");
}
