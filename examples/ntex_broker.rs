//! A runnable MQTT broker on ntex-mqtt with devicegate in front.
//!
//! ```sh
//! cargo run -p devicegate-ntex --example ntex_broker -- sqlite://devicegate.db 127.0.0.1:1883
//! ```
//!
//! Create products and devices with the `devicegate` CLI on the same
//! database; `devicegate sign` prints credentials to try with any client.
//! `--no-auth` instead of a database URL runs the same broker letting
//! everyone do everything: the baseline `benches/adapters.sh` measures
//! devicegate's overhead against.
//!
//! A TLS listener where devices log in with their certificate alone
//! (`devicegate ca init`, `ca server-cert`, `device cert issue`):
//!
//! ```sh
//! cargo run -p devicegate-ntex --example ntex_broker -- sqlite://devicegate.db 127.0.0.1:1883 \
//!     --tls 127.0.0.1:8883 --cert broker.pem --key broker.key --client-ca ca/ca.pem
//! ```
//!
//! `--server-url mqtt://HOST:PORT` tells the broker its own URL: devices
//! assigned to another (`devicegate device assign`) get CONNACK 0x9C with
//! the Server Reference (MQTT 5) or not authorized (MQTT 3.1.1).

use std::sync::Arc;
use std::time::Duration;

use devicegate::decision::AccessDecision;
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Effect, EngineConfig, Hooks, MessageDecision};
use devicegate::sync::{Authenticator, SyncConfig};
use devicegate_ntex::{Gate, broker};

/// No authentication and no topic rules: the broker alone, for comparison.
struct NoAuth;

impl Hooks for NoAuth {
    fn handle_connect(&self, _: ConnectionId, _: &ConnectRequest<'_>, _: u64) -> ConnectDecision {
        ConnectDecision::Accept
    }
    fn authorize_publish(&self, _: ConnectionId, _: &str, _: bool, _: u64) -> AccessDecision {
        AccessDecision::Allow
    }
    fn handle_message(&self, _: ConnectionId, _: &str, _: &[u8], _: u64) -> MessageDecision {
        MessageDecision::Forward
    }
    fn authorize_subscribe(&self, _: ConnectionId, _: &str, _: u64) -> AccessDecision {
        AccessDecision::Allow
    }
    fn handle_unsubscribe(&self, _: ConnectionId, _: &str) {}
    fn authorize_delivery(&self, _: ConnectionId, _: &str) -> AccessDecision {
        AccessDecision::Allow
    }
    fn handle_disconnect(&self, _: ConnectionId, _: u64) {}
    fn handle_tick(&self, _: u64) {}
    fn poll_effect(&self) -> Option<Effect> {
        None
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ntex_server=warn,ntex_service=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let usage = "usage: ntex_broker (DATABASE_URL | --no-auth) [ADDRESS:PORT] \
                 [--tls ADDRESS:PORT --cert FILE --key FILE --client-ca FILE] [--server-url URL]";
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut address = "127.0.0.1:1883".to_owned();
    let (mut tls, mut cert, mut key, mut client_ca, mut server_url) = (None, None, None, None, None);
    while let Some(arg) = args.next() {
        let slot = match arg.as_str() {
            "--tls" => &mut tls,
            "--cert" => &mut cert,
            "--key" => &mut key,
            "--client-ca" => &mut client_ca,
            "--server-url" => &mut server_url,
            _ if !arg.starts_with("--") => {
                address = arg;
                continue;
            }
            _ => {
                eprintln!("unknown option {arg}\n{usage}");
                std::process::exit(2);
            }
        };
        *slot = args.next();
    }
    let address = address.parse()?;
    let tls = match (tls, cert, key, client_ca) {
        (None, None, None, None) => None,
        (Some(tls), Some(cert), Some(key), Some(ca)) => Some((
            tls.parse()?,
            devicegate_ntex::tls::server_config(cert.as_ref(), key.as_ref(), ca.as_ref())?,
        )),
        _ => {
            eprintln!("--tls needs --cert, --key and --client-ca\n{usage}");
            std::process::exit(2);
        }
    };
    let hooks: Arc<dyn Hooks> = if url == "--no-auth" {
        eprintln!("ntex broker on {address} WITHOUT authentication (benchmark baseline)");
        Arc::new(NoAuth)
    } else {
        eprintln!(
            "devicegate ntex broker on {address}, database {}",
            devicegate::store::redact_url(&url)
        );
        // With --server-url, devices assigned to another broker get CONNACK
        // 0x9C and its URL (MQTT 5), or not authorized (MQTT 3.1.1).
        let config = EngineConfig {
            server_url,
            ..EngineConfig::default()
        };
        Arc::new(Authenticator::start(config, SyncConfig::default(), &url)?)
    };
    let gate = Gate::new(hooks);
    gate.spawn_ticker(Duration::from_millis(100))?;
    broker::serve_listeners(
        broker::Listeners {
            plain: Some(address),
            tls,
        },
        gate,
    )?;
    Ok(())
}
