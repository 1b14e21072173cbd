//! TLS pre-shared keys (IDENTITIES.md §2). The TLS handshake proved the
//! key (the broker asked [`crate::engine::Engine::psk_key`] for it); the
//! login maps the identity the handshake used to its device.

use std::sync::Arc;

use super::{Found, Grant, Via};
use crate::credentials::Identity;
use crate::decision::Refusal;
use crate::registry::{CredentialKind, identity_of};

/// Verifies a login over a TLS-PSK handshake with `identity`. `device` is
/// the `{dk}&{pk}` the registry maps the identity to, `claimed` the device
/// a username named: it must be the same device.
pub fn verify(
    identity: &str,
    claimed: Option<Identity<'_>>,
    device: Option<&str>,
    found: Found<'_>,
) -> Result<Grant, Refusal> {
    let device = device.ok_or(Refusal::UnknownCredential)?;
    if claimed.is_some_and(|c| Some(c) != identity_of(device)) {
        return Err(Refusal::CredentialNamesAnotherDevice);
    }
    let (product, record) = found.require()?;
    if !record.holds(CredentialKind::Psk, identity) {
        return Err(Refusal::UnknownCredential);
    }
    Ok(Grant::normal(
        device.into(),
        Arc::clone(product),
        Via::Credential(CredentialKind::Psk, identity.into()),
    ))
}
