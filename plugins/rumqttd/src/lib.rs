//! devicegate for an embedded [rumqttd](https://crates.io/crates/rumqttd)
//! 0.20 broker.
//!
//! - **Logins** go through rumqttd's auth handler ([`Gate::auth_handler`]).
//!   The wrapper ([`Gate::protocol`]) sees each CONNECT first and hands its
//!   connection to the handler's decision. rumqttd answers a refused login
//!   by closing the socket **without a CONNACK**, so every refusal of
//!   PROTOCOL.md §8.1 looks like a lost connection to the device; the
//!   reason is in devicegate's log. The handler gets no peer address, so
//!   failed logins are limited per device only.
//! - **Publish and subscribe checks** happen in the wrapper around
//!   rumqttd's codec (rumqttd has no ACL hook). A denied publish or filter
//!   **closes the connection**: there is no way to answer SUBACK 0x80 or
//!   PUBACK 0x87 from a codec. Wills and retained messages are not seen.
//! - **Online/offline** follows the wrapper's lifetime: accepted on login,
//!   offline when rumqttd drops the connection.
//! - **Effects**: rumqttd cannot send to one client or close a client from
//!   outside. A push (activation secret, gateway reply) is written, QoS 0,
//!   after the next packet rumqttd sends that client (at the latest its
//!   keep-alive PINGRESP); a kick closes the connection at its next packet
//!   (at the latest its keep-alive PINGREQ). Messages the engine consumes
//!   (activation replies) are still routed to their topic's subscribers.
//! - **TLS identities**: rumqttd terminates TLS itself and gives the auth
//!   handler the client id, username and password only, never the peer
//!   certificate or a PSK identity, so no certificate or PSK login can be
//!   offered here without faking the identity. Devices on rumqttd log in
//!   with the signed triple (IDENTITIES.md §2–§3 need a broker that shows
//!   the handshake: Mosquitto, the ntex-mqtt adapter, the C ABI).
//!
//! [`broker::serve`] runs a complete embedded broker wired this way.

pub mod broker;
mod gate;
mod protocol;

pub use gate::Gate;
pub use protocol::GatedProtocol;
