//! EnOS dynamic activation (PROTOCOL.md §4): securemode 3, signed with the
//! product secret; the session waits for the device secret it is pushed.

use std::sync::Arc;

use super::{Found, Grant, SessionKind, Via, timestamp_fresh};
use crate::credentials::SignedLogin;
use crate::decision::Refusal;
use crate::lifecycle::Event;
use crate::registry::Product;
use crate::secret::Secret;
use crate::sign::{Content, Digest, SignMethod, verify_or_dummy};

/// Verifies an activation login for the device `key`.
pub fn verify(login: &SignedLogin<'_>, key: &str, found: Found<'_>, now_ms: u64) -> Result<Grant, Refusal> {
    let product = verify_product_signature(found.product, login.method, &login.content, &login.signature)?;
    found.record.ok_or(Refusal::UnknownDevice)?;
    if !timestamp_fresh(product.timestamp_policy, login.timestamp, now_ms) {
        return Err(Refusal::StaleTimestamp);
    }
    if !product.dynamic_activation {
        return Err(Refusal::DynamicActivationOff);
    }
    Ok(Grant {
        key: key.into(),
        product: Arc::clone(product),
        session: SessionKind::Activation,
        event: Event::ProductSecretLoginVerified,
        confirms_pending: false,
        via: Via::ProductSecret,
        expires_at_ms: None,
    })
}

/// Checks a signature made with the product secret (activation,
/// registration): the same work whether or not the product or its secret
/// exists, then the product's allowed hashes and the signature.
pub(super) fn verify_product_signature<'p>(
    product: Option<&'p Arc<Product>>,
    method: SignMethod,
    content: &Content<'_>,
    signature: &Digest,
) -> Result<&'p Arc<Product>, Refusal> {
    let secret = product.and_then(|p| p.secret.as_ref());
    let ok = verify_or_dummy(method, content, secret.map(Secret::expose), signature);
    let product = product.ok_or(Refusal::UnknownProduct)?;
    if !product.sign_methods.contains(method.alg) {
        return Err(Refusal::SignMethodNotAllowed);
    }
    if secret.is_none() {
        return Err(Refusal::NoSecret);
    }
    if !ok {
        return Err(Refusal::BadSignature);
    }
    Ok(product)
}
