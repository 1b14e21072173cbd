//! The signed device triple (PROTOCOL.md §3, §6): a login signed with the
//! device secret, or with the pending secret an activation issued.

use std::sync::Arc;

use super::{Found, Grant, Via, timestamp_fresh};
use crate::credentials::SignedLogin;
use crate::decision::Refusal;
use crate::secret::Secret;
use crate::sign::{verify as verify_sign, verify_or_dummy};

/// Verifies `login` for the device `key`: both the secret and the pending
/// secret are checked (the dummy when there is none), then the product's
/// hashes and timestamp window.
pub fn verify(login: &SignedLogin<'_>, key: &str, found: Found<'_>, now_ms: u64) -> Result<Grant, Refusal> {
    let secret = found.record.and_then(|r| r.secret.as_ref());
    let with_secret = verify_or_dummy(
        login.method,
        &login.content,
        secret.map(Secret::expose),
        &login.signature,
    );
    let pending = found.record.and_then(|r| r.pending_secret.as_ref());
    let with_pending = pending.is_some_and(|p| verify_sign(login.method, &login.content, p.expose(), &login.signature));
    let (product, _) = found.require()?;
    if !product.sign_methods.contains(login.method.alg) {
        return Err(Refusal::SignMethodNotAllowed);
    }
    if !(with_pending || with_secret) {
        return Err(if secret.is_none() && pending.is_none() {
            Refusal::NoSecret
        } else {
            Refusal::BadSignature
        });
    }
    if !timestamp_fresh(product.timestamp_policy, login.timestamp, now_ms) {
        return Err(Refusal::StaleTimestamp);
    }
    let mut grant = Grant::normal(key.into(), Arc::clone(product), Via::Secret);
    grant.confirms_pending = with_pending && !with_secret;
    Ok(grant)
}
