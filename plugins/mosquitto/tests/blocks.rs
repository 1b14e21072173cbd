//! Failed-login blocks an operator can see and lift (issue 12): ten wrong
//! passwords block the device from that address, `device show` says so and
//! until when, and `device unblock` lets the correct secret in again on
//! the running broker.

mod support;

use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{accepted_within, eventually, seed};
use devicegate_test_support::scenarios::{device_show, login_refused};
use devicegate_test_support::{cli, sign};
use support::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_device_shows_its_block_and_unblock_lifts_it() {
    let db = db::sqlite();
    seed(&db.url);
    let broker = Broker::spawn(&db.url, "");
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let wrong = sign("Ab3dEf9h", "dev_0001", "WrongSecret00001", &[]);
    for _ in 0..10 {
        assert!(login_refused(broker.port, &wrong).await);
    }
    assert!(login_refused(broker.port, &good).await, "blocked from this address");
    broker.wait_for_log("too many failed logins: blocking", Duration::from_secs(5));
    eventually("device show lists the block", || {
        device_show(&db.url, "dev_0001")["blocks"].as_array().is_some_and(|b| {
            b.iter()
                .any(|b| b["scope"] == "device_from_address" && b["address"] == "127.0.0.1")
        })
    })
    .await;
    cli(&db.url, &["device", "unblock", "Ab3dEf9h", "dev_0001"]);
    assert!(
        accepted_within(broker.port, &good, Duration::from_secs(5)).await,
        "the correct secret logs in once unblocked"
    );
    assert_eq!(device_show(&db.url, "dev_0001")["blocks"], serde_json::json!([]));
}
