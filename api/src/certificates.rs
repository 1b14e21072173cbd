//! Issuing a device certificate (IDENTITIES.md §3): the one sequence the
//! admin route and the CLI's `device cert issue` both run, so the rule
//! "a certificate names its device's GUID and is registered as it is
//! issued" exists once.

use devicegate::store::{Store, StoreError};
use devicegate_pki::{Ca, DeviceSubject, IssuedCertificate, PkiError};

/// Why a device certificate was not issued. Messages never contain a key.
#[derive(Debug)]
pub enum IssueError {
    /// The store refused: no such device, a database error, a fingerprint
    /// registered before.
    Store(StoreError),
    /// The device has no GUID to put in the certificate.
    NoGuid,
    /// The CA refused: a malformed CSR, a bad CSR signature, a weak key,
    /// or it failed to sign.
    Pki(PkiError),
}

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueError::Store(e) => e.fmt(f),
            IssueError::NoGuid => f.write_str("the device has no GUID: the database predates migration 0003"),
            IssueError::Pki(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for IssueError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            IssueError::Store(e) => e.source(),
            IssueError::NoGuid => None,
            IssueError::Pki(e) => e.source(),
        }
    }
}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        IssueError::Store(e)
    }
}

impl From<PkiError> for IssueError {
    fn from(e: PkiError) -> Self {
        IssueError::Pki(e)
    }
}

/// Issues a certificate for device `pk`/`dk` with `ca`, valid `days`,
/// and registers it to the device (brokers accept it from their next
/// reload). With a `csr` (PEM) the certificate is for the key in it and
/// no private key is returned; without one the CA generates a key and
/// returns it in [`IssuedCertificate::key_pem`] (the caller stores it).
///
/// The certificate names the device and its GUID; the device must exist
/// and have a GUID. Nothing is registered when issuing fails.
pub async fn issue_device_certificate(
    store: &Store,
    ca: &Ca,
    pk: &str,
    dk: &str,
    csr: Option<&str>,
    days: u32,
) -> Result<IssuedCertificate, IssueError> {
    let device = store.device_info(pk, dk).await?;
    let guid = device.guid.ok_or(IssueError::NoGuid)?;
    let subject = DeviceSubject {
        product_key: pk,
        device_key: dk,
        guid: &guid,
    };
    let issued = ca.device_cert(subject, csr, days)?;
    store
        .add_certificate(
            pk,
            dk,
            &issued.info.fingerprint,
            &issued.cert_pem,
            issued.info.not_after_ms,
        )
        .await?;
    Ok(issued)
}
