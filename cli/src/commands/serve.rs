//! `devicegate serve`: runs the provisioning service of `devicegate-api`
//! until SIGTERM or Ctrl-C, letting requests in flight finish.

use anyhow::Context as _;

use crate::args::ServeArgs;
use devicegate::store::{Store, validate_server_url};
use devicegate_api::{ServiceConfig, TlsFiles};
use devicegate_pki::Ca;

pub async fn run(store: &Store, args: ServeArgs) -> anyhow::Result<()> {
    let token_key = match &args.token_key {
        Some(path) => {
            let pem = std::fs::read_to_string(path).with_context(|| format!("--token-key {}", path.display()))?;
            Some(store.signing_key(&pem).await.context("--token-key")?)
        }
        None => None,
    };
    if let Some(url) = &args.default_server {
        validate_server_url(url).context("--default-server")?;
    }
    let ca = args.ca_dir.as_deref().map(Ca::load).transpose().context("--ca-dir")?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: args.client_ca,
        }),
        _ => None,
    };
    let config = ServiceConfig {
        listen: args.listen,
        tls,
        token_key,
        default_server: args.default_server,
        ca,
    };
    devicegate_api::serve(store.clone(), config, shutdown_signal()).await
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
