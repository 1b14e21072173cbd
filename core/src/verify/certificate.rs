//! Client certificates (IDENTITIES.md §3). The broker's TLS layer checked
//! the chain; the login maps the certificate to its device by SHA-256
//! fingerprint and refuses an unknown, revoked or expired one even though
//! the chain is valid.

use std::sync::Arc;

use super::{Found, Grant, Via};
use crate::credentials::{Fingerprint, Identity};
use crate::decision::Refusal;
use crate::registry::{CredentialKind, identity_of};

/// Verifies a login with the certificate of `fingerprint` at `now_ms`.
/// `device` is the `{dk}&{pk}` the registry maps the fingerprint to,
/// `claimed` the device a username named: it must be the same device.
pub fn verify(
    fingerprint: &Fingerprint,
    claimed: Option<Identity<'_>>,
    device: Option<&str>,
    found: Found<'_>,
    now_ms: u64,
) -> Result<Grant, Refusal> {
    let device = device.ok_or(Refusal::UnknownCredential)?;
    if claimed.is_some_and(|c| Some(c) != identity_of(device)) {
        return Err(Refusal::CredentialNamesAnotherDevice);
    }
    let (product, record) = found.require()?;
    let credential = record
        .credential(CredentialKind::Certificate, fingerprint.as_str())
        .ok_or(Refusal::UnknownCredential)?;
    if credential.not_after_ms.is_some_and(|end| end <= now_ms) {
        return Err(Refusal::CertificateExpired);
    }
    let mut grant = Grant::normal(
        device.into(),
        Arc::clone(product),
        Via::Credential(CredentialKind::Certificate, fingerprint.as_str().into()),
    );
    grant.expires_at_ms = credential.not_after_ms;
    Ok(grant)
}
