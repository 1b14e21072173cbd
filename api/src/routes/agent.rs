//! The registration agents' routes (IDENTITIES.md §6, Astarte's shape):
//! register a device (a fresh secret until it first logs in), unregister
//! it. The rule is the store's, the one `devicegate device register` uses.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::BearerAgent;
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::limits::LimitedRoute;
use crate::listener::PeerAddr;
use crate::state::AppState;

/// `{"data":{"hw_id":"{dk}"}}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The device to register.
    data: RegisterData,
}

/// The inside of [`RegisterRequest`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterData {
    /// The device key.
    hw_id: String,
}

/// `{"data":{"credentials_secret":"…"}}`.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The device's new secret.
    data: Credentials,
}

/// The inside of [`RegisterResponse`].
#[derive(Serialize, ToSchema)]
pub struct Credentials {
    /// The device secret, shown only here.
    credentials_secret: String,
}

/// Registers device `hw_id` of the product (created if missing) and
/// answers a fresh secret; refused with 422 once the device has logged in.
#[utoipa::path(
    post,
    path = "/v1/{productKey}/agent/devices",
    tag = "agents",
    params(("productKey" = String, Path, description = "The product key")),
    request_body = RegisterRequest,
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Registered: the device's secret", body = RegisterResponse),
        (status = 400, description = "Malformed request or device key", body = ErrorBody),
        (status = 401, description = "Missing, unknown, expired or revoked agent token", body = ErrorBody),
        (status = 403, description = "The agent may not register devices of this product", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 422, description = "The device has logged in: unregister it first", body = ErrorBody),
        (status = 429, description = "Too many refusals from this address", body = ErrorBody)
    )
)]
pub async fn register(
    State(state): State<AppState>,
    Path(product_key): Path<String>,
    peer: Option<axum::Extension<PeerAddr>>,
    agent: Result<BearerAgent, ApiError>,
    body: Result<JsonBody<RegisterRequest>, ApiError>,
) -> Result<(StatusCode, Json<RegisterResponse>), ApiError> {
    let work = async {
        let BearerAgent(agent) = agent?;
        agent.require_product(&product_key)?;
        let JsonBody(request) = body?;
        let secret = state
            .store()
            .register_device(&product_key, &request.data.hw_id)
            .await
            .map_err(|e| ApiError::from(e).in_field("data.hw_id"))?;
        Ok((
            StatusCode::CREATED,
            Json(RegisterResponse {
                data: Credentials {
                    credentials_secret: secret,
                },
            }),
        ))
    };
    state
        .limits()
        .guard(LimitedRoute::Registration, peer.map(|p| p.0), work)
        .await
}

/// Unregisters a device: it may be registered again (its activation is
/// reset, as `devicegate device reset-activation` does).
#[utoipa::path(
    delete,
    path = "/v1/{productKey}/agent/devices/{deviceKey}",
    tag = "agents",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 204, description = "Unregistered"),
        (status = 401, description = "Missing, unknown, expired or revoked agent token", body = ErrorBody),
        (status = 403, description = "The agent may not act on this product", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn unregister(
    State(state): State<AppState>,
    BearerAgent(agent): BearerAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    agent.require_product(&product_key)?;
    state.store().reset_activation(&product_key, &device_key).await?;
    Ok(StatusCode::NO_CONTENT)
}
