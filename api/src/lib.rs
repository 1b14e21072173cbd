//! devicegate's provisioning service (IDENTITIES.md §7): device tokens,
//! bootstrap, registration agents and an admin API over HTTP.
//!
//! The key decision: **every route is a thin call into the store**, the
//! same functions the CLI calls, so no rule exists twice and every change
//! reaches brokers through the change feed. This crate only converts:
//! JSON in, a store call, JSON (or `{"errors":{"detail":"…"}}`) out. The
//! OpenAPI document is generated from the route definitions themselves
//! (utoipa), and an own accept loop hands each request its peer address
//! and, over TLS, its verified client certificate.

mod auth;
mod certificates;
mod error;
mod extract;
mod limits;
mod listener;
mod request_log;
mod routes;
mod service_metrics;
mod state;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use devicegate::access_token::SigningKey;
use devicegate::store::Store;
use devicegate_pki::Ca;

pub use certificates::{IssueError, issue_device_certificate};
pub use listener::{PeerAddr, PeerCertificate};
pub use state::AppState;

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

/// The service's routes over `state`, for serving in-process (tests,
/// another server). Requests should carry a [`PeerAddr`] extension for the
/// per-address limits (without one, all requests share one limit) and,
/// for bootstrap by certificate, a [`PeerCertificate`].
pub fn router(state: AppState) -> axum::Router {
    routes::router(state)
}

/// The OpenAPI document of every route, as `GET /openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::openapi()
}

/// Serves until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    store: Store,
    config: ServiceConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let ServiceConfig {
        listen,
        tls,
        token_key,
        default_server,
        ca,
    } = config;
    let acceptor = tls.as_ref().map(tls::acceptor).transpose()?;
    let app = router(AppState::new(store, token_key, default_server, ca));
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        address = %tcp.local_addr().unwrap_or(listen),
        tls = acceptor.is_some(),
        "provisioning service listening"
    );
    listener::run(tcp, acceptor, app, shutdown).await;
    Ok(())
}
