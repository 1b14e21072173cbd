//! The TLS side of the example broker: a rustls server configuration that
//! requires a client certificate chaining to a CA (IDENTITIES.md §3), and
//! reading that certificate in the CONNECT handler, so the engine maps it
//! to its device by fingerprint.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be built, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct TlsConfigError {
    what: String,
    cause: String,
}

fn failed(what: impl Into<String>, cause: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError {
        what: what.into(),
        cause: cause.to_string(),
    }
}

/// A server configuration with the certificate chain `cert` and its key
/// `key` (PEM files) that requires every client to present a certificate
/// chaining to a CA in `client_ca` (PEM). ring does the cryptography.
pub fn server_config(cert: &Path, key: &Path, client_ca: &Path) -> Result<Arc<ServerConfig>, TlsConfigError> {
    // rustls 0.23.48 deprecates ring's provider only for its lack of
    // post-quantum key exchange; ring is what the rest of devicegate uses.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| failed(cert.display().to_string(), e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| failed(key.display().to_string(), e))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(client_ca).map_err(|e| failed(client_ca.display().to_string(), e))? {
        let ca = ca.map_err(|e| failed(client_ca.display().to_string(), e))?;
        roots.add(ca).map_err(|e| failed(client_ca.display().to_string(), e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|e| failed(client_ca.display().to_string(), e))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| failed("TLS versions", e))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key_der)
        .map_err(|e| failed(format!("{} and {}", cert.display(), key.display()), e))?;
    Ok(Arc::new(config))
}

/// The client certificate (DER) of a TLS connection, if it presented one.
pub(crate) fn peer_certificate(io: &ntex_io::IoBoxed) -> Option<Vec<u8>> {
    io.query::<ntex_tls::rustls::PeerCert<'static>>()
        .as_ref()
        .map(|cert| cert.0.as_ref().to_vec())
}
