//! Reading a certificate: the fingerprint devicegate maps it by, its
//! subject, serial and validity.

use devicegate::credentials::Fingerprint;
use x509_parser::pem::parse_x509_pem;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::PkiError;

/// What devicegate reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The DER encoding.
    pub der: Vec<u8>,
    /// The SHA-256 fingerprint of `der` as devicegate names certificate
    /// credentials ([`Fingerprint`]), the same at login.
    pub fingerprint: String,
    /// The subject's common name, if it has one.
    pub common_name: Option<String>,
    /// The serial number's bytes (big-endian).
    pub serial: Vec<u8>,
    /// The issuer's name, DER: compared with a CA's subject.
    pub issuer: Vec<u8>,
    /// The subject's name, DER.
    pub subject: Vec<u8>,
    /// The end of validity, ms since the UNIX epoch.
    pub not_after_ms: u64,
}

impl CertificateInfo {
    /// Reads a PEM certificate (the first one, if the file holds a chain).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let (_, block) = parse_x509_pem(pem.as_bytes()).map_err(|_| {
            PkiError::Malformed("not a PEM certificate: expected a `-----BEGIN CERTIFICATE-----` block".to_owned())
        })?;
        if block.label != "CERTIFICATE" {
            return Err(PkiError::Malformed(format!(
                "a PEM `{}` block, not a certificate: expected `-----BEGIN CERTIFICATE-----`",
                block.label
            )));
        }
        Self::from_der(&block.contents)
    }

    /// Reads a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| PkiError::Malformed(format!("the certificate does not parse as X.509: {e}")))?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let not_after = cert.validity().not_after.timestamp();
        Ok(CertificateInfo {
            der: der.to_vec(),
            fingerprint: Fingerprint::of(der).as_str().to_owned(),
            common_name,
            serial: cert.raw_serial().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            not_after_ms: u64::try_from(not_after).unwrap_or(0).saturating_mul(1000),
        })
    }
}
