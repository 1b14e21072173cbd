//! The CA in a directory: `ca.pem` and `ca.key` (0600), made by
//! [`Ca::init`], used by [`Ca::load`] to sign broker and device
//! certificates and CRLs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::certificate::CertificateInfo;
use crate::files::{read, write_private, write_public};
use crate::{PkiError, csr};

/// The CA's validity: 10 years.
const CA_DAYS: i64 = 3650;
/// How long a CRL is valid before the next one is due.
const CRL_DAYS: i64 = 7;

/// A certificate devicegate made, with its private key when devicegate
/// made that too (never when it came from a CSR).
#[derive(Clone)]
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM, if devicegate generated it.
    pub key_pem: Option<String>,
    /// What the certificate says.
    pub info: CertificateInfo,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("fingerprint", &self.info.fingerprint)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Whom a device certificate names (IDENTITIES.md §3).
#[derive(Debug, Clone, Copy)]
pub struct DeviceSubject<'a> {
    /// The product key.
    pub product_key: &'a str,
    /// The device key.
    pub device_key: &'a str,
    /// The device's GUID.
    pub guid: &'a str,
}

/// A revoked certificate for a CRL.
#[derive(Debug, Clone)]
pub struct Revoked {
    /// Its serial number's bytes.
    pub serial: Vec<u8>,
    /// When it was revoked, ms since the UNIX epoch.
    pub at_ms: u64,
}

/// The devicegate CA of a directory.
pub struct Ca {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("dir", &self.dir).finish_non_exhaustive()
    }
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| PkiError::Malformed(format!("the operating system RNG failed: {e}")))?;
    // Positive, 127 bits: RFC 5280 serials are positive integers.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Ca {
    /// Makes a CA in `dir` (created if missing): a self-signed ECDSA P-256
    /// certificate valid for 10 years in `ca.pem`, its key in `ca.key`
    /// (0600). Refuses to overwrite an existing CA.
    pub fn init(dir: &Path) -> Result<Ca, PkiError> {
        std::fs::create_dir_all(dir).map_err(|cause| PkiError::Io {
            path: dir.display().to_string(),
            cause,
        })?;
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
        for path in [&cert_path, &key_path] {
            if path.exists() {
                return Err(PkiError::Exists(path.display().to_string()));
            }
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "devicegate CA");
        name.push(DnType::OrganizationName, "devicegate");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = now() - Duration::hours(1);
        params.not_after = now() + Duration::days(CA_DAYS);
        params.serial_number = Some(random_serial()?);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        write_private(&key_path, &key.serialize_pem())?;
        write_public(&cert_path, &cert.pem())?;
        Ok(Ca {
            dir: dir.to_owned(),
            cert_pem: cert.pem(),
            key,
        })
    }

    /// The CA of `dir` (`ca.pem`, `ca.key`).
    pub fn load(dir: &Path) -> Result<Ca, PkiError> {
        let cert_pem = read(&dir.join("ca.pem"))?;
        let key_pem = read(&dir.join("ca.key"))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|_| {
            PkiError::Malformed(format!(
                "{}: not a PEM private key devicegate can use (ECDSA P-256/P-384, Ed25519 or RSA, PKCS#8)",
                dir.join("ca.key").display()
            ))
        })?;
        let ca = Ca {
            dir: dir.to_owned(),
            cert_pem,
            key,
        };
        ca.issuer()?;
        Ok(ca)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Whether this CA issued `certificate` (its issuer is the CA's subject).
    pub fn issued(&self, certificate: &CertificateInfo) -> bool {
        CertificateInfo::from_pem(&self.cert_pem).is_ok_and(|ca| ca.subject == certificate.issuer)
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|_| {
            PkiError::Malformed(format!(
                "{}: not a PEM CA certificate",
                self.dir.join("ca.pem").display()
            ))
        })
    }

    /// A server certificate for a broker, valid `days`, for the DNS
    /// names and addresses given, with a new ECDSA P-256 key.
    pub fn server_cert(&self, dns: &[String], ips: &[IpAddr], days: u32) -> Result<IssuedCertificate, PkiError> {
        if dns.is_empty() && ips.is_empty() {
            return Err(PkiError::Malformed(
                "a server certificate needs at least one --dns name or --ip address".to_owned(),
            ));
        }
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            dns.first()
                .cloned()
                .unwrap_or_else(|| ips.first().map(ToString::to_string).unwrap_or_default()),
        );
        params.distinguished_name = name;
        for name in dns {
            let ia5 = name
                .clone()
                .try_into()
                .map_err(|_| PkiError::Malformed(format!("`{name}` is not a DNS name")))?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        params
            .subject_alt_names
            .extend(ips.iter().copied().map(SanType::IpAddress));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.finish(params, None, days)
    }

    /// A device certificate (IDENTITIES.md §3): subject CN `{pk}/{dk}`,
    /// SAN URI `urn:uuid:{guid}`, client authentication, valid `days`. For
    /// the key in `csr` (checked: signature, strength), or for a new ECDSA
    /// P-256 key returned with it.
    pub fn device_cert(
        &self,
        subject: DeviceSubject<'_>,
        csr: Option<&str>,
        days: u32,
    ) -> Result<IssuedCertificate, PkiError> {
        let public_key = csr.map(csr::check).transpose()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(
            DnType::CommonName,
            format!("{}/{}", subject.product_key, subject.device_key),
        );
        params.distinguished_name = name;
        let uri = format!("urn:uuid:{}", subject.guid)
            .try_into()
            .map_err(|_| PkiError::Malformed(format!("`{}` cannot be a URI", subject.guid)))?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.finish(params, public_key, days)
    }

    /// Signs `params` for `public_key`, or for a new key returned with the
    /// certificate.
    fn finish(
        &self,
        mut params: CertificateParams,
        public_key: Option<rcgen::SubjectPublicKeyInfo>,
        days: u32,
    ) -> Result<IssuedCertificate, PkiError> {
        if days == 0 {
            return Err(PkiError::Malformed("--days must be at least 1".to_owned()));
        }
        params.not_before = now() - Duration::minutes(5);
        params.not_after = now() + Duration::days(i64::from(days));
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        params.key_identifier_method = KeyIdMethod::Sha256;
        let issuer = self.issuer()?;
        let (cert, key_pem) = match public_key {
            Some(public_key) => (params.signed_by(&public_key, &issuer)?, None),
            None => {
                let key = KeyPair::generate()?;
                (params.signed_by(&key, &issuer)?, Some(key.serialize_pem()))
            }
        };
        let cert_pem = cert.pem();
        let info = CertificateInfo::from_der(cert.der())?;
        Ok(IssuedCertificate {
            cert_pem,
            key_pem,
            info,
        })
    }

    /// A CRL of `revoked`, signed by the CA, valid for 7 days, PEM.
    pub fn crl(&self, revoked: &[Revoked]) -> Result<String, PkiError> {
        let this_update = now();
        let params = CertificateRevocationListParams {
            this_update,
            next_update: this_update + Duration::days(CRL_DAYS),
            crl_number: SerialNumber::from_slice(&this_update.unix_timestamp().to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: OffsetDateTime::from_unix_timestamp(i64::try_from(r.at_ms / 1000).unwrap_or(0))
                        .unwrap_or(this_update),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer()?)?.pem()?)
    }
}

#[cfg(test)]
mod tests;
