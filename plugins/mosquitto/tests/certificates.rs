//! Device certificates end to end (IDENTITIES.md §3): a real Mosquitto
//! with a TLS listener that requires client certificates signed by the
//! devicegate CA (`devicegate ca init`, `ca server-cert`), devices with
//! certificates from `devicegate device cert issue`, and the plugin
//! mapping each presented certificate to its device by fingerprint.
//! Devices are `mosquitto_pub` with `--cert --key`, and rumqttc through a
//! real `openssl s_client -cert`, which runs the shared scenarios.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use devicegate_test_support as db;
use devicegate_test_support::cli;
use devicegate_test_support::mqtt::{connect_with, eventually, seed};
use devicegate_test_support::scenarios::{
    DeviceLogin, closed, device_show, disabling_kicks, own_topics_are_routed, single_session,
};
use devicegate_test_support::tls_relay::TlsRelay;
use support::{Broker, free_port};

/// A CA, a server certificate for 127.0.0.1 and certificates for the
/// fleet's `dev_0001` and `dev_0003`, in a temp dir.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(url: &str) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca");
        let ca = ca.to_str().unwrap();
        cli(url, &["ca", "init", "--dir", ca]);
        let server = dir.path().join("server");
        cli(
            url,
            &[
                "ca",
                "server-cert",
                "--dir",
                ca,
                "--ip",
                "127.0.0.1",
                "--dns",
                "localhost",
                "--out",
                server.to_str().unwrap(),
            ],
        );
        let pki = Pki { dir };
        pki.issue(url, "dev_0001");
        pki.issue(url, "dev_0003");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca(&self) -> PathBuf {
        self.path("ca/ca.pem")
    }

    /// `device cert issue Ab3dEf9h DK` into `DK.pem` / `DK.key`; the fingerprint.
    fn issue(&self, url: &str, dk: &str) -> String {
        let out = self.path(dk);
        let issued = cli(
            url,
            &[
                "device",
                "cert",
                "issue",
                "Ab3dEf9h",
                dk,
                "--ca-dir",
                self.path("ca").to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
        issued["fingerprint"].as_str().unwrap().to_owned()
    }

    /// The listener lines a user adds for certificate devices.
    fn listener(&self, port: u16) -> String {
        format!(
            "listener {port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            self.ca().display(),
            self.path("server.pem").display(),
            self.path("server.key").display()
        )
    }
}

fn cert_broker(url: &str, pki: &Pki) -> (Broker, u16) {
    let tls_port = free_port();
    let broker = Broker::spawn(url, &pki.listener(tls_port));
    broker.wait_for_log("registry loaded", Duration::from_secs(15));
    (broker, tls_port)
}

/// `mosquitto_pub` with a client certificate, QoS 1.
fn cert_pub(port: u16, pki: &Pki, name: &str, extra: &[&str], topic: &str) -> Output {
    let (cert, key) = (pki.path(&format!("{name}.pem")), pki.path(&format!("{name}.key")));
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(pki.ca())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .args(["-i", "dev_0001", "-q", "1", "-t", topic, "-m", "21.5"])
        .args(extra)
        .output()
        .expect("mosquitto_pub (apt-get install mosquitto-clients)")
}

const OWN: &str = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_logs_a_device_in_and_a_valid_chain_alone_does_not() {
    let db = db::sqlite();
    seed(&db.url);
    let pki = Pki::new(&db.url);
    // Signed by the same CA but registered in another database only.
    let other = db::sqlite();
    seed(&other.url);
    cli(&other.url, &["device", "create", "Ab3dEf9h", "dev_0009"]);
    let foreign = pki.path("foreign");
    cli(
        &other.url,
        &[
            "device",
            "cert",
            "issue",
            "Ab3dEf9h",
            "dev_0009",
            "--ca-dir",
            pki.path("ca").to_str().unwrap(),
            "--out",
            foreign.to_str().unwrap(),
        ],
    );
    let (broker, tls_port) = cert_broker(&db.url, &pki);
    let sub = support::first_device_message(broker.port).await;
    let good = cert_pub(tls_port, &pki, "dev_0001", &[], OWN);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let out = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("{OWN} 21.5"));
    eventually("a certificate login activates the device", || {
        !device_show(&db.url, "dev_0001")["activated_at"].is_null()
    })
    .await;

    let unregistered = cert_pub(tls_port, &pki, "foreign", &[], OWN);
    assert!(
        !unregistered.status.success(),
        "a trusted but unregistered certificate is refused"
    );
    assert!(String::from_utf8_lossy(&unregistered.stderr).contains("not authorised"));
    broker.wait_for_log("unknown certificate, not registered", Duration::from_secs(5));

    let mismatch = cert_pub(tls_port, &pki, "dev_0001", &["-u", "dev_0003&Ab3dEf9h"], OWN);
    assert!(!mismatch.status.success());
    broker.wait_for_log(
        "username names another device than the TLS credential",
        Duration::from_secs(5),
    );
    let same = cert_pub(tls_port, &pki, "dev_0001", &["-u", "dev_0001&Ab3dEf9h"], OWN);
    assert!(same.status.success(), "{}", String::from_utf8_lossy(&same.stderr));

    cli(&db.url, &["device", "cert", "revoke", "Ab3dEf9h", "dev_0003"]);
    eventually("the broker sees the revocation", || {
        !cert_pub(
            tls_port,
            &pki,
            "dev_0003",
            &[],
            "/sys/Ab3dEf9h/dev_0003/thing/measurepoint/post",
        )
        .status
        .success()
    })
    .await;
    cli(&db.url, &["device", "disable", "Ab3dEf9h", "dev_0001"]);
    eventually("a disabled device's certificate is refused", || {
        !cert_pub(tls_port, &pki, "dev_0001", &[], OWN).status.success()
    })
    .await;
    broker.wait_for_log("reason=device disabled", Duration::from_secs(5));
    let log = broker.log();
    assert!(!log.contains("PRIVATE KEY"), "no key in the log");
}

/// `tests/clients/paho_tls.py ARGS`: paho-mqtt as a device.
pub fn paho(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/paho_tls.py"))
        .args(args)
        .output()
        .expect("python3 with paho-mqtt 2 (scripts/test.sh installs it: pip install 'paho-mqtt>=2')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_logs_in_with_a_client_certificate_and_no_username() {
    let db = db::sqlite();
    seed(&db.url);
    let pki = Pki::new(&db.url);
    let (_broker, tls_port) = cert_broker(&db.url, &pki);
    let path = |name: &str| pki.path(name).display().to_string();
    let port = tls_port.to_string();
    let run = |dk: &str| {
        paho(&[
            "cert",
            &port,
            dk,
            OWN,
            &path("ca/ca.pem"),
            &path(&format!("{dk}.pem")),
            &path(&format!("{dk}.key")),
        ])
    };
    let accepted = run("dev_0001");
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    cli(&db.url, &["device", "cert", "revoke", "Ab3dEf9h", "dev_0003"]);
    eventually("paho's revoked certificate is refused", || {
        let refused = run("dev_0003");
        refused.status.code() == Some(1) && String::from_utf8_lossy(&refused.stderr).contains("login refused")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_devices_pass_the_shared_scenarios() {
    for db in [db::sqlite(), db::postgres().await] {
        seed(&db.url);
        let pki = Pki::new(&db.url);
        let (broker, tls_port) = cert_broker(&db.url, &pki);
        let relay = TlsRelay::certificate(
            tls_port,
            &pki.ca(),
            &pki.path("dev_0001.pem"),
            &pki.path("dev_0001.key"),
        );
        let device = DeviceLogin::tls(relay.port);
        drop(own_topics_are_routed(broker.port, &device).await);
        single_session(&db.url, &device).await;
        disabling_kicks(&db.url, &device).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_certificate_closes_its_connection_within_two_seconds() {
    let db = db::sqlite();
    seed(&db.url);
    let pki = Pki::new(&db.url);
    let (_broker, tls_port) = cert_broker(&db.url, &pki);
    let relay = TlsRelay::certificate(
        tls_port,
        &pki.ca(),
        &pki.path("dev_0001.pem"),
        &pki.path("dev_0001.key"),
    );
    let kept = TlsRelay::certificate(
        tls_port,
        &pki.ca(),
        &pki.path("dev_0003.pem"),
        &pki.path("dev_0003.key"),
    );
    let (_client, mut events) = connect_with(
        relay.port,
        &DeviceLogin::tls(relay.port).credentials,
        Duration::from_secs(1),
    )
    .await
    .expect("certificate login accepted");
    let other = ("dev_0003".to_owned(), String::new(), String::new());
    let (_other, mut other_events) = connect_with(kept.port, &other, Duration::from_secs(1))
        .await
        .expect("dev_0003 accepted");
    eventually("online", || device_show(&db.url, "dev_0001")["online"] == true).await;
    let start = Instant::now();
    cli(&db.url, &["device", "cert", "revoke", "Ab3dEf9h", "dev_0001"]);
    assert!(closed(&mut events).await, "closed after the revocation");
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(2), "closed after {elapsed:?}");
    eprintln!("revoking a certificate closed its connection after {elapsed:?}");
    assert!(
        devicegate_test_support::scenarios::stays_open(&mut other_events, Duration::from_secs(2)).await,
        "another device's certificate session stays"
    );
    let crl = cli(&db.url, &["ca", "crl", "--dir", pki.path("ca").to_str().unwrap()]);
    assert_eq!(crl["revoked"], 1, "{crl}");
    let crl_file = pki.path("crl.pem");
    std::fs::write(&crl_file, crl["crl"].as_str().unwrap()).unwrap();
    let checked = Command::new("openssl")
        .args(["verify", "-crl_check", "-CAfile"])
        .arg(pki.ca())
        .arg("-CRLfile")
        .arg(&crl_file)
        .arg(pki.path("dev_0001.pem"))
        .output()
        .unwrap();
    assert!(!checked.status.success(), "openssl finds dev_0001 revoked by the CRL");
    assert!(
        String::from_utf8_lossy(&checked.stdout).contains("revoked")
            || String::from_utf8_lossy(&checked.stderr).contains("revoked")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_certificate_registers_its_device_just_in_time() {
    let db = db::sqlite();
    seed(&db.url);
    cli(&db.url, &["product", "create", "Jit0Prod", "--auto-register-certs"]);
    let pki = Pki::new(&db.url);
    // A factory signs a certificate for a device the database does not know
    // (here: through a second database, with the same CA).
    let factory = db::sqlite();
    cli(&factory.url, &["product", "create", "Jit0Prod"]);
    cli(&factory.url, &["product", "create", "Ab3dEf9h"]);
    let ca_dir = pki.path("ca");
    for (pk, dk) in [("Jit0Prod", "sensor_7"), ("Ab3dEf9h", "dev_0042")] {
        cli(&factory.url, &["device", "create", pk, dk]);
        let out = pki.path(dk);
        cli(
            &factory.url,
            &[
                "device",
                "cert",
                "issue",
                pk,
                dk,
                "--ca-dir",
                ca_dir.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
        );
    }
    let (broker, tls_port) = cert_broker(&db.url, &pki);
    let topic = "/sys/Jit0Prod/sensor_7/thing/measurepoint/post";
    let pub_as = |name: &str, topic: &str| {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "--cafile"])
            .arg(pki.ca())
            .arg("--cert")
            .arg(pki.path(&format!("{name}.pem")))
            .arg("--key")
            .arg(pki.path(&format!("{name}.key")))
            .args(["-i", name, "-q", "1", "-t", topic, "-m", "1"]);
        cmd.output().unwrap()
    };
    let first = pub_as("sensor_7", topic);
    assert!(!first.status.success(), "the first login registers, and is refused");
    broker.wait_for_log("registering a certificate just in time", Duration::from_secs(5));
    eventually("the device exists", || {
        cli(&db.url, &["device", "list", "Jit0Prod"])
            .as_array()
            .is_some_and(|d| d.len() == 1)
    })
    .await;
    let start = Instant::now();
    while !pub_as("sensor_7", topic).status.success() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the next login is not accepted:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let shown = cli(&db.url, &["device", "show", "Jit0Prod", "sensor_7"]);
    assert_eq!(shown["credentials"][0]["kind"], "certificate", "{shown}");
    assert!(
        !shown["activated_at"].is_null() || shown["online"].is_boolean(),
        "{shown}"
    );

    // A product without the flag registers nothing.
    assert!(
        !pub_as("dev_0042", "/sys/Ab3dEf9h/dev_0042/thing/measurepoint/post")
            .status
            .success()
    );
    broker.wait_for_log("the product does not register certificates", Duration::from_secs(5));
    assert!(
        cli(&db.url, &["device", "list", "Ab3dEf9h"])
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["device_key"] != "dev_0042")
    );
}
