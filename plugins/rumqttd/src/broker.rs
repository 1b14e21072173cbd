//! An embedded rumqttd with devicegate: rumqttd's router and one MQTT 3.1.1
//! TCP listener whose codec is wrapped by [`crate::GatedProtocol`] and
//! whose logins go through [`crate::Gate::auth_handler`]. rumqttd's own
//! `Broker::start` cannot take a wrapped codec, so this wires the parts it
//! is made of (its console, metrics and config file are not started).

use std::net::SocketAddr;
use std::sync::Arc;

use rumqttd::protocol::v4::V4;
use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};

use crate::gate::Gate;

/// rumqttd's router limits, as in its sample configuration.
fn router_config() -> RouterConfig {
    RouterConfig {
        max_connections: 10_010,
        max_outgoing_packet_count: 200,
        max_segment_size: 104_857_600,
        max_segment_count: 10,
        ..RouterConfig::default()
    }
}

/// Serves MQTT 3.1.1 on `addr` until the process ends, with devicegate
/// deciding every login, publish and subscription. Blocks the calling
/// thread (a current-thread tokio runtime, as rumqttd runs its listeners).
pub fn serve(addr: SocketAddr, gate: Arc<Gate>) -> std::io::Result<()> {
    let mut settings = server_settings(addr);
    settings.connections.set_auth_handler(gate.auth_handler());
    run(Server::new(
        settings,
        Router::new(0, router_config()).spawn(),
        gate.protocol(V4),
    ))
}

/// The same broker without devicegate: no authentication, no topic rules.
/// The baseline `benches/adapters.sh` measures devicegate's cost against.
pub fn serve_without_devicegate(addr: SocketAddr) -> std::io::Result<()> {
    run(Server::new(
        server_settings(addr),
        Router::new(0, router_config()).spawn(),
        V4,
    ))
}

fn server_settings(addr: SocketAddr) -> ServerSettings {
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 256 * 1024,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    ServerSettings {
        name: "devicegate".to_owned(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    }
}

fn run<P: rumqttd::protocol::Protocol + Clone + Send + 'static>(mut server: Server<P>) -> std::io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(server.start(LinkType::Remote))
        .map_err(|e| std::io::Error::other(e.to_string()))
}
