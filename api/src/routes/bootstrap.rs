//! `POST /bootstrap` (IDENTITIES.md §5): which broker a device belongs
//! on, proven by its signature, or over TLS by its client certificate
//! alone.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use devicegate::bootstrap::{BootstrapRefusal, verify_bootstrap};
use devicegate::clock::now_ms;
use devicegate::credentials::Fingerprint;
use devicegate::store::BootstrapTarget;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{body_bytes, parse_json};
use crate::limits::LimitedRoute;
use crate::listener::{PeerAddr, PeerCertificate};
use crate::state::AppState;

/// A signed bootstrap request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BootstrapRequest {
    /// The product key.
    product_key: String,
    /// The device key.
    device_key: String,
    /// Milliseconds since the UNIX epoch, within 10 minutes of the
    /// service's clock.
    timestamp: String,
    /// `sha256`.
    sign_method: String,
    /// SHA-256 (hex) of `clientId{dk}deviceKey{dk}productKey{pk}timestamp{ts}` followed by the device secret.
    sign: String,
}

/// Where the device belongs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BootstrapResponse {
    /// The broker URL, `mqtt://` or `mqtts://HOST:PORT`.
    server: String,
    /// The devicegate CA certificate (PEM), if the service has one.
    ca_certificate: Option<String>,
}

/// Tells a device its broker. Over TLS with a client certificate verified
/// against `--client-ca` and registered to a device, the body is ignored
/// and may be empty.
#[utoipa::path(
    post,
    path = "/bootstrap",
    tag = "devices",
    request_body(content = BootstrapRequest, description = "Not needed with a device client certificate"),
    responses(
        (status = 200, description = "The device's broker", body = BootstrapResponse),
        (status = 400, description = "A malformed field, named", body = ErrorBody),
        (status = 401, description = "Unknown device, bad sign, stale timestamp or unregistered certificate", body = ErrorBody),
        (status = 403, description = "The device is disabled", body = ErrorBody),
        (status = 404, description = "No broker assigned to the device, its product or the service", body = ErrorBody),
        (status = 429, description = "Too many refusals from this address", body = ErrorBody)
    )
)]
pub async fn bootstrap(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    certificate: Option<axum::Extension<PeerCertificate>>,
    request: Request,
) -> Result<Json<BootstrapResponse>, ApiError> {
    let work = async {
        let target = match certificate {
            Some(axum::Extension(PeerCertificate(der))) => by_certificate(&state, &der).await?,
            None => {
                let body = body_bytes(request, &()).await?;
                by_signature(&state, parse_json(&body)?).await?
            }
        };
        if !target.enabled {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "the device is disabled"));
        }
        let server = target
            .server_url
            .or_else(|| state.default_server().map(str::to_owned))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "no broker is assigned to this device or its product, and the service has no --default-server",
                )
            })?;
        Ok(Json(BootstrapResponse {
            server,
            ca_certificate: state.ca().map(|ca| ca.cert_pem().to_owned()),
        }))
    };
    state
        .limits()
        .guard(LimitedRoute::Bootstrap, peer.map(|p| p.0), work)
        .await
}

/// The device of a signed request; unknown devices get the same work and
/// the same 401 as a bad sign.
async fn by_signature(state: &AppState, request: BootstrapRequest) -> Result<BootstrapTarget, ApiError> {
    let target = state
        .store()
        .bootstrap_target(&request.product_key, &request.device_key)
        .await?;
    let secret = target.as_ref().and_then(|t| t.secret.as_ref()).map(|s| s.expose());
    verify_bootstrap(
        &request.product_key,
        &request.device_key,
        &request.timestamp,
        &request.sign_method,
        &request.sign,
        secret,
        now_ms(),
    )
    .map_err(|refusal| match refusal {
        BootstrapRefusal::Malformed(detail) => ApiError::bad_request(detail),
        BootstrapRefusal::Stale | BootstrapRefusal::BadSign => {
            ApiError::new(StatusCode::UNAUTHORIZED, refusal.to_string())
        }
    })?;
    target.ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, BootstrapRefusal::BadSign.to_string()))
}

/// The device holding the live certificate credential `der` (looked up
/// by its fingerprint); an unregistered or revoked certificate gets 401.
async fn by_certificate(state: &AppState, der: &[u8]) -> Result<BootstrapTarget, ApiError> {
    let fingerprint = Fingerprint::of(der);
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "the client certificate is not registered to a device (or is revoked)",
        )
    };
    let (pk, dk) = state
        .store()
        .device_by_certificate(fingerprint.as_str())
        .await?
        .ok_or_else(refused)?;
    state.store().bootstrap_target(&pk, &dk).await?.ok_or_else(refused)
}
