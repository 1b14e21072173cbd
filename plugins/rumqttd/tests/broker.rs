//! End to end: an embedded rumqttd (`devicegate_rumqttd::broker`) on a free
//! port, over a real SQLite database prepared with the CLI, against real
//! rumqttc clients. Where rumqttd cannot answer as PROTOCOL.md asks (no
//! CONNACK on refusal, no SUBACK/PUBACK failure codes, effects only with
//! the client's next packet), the tests pin down what it does instead.

use std::time::Duration;

use devicegate_rumqttd::{Gate, broker};
use devicegate_test_support::mqtt::{connect, ready_hooks, seed, spawn_listener};
use devicegate_test_support::scenarios::{
    DeviceLogin, both_dialects_log_in, client_ids_cannot_be_taken_over, closed, device_show, disabling_kicks,
    dynamic_activation, own_topics_are_routed, seed_aliyun, seed_client_id_twin,
};
use devicegate_test_support::{self as db, sign};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

/// Starts the broker on a free port over `url`; returns the port once the
/// registry is loaded and the port accepts connections.
fn start(url: &str) -> u16 {
    let gate = Gate::new(ready_hooks(url));
    gate.spawn_ticker(Duration::from_millis(100)).unwrap();
    spawn_listener(move |addr| {
        let _ = broker::serve(addr, gate);
    })
}

/// Whether a login with `credentials` is refused: rumqttd closes the socket
/// without any CONNACK.
async fn refused_without_connack((client_id, user, pass): &(String, String, String), port: u16) -> bool {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    options.set_credentials(user, pass);
    let (_client, mut events) = AsyncClient::new(options, 4);
    match tokio::time::timeout(Duration::from_secs(5), events.poll())
        .await
        .expect("an answer within 5 s")
    {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => panic!("a CONNACK: {ack:?}"),
        Ok(other) => panic!("unexpected {other:?}"),
        Err(_) => true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_in_both_dialects_and_refusals_close_without_connack() {
    let db = db::sqlite();
    seed(&db.url);
    seed_aliyun(&db.url);
    let port = start(&db.url);
    let _online = both_dialects_log_in(&db.url, port).await;
    assert!(refused_without_connack(&sign("Ab3dEf9h", "dev_0001", "WrongSecret00000", &[]), port).await);
    let other = sign("Ab3dEf9h", "dev_0003", "S3cretDevice0003", &[]);
    let enos = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    assert!(refused_without_connack(&(enos.0, other.1, other.2), port).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reach_only_their_own_topics_and_denials_close() {
    let db = db::sqlite();
    seed(&db.url);
    let port = start(&db.url);
    let (client, mut events) = own_topics_are_routed(port, &DeviceLogin::triple(port)).await;
    // rumqttd has no failure SUBACK or PUBACK to give: a denial closes.
    client.subscribe("#", QoS::AtMostOnce).await.unwrap();
    assert!(closed(&mut events).await, "a wildcard escape closes the connection");
    let creds = sign("Ab3dEf9h", "dev_0001", "S3cretDevice0001", &[]);
    let (client, mut events) = connect(port, &creds).await.unwrap();
    let foreign = "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post";
    client.publish(foreign, QoS::AtLeastOnce, false, "{}").await.unwrap();
    assert!(closed(&mut events).await, "a foreign publish closes the connection");
    devicegate_test_support::mqtt::eventually("offline after the close", || {
        device_show(&db.url, "dev_0001")["online"] == false
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_push_rides_on_the_next_outgoing_packet() {
    let db = db::sqlite();
    seed(&db.url);
    dynamic_activation(&db.url, start(&db.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_device_is_closed_at_its_next_packet() {
    let db = db::sqlite();
    seed(&db.url);
    disabling_kicks(&db.url, &DeviceLogin::triple(start(&db.url))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_take_over_another_devices_client_id() {
    let db = db::sqlite();
    seed(&db.url);
    seed_client_id_twin(&db.url);
    let port = start(&db.url);
    client_ids_cannot_be_taken_over(port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_device_uses_its_topics_and_revoking_its_tokens_closes_it() {
    let db = db::sqlite();
    seed(&db.url);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("token.key");
    devicegate_test_support::cli(&db.url, &["token", "keygen", "--out", key.to_str().unwrap()]);
    let port = start(&db.url);
    let token = devicegate_test_support::scenarios::issue_token(&db.url, &key, None);
    let device = DeviceLogin::token(port, &token);
    own_topics_are_routed(port, &device).await;
    // rumqttd closes at the client's next packet (1 s keep-alive).
    let (_client, mut events) =
        devicegate_test_support::mqtt::connect_with(port, &device.credentials, Duration::from_secs(1))
            .await
            .expect("token login accepted");
    devicegate_test_support::cli(&db.url, &["device", "revoke-tokens", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "closed after revoke-tokens");
    assert!(
        refused_without_connack(&device.credentials, port).await,
        "the old token is refused"
    );
}
