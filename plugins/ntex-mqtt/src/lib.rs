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
pub mod v3;
pub mod v5;

pub use gate::{Delivery, Gate, Login, Verdict};
pub use outlet::{Outlet, deliver};

/// The peer's IP address as text, if the transport knows it.
fn peer_address(io: &ntex_io::IoBoxed) -> Option<String> {
    io.query::<ntex_io::types::PeerAddr>()
        .get()
        .map(|peer| peer.0.ip().to_string())
}
