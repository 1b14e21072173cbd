//! Checking a device's certificate signing request: it parses, its
//! signature verifies, and its key is strong enough. Only the key is taken
//! from it; subject and extensions are devicegate's.

use rcgen::SubjectPublicKeyInfo;
use x509_parser::der_parser::oid;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::{FromDer, X509CertificationRequest};
use x509_parser::public_key::PublicKey;

use crate::PkiError;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// Parses and checks a PEM CSR; returns the public key to certify.
pub fn check(pem: &str) -> Result<SubjectPublicKeyInfo, PkiError> {
    let (_, block) = parse_x509_pem(pem.as_bytes()).map_err(|_| {
        PkiError::Malformed("not a PEM CSR: expected a `-----BEGIN CERTIFICATE REQUEST-----` block".to_owned())
    })?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(PkiError::Malformed(format!(
            "a PEM `{}` block, not a CSR: expected `-----BEGIN CERTIFICATE REQUEST-----`",
            block.label
        )));
    }
    let (_, request) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| PkiError::Malformed(format!("the CSR does not parse: {e}")))?;
    let spki = &request.certification_request_info.subject_pki;
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) if rsa.key_size() < MIN_RSA_BITS => {
            return Err(PkiError::WeakKey(format!(
                "the CSR's RSA key has {} bits; at least {MIN_RSA_BITS} are required (an ECDSA P-256 key is better)",
                rsa.key_size()
            )));
        }
        Ok(PublicKey::RSA(_)) => {}
        Ok(PublicKey::EC(_)) => {
            let curve = spki.algorithm.parameters.as_ref().and_then(|p| p.as_oid().ok());
            let strong = curve.is_some_and(|c| c == oid!(1.2.840.10045.3.1.7) || c == oid!(1.3.132.0.34));
            if !strong {
                return Err(PkiError::WeakKey(
                    "the CSR's EC key is not on P-256 or P-384; make the key on one of those".to_owned(),
                ));
            }
        }
        Ok(_) if spki.algorithm.algorithm == oid!(1.3.101.112) => {}
        _ => {
            return Err(PkiError::WeakKey(
                "the CSR's key type is not supported: use ECDSA P-256 or P-384, Ed25519, or RSA of 2048 bits or more"
                    .to_owned(),
            ));
        }
    }
    // After the strength check: ring does not verify with RSA keys under
    // 2048 bits, and such a CSR should hear that its key is weak.
    request.verify_signature().map_err(|_| PkiError::BadCsrSignature)?;
    SubjectPublicKeyInfo::from_der(spki.raw)
        .map_err(|e| PkiError::WeakKey(format!("the CSR's key cannot be certified: {e}")))
}
