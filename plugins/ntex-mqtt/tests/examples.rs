//! The runnable examples, run as a user would: each embedded broker
//! (`ntex_broker`, and `rumqttd_broker` of devicegate-rumqttd) on a
//! database made with the CLI, and `device_client` activating a device
//! dynamically against it, then publishing with the secret it received.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use devicegate_test_support::mqtt::seed;
use devicegate_test_support::{self as db, build_dir, cli};

/// Kills the broker when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(name: &str) -> std::path::PathBuf {
    let path = build_dir().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is missing: `cargo build -p devicegate-ntex --examples`",
        path.display()
    );
    path
}

#[test]
fn the_device_client_activates_and_publishes_through_the_ntex_broker() {
    activate_and_publish_through("ntex_broker");
}

#[test]
fn the_device_client_activates_and_publishes_through_the_rumqttd_broker() {
    activate_and_publish_through("rumqttd_broker");
}

fn activate_and_publish_through(broker: &str) {
    let db = db::sqlite();
    seed(&db.url);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let _broker = Running(
        Command::new(example(broker))
            .args([&db.url, &address])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(&address).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "the example broker listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The registry loads in the background: until then logins are refused.
    let out = loop {
        let out = Command::new(example("device_client"))
            .args([&address, "Ab3dEf9h", "dev_0002", "--product-secret", "ProdSecretXYZ123"])
            .output()
            .unwrap();
        if out.status.success() || start.elapsed() > Duration::from_secs(20) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("activated"), "{stdout}");
    assert!(
        stdout.contains("published to /sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
        "{stdout}"
    );
    // Activation is written behind, within moments.
    let activated = || !cli(&db.url, &["device", "show", "Ab3dEf9h", "dev_0002"])["activated_at"].is_null();
    let waited = Instant::now();
    while !activated() {
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "{broker}: the activation reaches the database"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
