//! The provisioning service end to end through a real Mosquitto with the
//! plugin (IDENTITIES.md §4–§7): `devicegate serve` runs as a process on
//! a free port and a real HTTP client (reqwest) drives it; what it hands
//! out (a token, a registered secret, a PSK, a certificate) reaches the
//! broker only through the database and its change feed, and real MQTT
//! clients (rumqttc, `mosquitto_pub`) log in with it. Seeds 003, 004 and
//! 002, in that order.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use devicegate::bootstrap::bootstrap_sign;
use devicegate::clock::now_ms;
use devicegate_test_support as db;
use devicegate_test_support::mqtt::{connect_with, eventually, seed};
use devicegate_test_support::scenarios::{
    DeviceLogin, device_show, login_refused, own_topics_are_routed, token_session_ends_at_exp,
};
use devicegate_test_support::service::Service;
use devicegate_test_support::{cli, sign};
use serde_json::{Value, json};
use support::{Broker, free_port};

/// How long a change written through the service may take to reach the
/// broker (it follows the database every 100 ms in these tests).
const PROPAGATION: Duration = Duration::from_secs(10);

/// A broker with the plugin on `url` and `extra` configuration, its
/// registry loaded.
fn broker(url: &str, extra: &str) -> Broker {
    let broker = Broker::spawn(url, extra);
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    broker
}

/// A string field of `v`, or a failed test.
#[track_caller]
fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string `{key}` in {v}"))
        .to_owned()
}

/// Runs `attempt` every 100 ms until it succeeds, for at most
/// [`PROPAGATION`]; fails the test with `what` and the last output then.
fn until_success(what: &str, mut attempt: impl FnMut() -> Output) {
    let start = Instant::now();
    loop {
        let out = attempt();
        if out.status.success() {
            return;
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Logs `credentials` in until the broker accepts them (bounded by
/// [`PROPAGATION`]).
async fn accepted_soon(port: u16, credentials: &(String, String, String)) {
    let start = Instant::now();
    while connect_with(port, credentials, Duration::from_secs(5)).await.is_err() {
        assert!(start.elapsed() < PROPAGATION, "not accepted within {PROPAGATION:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `mosquitto_pub` of one QoS 1 message on `port` with `args` (the
/// credential) added.
fn mosquitto_pub(port: u16, client_id: &str, topic: &str, args: &[&str]) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-i", client_id, "-q", "1"])
        .args(["-t", topic, "-m", "21.5"])
        .args(args)
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)")
}

/// `POST /authenticate` with the access key pair `pair`: the token.
async fn authenticate(service: &Service, pair: &Value) -> (String, Value) {
    let request = json!({"deviceAuthParameters": {
        "accessKey": text(pair, "accessKey"),
        "secretKey": text(pair, "secretKey"),
    }});
    let answer = service.post("/authenticate", None, &request).await;
    let body = answer.ok(200).clone();
    (text(&body, "token"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_a_token_from_authenticate_logs_in_and_ends_at_exp() {
    for db in [db::sqlite(), db::postgres().await] {
        let url = &db.url;
        let dir = tempfile::tempdir().unwrap();
        seed(url);
        let key = dir.path().join("token.key");
        cli(url, &["token", "keygen", "--out", key.to_str().unwrap()]);
        let pair = cli(url, &["device", "access-key", "Ab3dEf9h", "dev_0001"]);
        let broker = broker(url, "");
        let service = Service::start(url, &["--token-key", key.to_str().unwrap()]).await;

        let (token, body) = authenticate(&service, &pair).await;
        let guid = text(&body, "deviceGUID");
        assert_eq!(guid, text(&device_show(url, "dev_0001"), "guid"), "{url}");
        drop(own_topics_are_routed(broker.port, &DeviceLogin::token(broker.port, &token)).await);

        // mosquitto_pub: the device's GUID as username, the token as password.
        let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
        let published = mosquitto_pub(broker.port, "dev_0001", own, &["-u", &guid, "-P", &token]);
        assert!(
            published.status.success(),
            "{}",
            String::from_utf8_lossy(&published.stderr)
        );
        let mut mangled = token.clone().into_bytes();
        let at = mangled.len() - 10;
        mangled[at] = if mangled[at] == b'A' { b'B' } else { b'A' };
        let mangled = String::from_utf8(mangled).unwrap();
        assert!(
            !mosquitto_pub(broker.port, "dev_0001", own, &["-u", &guid, "-P", &mangled])
                .status
                .success(),
            "a token with another signature is refused"
        );

        // The product's TTL is read per request: a new token lives 4 s, and
        // its session is closed when it expires.
        cli(url, &["product", "update", "Ab3dEf9h", "--token-ttl", "4"]);
        let (short, _) = authenticate(&service, &pair).await;
        token_session_ends_at_exp(&DeviceLogin::token(broker.port, &short), 4).await;
        service.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_an_agent_registers_until_the_first_login_through_mosquitto() {
    let db = db::sqlite();
    let url = &db.url;
    seed(url);
    cli(url, &["product", "create", "Zz9Zz9Zz"]);
    let agent = text(&cli(url, &["agent", "create", "a1", "--products", "Ab3dEf9h"]), "token");
    let other = text(&cli(url, &["agent", "create", "a2", "--products", "Zz9Zz9Zz"]), "token");
    let broker = broker(url, "");
    let service = Service::start(url, &[]).await;
    let path = "/v1/Ab3dEf9h/agent/devices";
    let register = json!({"data": {"hw_id": "dev_new"}});

    let first = service.post(path, Some(&agent), &register).await;
    let first = text(&first.ok(201)["data"], "credentials_secret");
    let second = service.post(path, Some(&agent), &register).await;
    let second = text(&second.ok(201)["data"], "credentials_secret");
    assert_ne!(first, second, "a fresh secret every time");

    // The second secret logs in once the broker has the device; the first
    // no longer does.
    let with_second = sign("Ab3dEf9h", "dev_new", &second, &[]);
    accepted_soon(broker.port, &with_second).await;
    assert!(
        login_refused(broker.port, &sign("Ab3dEf9h", "dev_new", &first, &[])).await,
        "the first secret is replaced"
    );

    // The broker writes the activation behind. Polling the registration
    // itself would issue a new secret each time it still succeeds (and
    // undo the login it waits for), so the database is watched instead.
    eventually("the first login activates the device", || {
        !cli(url, &["device", "show", "Ab3dEf9h", "dev_new"])["activated_at"].is_null()
    })
    .await;
    let refused = service.post(path, Some(&agent), &register).await.error(422);
    assert_eq!(refused, "device already registered");
    connect_with(broker.port, &with_second, Duration::from_secs(5))
        .await
        .expect("the refused registration changed nothing");

    let unregistered = service.delete("/v1/Ab3dEf9h/agent/devices/dev_new", Some(&agent)).await;
    assert_eq!(unregistered.status, 204, "{unregistered:?}");
    let third = service.post(path, Some(&agent), &register).await;
    let third = text(&third.ok(201)["data"], "credentials_secret");
    accepted_soon(broker.port, &sign("Ab3dEf9h", "dev_new", &third, &[])).await;

    service.post(path, Some(&other), &register).await.error(403);
    service
        .delete("/v1/Ab3dEf9h/agent/devices/dev_new", Some(&other))
        .await
        .error(403);
    service.stop();
}

/// A CA, a server certificate for 127.0.0.1, and a key with a CSR made by
/// openssl (the key never leaves `dir`), for device certificates.
fn pki(url: &str, dir: &Path) {
    let ca = dir.join("ca");
    cli(url, &["ca", "init", "--dir", ca.to_str().unwrap()]);
    cli(
        url,
        &[
            "ca",
            "server-cert",
            "--dir",
            ca.to_str().unwrap(),
            "--ip",
            "127.0.0.1",
            "--dns",
            "localhost",
            "--out",
            dir.join("server").to_str().unwrap(),
        ],
    );
    let made = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=x", "-keyout"])
        .arg(dir.join("device.key"))
        .arg("-out")
        .arg(dir.join("device.csr"))
        .output()
        .expect("openssl (apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_a_psk_and_a_certificate_from_the_admin_api_log_in_and_bootstrap_answers() {
    let db = db::sqlite();
    let url = &db.url;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    seed(url);
    pki(url, dir);
    let admin = text(&cli(url, &["agent", "create", "admin1", "--admin"]), "token");
    let (psk_port, tls_port) = (free_port(), free_port());
    let broker = broker(
        url,
        &format!(
            "listener {psk_port} 127.0.0.1\npsk_hint devicegate\n\
             listener {tls_port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\nrequire_certificate true\n",
            ca = dir.join("ca/ca.pem").display(),
            cert = dir.join("server.pem").display(),
            key = dir.join("server.key").display(),
        ),
    );
    let service = Service::start(url, &["--ca-dir", dir.join("ca").to_str().unwrap()]).await;

    // A PSK for dev_0001, created while the broker runs.
    let psk = service
        .post("/v1/admin/devices/Ab3dEf9h/dev_0001/psk", Some(&admin), &json!({}))
        .await;
    let (identity, key) = (text(psk.ok(201), "identity"), text(psk.ok(201), "key"));
    let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
    let subscriber = support::first_device_message(broker.port).await;
    until_success("the PSK from the admin API logs in", || {
        mosquitto_pub(psk_port, "dev_0001", own, &["--psk", &key, "--psk-identity", &identity])
    });
    let seen = subscriber.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&seen.stdout).trim(), format!("{own} 21.5"));

    // A certificate for dev_0003 from the CSR openssl made.
    let csr = std::fs::read_to_string(dir.join("device.csr")).unwrap();
    let issued = service
        .post(
            "/v1/admin/devices/Ab3dEf9h/dev_0003/certificates",
            Some(&admin),
            &json!({"csr": csr, "days": 30}),
        )
        .await;
    let issued = issued.ok(201).clone();
    let cert = dir.join("device.pem");
    std::fs::write(&cert, text(&issued, "certificate")).unwrap();
    let registered = cli(url, &["device", "show", "Ab3dEf9h", "dev_0003"]);
    assert!(
        registered["credentials"]
            .as_array()
            .is_some_and(|all| all.iter().any(|c| c["identity"] == issued["fingerprint"])),
        "registered to the device: {registered}"
    );
    let ca = dir.join("ca/ca.pem");
    let (ca, cert, device_key) = (ca.to_str().unwrap(), cert.to_str().unwrap(), dir.join("device.key"));
    until_success("the certificate from the admin API logs in", || {
        mosquitto_pub(
            tls_port,
            "dev_0003",
            "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post",
            &["--cafile", ca, "--cert", cert, "--key", device_key.to_str().unwrap()],
        )
    });
    eventually("the certificate login activates dev_0003", || {
        !device_show(url, "dev_0003")["activated_at"].is_null()
    })
    .await;

    // Bootstrap by signature answers the server the device is assigned to.
    let server = "mqtts://broker-b.example:8883";
    cli(url, &["device", "assign", "Ab3dEf9h", "dev_0001", "--server", server]);
    let timestamp = now_ms().to_string();
    let request = json!({
        "productKey": "Ab3dEf9h",
        "deviceKey": "dev_0001",
        "timestamp": timestamp,
        "signMethod": "sha256",
        "sign": bootstrap_sign("Ab3dEf9h", "dev_0001", &timestamp, b"S3cretDevice0001"),
    });
    let answer = service.post("/bootstrap", None, &request).await;
    let answer = answer.ok(200);
    assert_eq!(text(answer, "server"), server);
    assert_eq!(
        text(answer, "caCertificate"),
        std::fs::read_to_string(ca).unwrap(),
        "the service's CA"
    );
    drop(broker);
    service.stop();
}
