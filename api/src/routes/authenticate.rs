//! `POST /authenticate` (IDENTITIES.md §4): an access key pair for a
//! device token.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::limits::LimitedRoute;
use crate::listener::PeerAddr;
use crate::state::AppState;

/// The request: `{"deviceAuthParameters":{"accessKey","secretKey"}}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticateRequest {
    /// The access key pair.
    device_auth_parameters: AccessKeyPair,
}

/// An access key pair from `devicegate device access-key`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKeyPair {
    /// The access key, 64 hex digits.
    access_key: String,
    /// The secret key, 64 hex digits.
    secret_key: String,
}

impl std::fmt::Debug for AccessKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyPair")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// The answer: the device's GUIDs and a token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticateResponse {
    /// The device's GUID.
    #[serde(rename = "deviceGUID")]
    device_guid: String,
    /// The product's GUID.
    #[serde(rename = "productGUID")]
    product_guid: String,
    /// An Ed25519 JWT, the MQTT password of a token login.
    token: String,
}

/// Exchanges an access key pair for a device token.
#[utoipa::path(
    post,
    path = "/authenticate",
    tag = "devices",
    request_body = AuthenticateRequest,
    responses(
        (status = 200, description = "A token for the device", body = AuthenticateResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "Unknown access key or wrong secret key", body = ErrorBody),
        (status = 403, description = "The device is disabled", body = ErrorBody),
        (status = 429, description = "Too many refusals from this address", body = ErrorBody),
        (status = 503, description = "No token key (serve --token-key) or the database is unavailable", body = ErrorBody)
    )
)]
pub async fn authenticate(
    State(state): State<AppState>,
    peer: Option<axum::Extension<PeerAddr>>,
    body: Result<JsonBody<AuthenticateRequest>, ApiError>,
) -> Result<Json<AuthenticateResponse>, ApiError> {
    let work = async {
        let JsonBody(request) = body?;
        let key = state.token_key().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "device tokens are off: start `devicegate serve` with --token-key FILE (devicegate token keygen)",
            )
        })?;
        let pair = request.device_auth_parameters;
        let subject = state
            .store()
            .exchange_access_key(&pair.access_key, &pair.secret_key)
            .await?;
        if !subject.enabled {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "the device is disabled"));
        }
        Ok(Json(AuthenticateResponse {
            token: subject.issue(key, None),
            device_guid: subject.device_guid,
            product_guid: subject.product_guid,
        }))
    };
    state
        .limits()
        .guard(LimitedRoute::Authenticate, peer.map(|p| p.0), work)
        .await
}
