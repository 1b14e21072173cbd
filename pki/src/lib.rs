//! devicegate as a small certificate authority (IDENTITIES.md §3): a CA
//! in a directory, server certificates for brokers, device certificates
//! (from a key devicegate makes or from the device's own CSR), reading
//! certificates made elsewhere, and CRLs. Built on rcgen (signing) and
//! x509-parser (reading); no `openssl` command is run.
//!
//! Private keys go to files with mode 0600 and nowhere else: never into
//! the database, a log line or an error message.

mod ca;
mod certificate;
mod csr;
mod files;

pub use ca::{Ca, DeviceSubject, IssuedCertificate, Revoked};
pub use certificate::CertificateInfo;
pub use files::{write_private, write_public};

/// Why a PKI operation was refused. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A file that would be overwritten exists.
    #[error("{0} exists: remove it or choose another path (devicegate never overwrites keys or certificates)")]
    Exists(String),
    /// A certificate, key or CSR that does not parse.
    #[error("{0}")]
    Malformed(String),
    /// A CSR whose signature does not verify.
    #[error("the CSR's signature does not verify: it was not made with the key it carries; make it again")]
    BadCsrSignature,
    /// A key too weak or of a type devicegate does not issue for.
    #[error("{0}")]
    WeakKey(String),
    /// rcgen refused to build a certificate or CRL.
    #[error("cannot build the certificate: {0}")]
    Build(#[from] rcgen::Error),
}
