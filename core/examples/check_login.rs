//! Starts an Authenticator on a database and runs a login through the
//! broker hooks, as a broker would: the real signature, then a forged one.
//!
//! ```text
//! cargo run -p devicegate --example check_login -- DATABASE_URL PK DK SECRET
//! ```

use std::time::{Duration, Instant};

use devicegate::clock::now_ms;
use devicegate::engine::{ConnectRequest, ConnectionId, EngineConfig, Hooks};
use devicegate::sign::{Content, HashAlg, Scheme, SignMethod, compute};
use devicegate::sync::{Authenticator, SyncConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, pk, dk, secret] = args.as_slice() else {
        return Err("usage: check_login DATABASE_URL PRODUCT_KEY DEVICE_KEY SECRET".into());
    };
    let auth = Authenticator::start(EngineConfig::default(), SyncConfig::default(), url)?;
    let start = Instant::now();
    while !auth.is_ready() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("the registry did not load within 10 s (see the log above)".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("registry loaded: {} devices", auth.engine().registry().device_count());
    let timestamp = now_ms().to_string();
    let client_id = format!("{dk}|securemode=2,signmethod=sha256,timestamp={timestamp}|");
    let content = Content::new(&[
        ("clientId", dk),
        ("deviceKey", dk),
        ("productKey", pk),
        ("timestamp", &timestamp),
    ]);
    let method = SignMethod {
        alg: HashAlg::Sha256,
        scheme: Scheme::AppendSecret,
    };
    let username = format!("{dk}&{pk}");
    for (label, key) in [
        ("signed with the device secret", secret.as_str()),
        ("forged", "not-the-secret"),
    ] {
        let password = compute(method, &content, key.as_bytes()).to_hex_upper();
        let request = ConnectRequest::new(
            client_id.as_bytes(),
            Some(username.as_bytes()),
            Some(password.as_bytes()),
            Some("127.0.0.1"),
        );
        let decision = auth.handle_connect(ConnectionId(1), &request, now_ms());
        println!(
            "login {label}: {decision:?} (CONNACK {})",
            decision.outcome().mqtt3_code()
        );
        let topic = format!("/sys/{pk}/{dk}/thing/measurepoint/post");
        println!(
            "  publish {topic}: {:?}",
            auth.authorize_publish(ConnectionId(1), &topic, false, now_ms())
        );
        println!(
            "  subscribe /sys/+/+/#: {:?}",
            auth.authorize_subscribe(ConnectionId(1), "/sys/+/+/#", now_ms())
        );
        auth.handle_disconnect(ConnectionId(1), now_ms());
    }
    auth.shutdown();
    Ok(())
}
