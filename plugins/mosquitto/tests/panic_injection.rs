//! A panic injected into each Mosquitto callback of the plugin (test builds
//! with `--features panic-injection`, armed by `DEVICEGATE_INJECT_PANIC` in
//! the broker's environment) never crosses into the broker: the callback
//! answers with its refusal, the broker logs one line and keeps running
//! (init fails cleanly instead; cleanup still lets the broker exit).

mod support;

use std::time::Duration;

use devicegate_test_support as db;
use devicegate_test_support::mqtt::{connect, seed};
use devicegate_test_support::sign;
use rumqttc::QoS;
use support::Broker;

const CAUGHT: &str = "devicegate: internal error, refusing: injected panic in";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_any_callback_is_caught_and_the_broker_goes_on() {
    let db = db::sqlite();
    seed(&db.url);
    let good = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    for callback in ["basic_auth", "acl_check", "message", "disconnect", "tick"] {
        let broker = Broker::spawn_with_env(&db.url, "", &[("DEVICEGATE_INJECT_PANIC", callback)]);
        if callback == "tick" {
            // The database is opened from the first TICK on (after the
            // privilege drop): with every TICK panicking there are no logins
            // to make, only the broker to keep alive.
            broker.wait_for_log(&format!("{CAUGHT} {callback}"), Duration::from_secs(5));
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", broker.port)).is_ok(),
                "{}",
                broker.log()
            );
            continue;
        }
        broker.wait_for_log("registry loaded", Duration::from_secs(15));
        let login = connect(broker.port, &good).await;
        if callback == "basic_auth" {
            assert!(login.is_err(), "a panicking login check refuses");
        } else {
            let (client, mut events) = login.expect("accepted");
            client
                .publish(
                    "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
                    QoS::AtLeastOnce,
                    false,
                    "{}",
                )
                .await
                .unwrap();
            let _ = devicegate_test_support::mqtt::next(&mut events, Duration::from_millis(500), |_| None::<()>).await;
            client.disconnect().await.unwrap();
            let _ = devicegate_test_support::mqtt::next(&mut events, Duration::from_millis(300), |_| None::<()>).await;
        }
        broker.wait_for_log(&format!("{CAUGHT} {callback}"), Duration::from_secs(5));
        // The broker is alive: a plain TCP connect still gets an answer.
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", broker.port)).is_ok(),
            "{callback}: the broker died:\n{}",
            broker.log()
        );
    }
    let mut broker = Broker::spawn_with_env(&db.url, "", &[("DEVICEGATE_INJECT_PANIC", "init")]);
    assert!(!broker.exit_status().success(), "a panicking init fails the start");
    assert!(broker.log().contains(&format!("{CAUGHT} init")), "{}", broker.log());
    let mut broker = Broker::spawn_with_env(&db.url, "", &[("DEVICEGATE_INJECT_PANIC", "cleanup")]);
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    let status = broker.stop();
    assert!(
        status.code().is_some(),
        "mosquitto exits, not killed by a signal: {status:?}"
    );
    assert!(broker.log().contains(&format!("{CAUGHT} cleanup")), "{}", broker.log());
}
