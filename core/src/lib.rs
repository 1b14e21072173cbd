//! devicegate: the device identity rules of an IoT platform hub for
//! existing MQTT brokers.
//!
//! The key decision: **no hook waits on anything**. Logins, publish,
//! subscribe and delivery checks read an in-memory [`registry`] and return
//! a decision plus effects for the broker to carry out; the database is
//! loaded, watched and written by a background task ([`store`], [`sync`]).
//! The decision modules ([`credentials`], [`sign`], [`acl`], [`lifecycle`],
//! [`engine`]) build without the `store` feature and do no I/O at all.
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod access_token;
pub mod acl;
pub mod bootstrap;
pub mod clock;
pub mod credentials;
pub mod decision;
pub mod engine;
pub mod lifecycle;
pub mod metrics;
pub mod principal;
pub mod rate_limit;
pub mod registry;
pub mod secret;
pub mod sign;
#[cfg(feature = "store")]
pub mod spool;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "store")]
pub mod sync;
pub mod verify;
