//! Aliyun `authType=connwl` (PROTOCOL.md §6.4): the device token a
//! `regnwl` registration issued, compared by its SHA-256.

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::{Found, Grant, Via};
use crate::credentials::TokenLogin;
use crate::decision::Refusal;

/// Verifies a token login for the device `key`: one SHA-256 and one
/// constant-time comparison, against a dummy when there is no token.
pub fn verify(login: &TokenLogin<'_>, key: &str, found: Found<'_>) -> Result<Grant, Refusal> {
    let presented: [u8; 32] = Sha256::digest(login.token).into();
    let stored = found.record.and_then(|r| r.token_hash.as_deref());
    let ok: bool = presented.ct_eq(stored.unwrap_or(&[0xff; 32])).into();
    let (product, _) = found.require()?;
    if stored.is_none() || !ok {
        return Err(Refusal::BadToken);
    }
    Ok(Grant::normal(key.into(), Arc::clone(product), Via::DeviceToken))
}
