//! Login verification, one scheme per file (IDENTITIES.md §1).
//!
//! [`Presented`] says what a client presented; each scheme has one pure
//! function that decides whether that proves a device, with the same work
//! for an unknown identity as for a known one, and returns a [`Grant`] or
//! the [`Refusal`]. Nothing here reads a clock, a database or connection
//! state: the engine's login orchestrates (rate limit → parse → registry →
//! verify → lifecycle → session), and the gateway's sub-device login uses
//! the same functions.
//!
//! A new identity scheme is one file here and one variant of [`Presented`].

mod access_token;
mod activation;
mod certificate;
mod device_token;
mod just_in_time;
mod psk;
mod registration;
mod timestamp;
mod triple;

use std::sync::Arc;

#[cfg(doc)]
use crate::credentials::Presented;
use crate::credentials::Registration;
use crate::decision::Refusal;
use crate::lifecycle::Event;
use crate::registry::{CredentialKind, DeviceRecord, Product};

pub use access_token::{Named, Signature, verify as verify_access_token};
pub use activation::verify as verify_activation;
pub use certificate::verify as verify_certificate;
pub use device_token::verify as verify_device_token;
pub use just_in_time::{NewCertificate, just_in_time};
pub use psk::verify as verify_psk;
pub use registration::verify as verify_registration;
pub use timestamp::timestamp_fresh;
pub use triple::verify as verify_triple;

/// The kind of session a verified login opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// The device's own topics.
    Normal,
    /// An EnOS activation session: waits for its secret push.
    Activation,
    /// An Aliyun registration session: one push, then closed.
    Registration(Registration),
}

/// The credential a session logged in with, so that revoking it throws
/// that session off and no other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// The device secret.
    Secret,
    /// The product secret (an activation or registration session).
    ProductSecret,
    /// An Aliyun device token (`connwl`).
    DeviceToken,
    /// A credential of the credentials table: a PSK by identity, a
    /// certificate by fingerprint.
    Credential(CredentialKind, Box<str>),
    /// A device token (IDENTITIES.md §4), by the key id that signed it.
    AccessToken(Box<str>),
}

/// What a verified login proved: the device, its product, the session it
/// may open and the lifecycle event the login is.
#[derive(Debug)]
pub struct Grant {
    /// `{dk}&{pk}`.
    pub key: Box<str>,
    /// The device's product.
    pub product: Arc<Product>,
    /// The session the login opens.
    pub session: SessionKind,
    /// The lifecycle event (DESIGN.md §4) the engine applies to the device.
    pub event: Event,
    /// The device proved its pending secret, not its current one.
    pub confirms_pending: bool,
    /// The credential used.
    pub via: Via,
    /// When the credential stops being valid (a certificate's end of
    /// validity, a device token's `exp`), ms since the UNIX epoch: the
    /// session is closed then.
    pub expires_at_ms: Option<u64>,
}

impl Grant {
    /// A normal session of `key` with a device credential.
    fn normal(key: Box<str>, product: Arc<Product>, via: Via) -> Self {
        Grant {
            key,
            product,
            session: SessionKind::Normal,
            event: Event::SecretLoginVerified,
            confirms_pending: false,
            via,
            expires_at_ms: None,
        }
    }
}

/// The registry's view of the device a login names: its product and
/// record, each absent when unknown. Verification runs the same work
/// either way and refuses afterwards.
#[derive(Debug, Clone, Copy)]
pub struct Found<'r> {
    /// The product, if it exists.
    pub product: Option<&'r Arc<Product>>,
    /// The device, if it exists.
    pub record: Option<&'r DeviceRecord>,
}

impl<'r> Found<'r> {
    /// The product and record, or the refusal for whichever is missing.
    fn require(self) -> Result<(&'r Arc<Product>, &'r DeviceRecord), Refusal> {
        let product = self.product.ok_or(Refusal::UnknownProduct)?;
        let record = self.record.ok_or(Refusal::UnknownDevice)?;
        Ok((product, record))
    }
}
