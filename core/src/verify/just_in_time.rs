//! Just-in-time registration of certificates (IDENTITIES.md §3; AWS IoT's
//! JITR): a certificate no device holds yet registers a new device when
//! its product allows it, a CA the product trusts signed it, and its CN
//! names a device `{pk}/{dk}` that does not exist. The engine refuses the
//! login that brings it ("connect again") and queues the registration; the
//! next login finds the certificate like any other.

use std::sync::Arc;

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::credentials::{Fingerprint, KeyKind, validate_key};
use crate::decision::Refusal;
use crate::registry::Product;

/// A certificate to register, with the device it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCertificate {
    /// The new device's product key.
    pub product_key: Box<str>,
    /// The new device's key.
    pub device_key: Box<str>,
    /// The certificate's fingerprint.
    pub fingerprint: Fingerprint,
    /// Its DER.
    pub der: Box<[u8]>,
    /// The end of its validity, ms since the UNIX epoch.
    pub not_after_ms: u64,
}

/// Decides whether the certificate `der` registers a new device at
/// `now_ms`. `product_of` looks a product up; `device_exists` says whether
/// a `{dk}&{pk}` exists; `may_check_signatures` is asked before the slow
/// part, one signature check per trusted CA, and may refuse it (busy).
pub fn just_in_time(
    der: &[u8],
    product_of: impl FnOnce(&str) -> Option<Arc<Product>>,
    device_exists: impl FnOnce(&str) -> bool,
    may_check_signatures: impl FnOnce() -> bool,
    now_ms: u64,
) -> Result<NewCertificate, Refusal> {
    let refuse = Refusal::CertificateNotRegistrable;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| refuse("the certificate does not parse"))?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or(refuse("the certificate has no common name"))?;
    let (pk, dk) = common_name
        .split_once('/')
        .filter(|(pk, dk)| {
            validate_key(KeyKind::Product, pk.as_bytes()).is_ok()
                && validate_key(KeyKind::Device, dk.as_bytes()).is_ok()
        })
        .ok_or(refuse("its common name is not {productKey}/{deviceKey}"))?;
    let product = product_of(pk).ok_or(Refusal::UnknownProduct)?;
    if !product.auto_register_certs {
        return Err(refuse(
            "the product does not register certificates (product update --auto-register-certs true)",
        ));
    }
    let validity = cert.validity();
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    if validity.not_after.timestamp() <= now_s || validity.not_before.timestamp() > now_s {
        return Err(Refusal::CertificateExpired);
    }
    if !may_check_signatures() {
        return Err(Refusal::Busy);
    }
    let trusted = product.trusted_cas.iter().any(|ca_der| {
        X509Certificate::from_der(ca_der).is_ok_and(|(_, ca)| {
            ca.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(Some(ca.public_key())).is_ok()
        })
    });
    if !trusted {
        return Err(refuse("no CA the product trusts issued it (product trust-ca)"));
    }
    if device_exists(&format!("{dk}&{pk}")) {
        return Err(refuse(
            "the device exists: register this certificate with `devicegate device cert add`",
        ));
    }
    Ok(NewCertificate {
        product_key: pk.into(),
        device_key: dk.into(),
        fingerprint: Fingerprint::of(der),
        der: der.into(),
        not_after_ms: u64::try_from(validity.not_after.timestamp())
            .unwrap_or(0)
            .saturating_mul(1000),
    })
}
