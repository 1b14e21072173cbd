//! Online state across broker nodes (issue 11 item 5): two Mosquitto
//! processes on one Postgres. A device that moves from one broker to the
//! other is online once, on the right node, whatever order the two
//! brokers' writes land in; a broker killed with SIGKILL has its devices
//! set offline by the other within the node expiry (3 s here, plus a
//! heartbeat); a broker stopped cleanly takes its devices offline itself.

mod support;

use std::time::{Duration, Instant};

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{connect, seed};
use devicegate_test_support::scenarios::device_show;
use devicegate_test_support::sign;
use support::Broker;

/// Polls `device show` until `check` holds (up to `limit`); the last answer.
async fn shown_within(
    url: &str,
    dk: &str,
    limit: Duration,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let shown = device_show(url, dk);
        if check(&shown) || start.elapsed() > limit {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_belongs_to_the_node_a_device_is_on() {
    let db = db::postgres().await;
    seed(&db.url);
    let node = |name: &str| format!("plugin_opt_node_name {name}\nplugin_opt_node_expiry_secs 3\n");
    let mut a = Broker::spawn(&db.url, &node("broker-a"));
    let b = Broker::spawn(&db.url, &node("broker-b"));
    a.wait_for_log("registry loaded", Duration::from_secs(15));
    b.wait_for_log("registry loaded", Duration::from_secs(15));
    let device = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);

    // On A, then moved to B: B's login lands, then A sees the old
    // connection go; its offline must not undo the login on B.
    let on_a = connect(a.port, &device).await.expect("accepted on A");
    let shown = shown_within(&db.url, "dev_0001", Duration::from_secs(5), |d| d["node"] == "broker-a").await;
    assert_eq!(
        (shown["online"].as_bool(), shown["node"].as_str()),
        (Some(true), Some("broker-a")),
        "{shown}"
    );
    let on_b = connect(b.port, &device).await.expect("accepted on B");
    let shown = shown_within(&db.url, "dev_0001", Duration::from_secs(5), |d| d["node"] == "broker-b").await;
    assert_eq!(shown["node"], "broker-b", "{shown}");
    drop(on_a);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let shown = device_show(&db.url, "dev_0001");
    assert_eq!(
        (shown["online"].as_bool(), shown["node"].as_str()),
        (Some(true), Some("broker-b")),
        "A's offline came after B's online: {shown}"
    );

    // A second device on A; A is killed: B expires A and the device goes offline.
    let _on_a = connect(a.port, &other).await.expect("accepted on A");
    let shown = shown_within(&db.url, "dev_0003", Duration::from_secs(5), |d| d["node"] == "broker-a").await;
    assert_eq!(shown["online"], true, "{shown}");
    a.kill_hard();
    let shown = shown_within(&db.url, "dev_0003", Duration::from_secs(8), |d| d["online"] == false).await;
    assert_eq!(
        (shown["online"].as_bool(), shown["node"].as_str()),
        (Some(false), None),
        "expired with A: {shown}"
    );
    b.wait_for_log("expired broker nodes without a heartbeat", Duration::from_secs(2));
    let shown = device_show(&db.url, "dev_0001");
    assert_eq!(shown["online"], true, "B's own device stays online: {shown}");

    // B stops cleanly: its device goes offline without waiting for expiry.
    drop(on_b);
    let _again = connect(b.port, &device).await.expect("accepted on B");
    let mut b = b;
    b.stop();
    let shown = device_show(&db.url, "dev_0001");
    assert_eq!(
        (shown["online"].as_bool(), shown["node"].as_str()),
        (Some(false), None),
        "left with B: {shown}"
    );
}
