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
    let mut args = std::env::args().skip(1);
    let (Some(url), address) = (args.next(), args.next()) else {
        eprintln!("usage: ntex_broker (DATABASE_URL | --no-auth) [ADDRESS:PORT]");
        std::process::exit(2);
    };
    let address = address.unwrap_or_else(|| "127.0.0.1:1883".to_owned()).parse()?;
    let hooks: Arc<dyn Hooks> = if url == "--no-auth" {
        eprintln!("ntex broker on {address} WITHOUT authentication (benchmark baseline)");
        Arc::new(NoAuth)
    } else {
        eprintln!(
            "devicegate ntex broker on {address}, database {}",
            devicegate::store::redact_url(&url)
        );
        Arc::new(Authenticator::start(
            EngineConfig::default(),
            SyncConfig::default(),
            &url,
        )?)
    };
    let gate = Gate::new(hooks);
    gate.spawn_ticker(Duration::from_millis(100))?;
    broker::serve(address, gate)?;
    Ok(())
}
