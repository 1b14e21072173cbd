//! devicegate for [ntex-mqtt](https://crates.io/crates/ntex-mqtt) 9
//! servers. ntex-mqtt is a protocol library: the server application routes
//! messages. This crate gives it devicegate's decisions in the shape ntex
//! wants them:
//!
//! - [`v3::connect`] / [`v5::connect`] inside the CONNECT service: the
//!   right CONNACK code for each refusal, and a [`Login`] to keep in the
//!   session state;
//! - [`Login::publish`] in the publish service ([`Verdict::Denied`]: v3
//!   closes the connection, v5 answers PUBACK 0x87 with [`v5::denied`]);
//! - [`v3::subscribe`] / [`v5::subscribe`] in the protocol service: SUBACK
//!   0x80 (v3) or 0x87 (v5) for each refused filter;
//! - [`Login::end`] on `Control::Stop` (exactly once per connection): the
//!   device goes offline;
//! - effects (activation secrets, gateway replies, kicks of disabled
//!   devices) reach the session's sink through its worker, without a
//!   subscription.
//!
//! [`broker`] is a small complete broker built this way, used by the
//! example `ntex_broker` and the tests.

pub mod broker;
mod gate;
mod outlet;
pub mod tls;
pub mod v3;
pub mod v5;

pub use gate::{Delivery, Gate, Login, Verdict};
pub use outlet::{Outlet, deliver};

/// Decides the CONNECT of a v3 or v5 client with these fields, arriving on
/// `io` (whose peer address feeds the failed-login limits, and whose client
/// certificate, on a TLS listener, names the device).
fn login(
    gate: &std::sync::Arc<Gate>,
    io: &ntex_io::IoBoxed,
    client_id: &ntex_bytes::ByteString,
    username: Option<&ntex_bytes::ByteString>,
    password: Option<&ntex_bytes::Bytes>,
) -> Result<(Login, tokio::sync::mpsc::UnboundedReceiver<Delivery>), gate::Refused> {
    let address = io
        .query::<ntex_io::types::PeerAddr>()
        .get()
        .map(|peer| peer.0.ip().to_string());
    let certificate = tls::peer_certificate(io);
    let mut request = devicegate::engine::ConnectRequest::new(
        client_id.as_bytes(),
        username.map(|u| u.as_bytes().as_ref()),
        password.map(|p| p.as_ref()),
        address.as_deref(),
    );
    if let Some(der) = &certificate {
        request = request.with_tls(devicegate::engine::TlsIdentity::Certificate(der));
    }
    gate.login(&request)
}
