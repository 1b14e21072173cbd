//! A runnable embedded rumqttd broker with devicegate in front (MQTT 3.1.1
//! on TCP).
//!
//! ```sh
//! cargo run -p devicegate-rumqttd --example rumqttd_broker -- sqlite://devicegate.db 127.0.0.1:1883
//! ```
//!
//! Create products and devices with the `devicegate` CLI on the same
//! database; `devicegate sign` prints credentials to try with any client.
//! What rumqttd cannot do (CONNACK codes, SUBACK failures, sending to one
//! client) is listed in the crate docs of `devicegate-rumqttd`.
//! `--no-auth` instead of a database URL runs plain rumqttd, the baseline
//! `benches/adapters.sh` measures devicegate's overhead against.

use std::sync::Arc;
use std::time::Duration;

use devicegate::engine::{EngineConfig, Hooks};
use devicegate::sync::{Authenticator, SyncConfig};
use devicegate_rumqttd::{Gate, broker};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rumqttd=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let (Some(url), address) = (args.next(), args.next()) else {
        eprintln!("usage: rumqttd_broker (DATABASE_URL | --no-auth) [ADDRESS:PORT]");
        std::process::exit(2);
    };
    let address = address.unwrap_or_else(|| "127.0.0.1:1883".to_owned()).parse()?;
    if url == "--no-auth" {
        eprintln!("plain rumqttd on {address} WITHOUT authentication (benchmark baseline)");
        broker::serve_without_devicegate(address)?;
        return Ok(());
    }
    let hooks: Arc<dyn Hooks> = Arc::new(Authenticator::start(
        EngineConfig::default(),
        SyncConfig::default(),
        &url,
    )?);
    let gate = Gate::new(hooks);
    gate.spawn_ticker(Duration::from_millis(100))?;
    eprintln!(
        "devicegate rumqttd broker on {address}, database {}",
        devicegate::store::redact_url(&url)
    );
    broker::serve(address, gate)?;
    Ok(())
}
