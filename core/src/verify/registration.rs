//! Aliyun dynamic registration (PROTOCOL.md §6.3): `authType=register`
//! for an existing device, `regnwl` for one created on the way.

use std::sync::Arc;

use super::activation::verify_product_signature;
use super::{Found, Grant, SessionKind, Via};
use crate::credentials::{RegisterLogin, Registration};
use crate::decision::Refusal;
use crate::lifecycle::Event;

/// Verifies a registration login for the device `key`. A `regnwl` login
/// may name a device that does not exist yet.
pub fn verify(login: &RegisterLogin<'_>, key: &str, found: Found<'_>) -> Result<Grant, Refusal> {
    let product = verify_product_signature(found.product, login.method, &login.content, &login.signature)?;
    if !product.dynamic_activation {
        return Err(Refusal::DynamicActivationOff);
    }
    if found.record.is_none() && login.kind == Registration::Register {
        return Err(Refusal::UnknownDevice);
    }
    Ok(Grant {
        key: key.into(),
        product: Arc::clone(product),
        session: SessionKind::Registration(login.kind),
        event: Event::ProductSecretLoginVerified,
        confirms_pending: false,
        via: Via::ProductSecret,
        expires_at_ms: None,
    })
}
