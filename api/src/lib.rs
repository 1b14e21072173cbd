//! devicegate's provisioning service (IDENTITIES.md §7). SKELETON: being built.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use devicegate::access_token::SigningKey;
use devicegate::store::Store;
use devicegate_pki::Ca;

/// TLS files for the listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
    /// CAs that client certificates are verified against, PEM.
    pub client_ca: Option<PathBuf>,
}

/// What `devicegate serve` runs with.
pub struct ServiceConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// HTTPS, if set.
    pub tls: Option<TlsFiles>,
    /// The key that signs device tokens.
    pub token_key: Option<SigningKey>,
    /// The broker URL for unassigned devices.
    pub default_server: Option<String>,
    /// The devicegate CA, for certificates from CSRs and bootstrap answers.
    pub ca: Option<Ca>,
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    _store: Store,
    _config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    shutdown.await;
    Ok(())
}
