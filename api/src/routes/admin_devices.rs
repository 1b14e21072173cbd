//! Admin API, devices: create, list (paged), show (by keys or GUID),
//! enable, disable, delete (the CLI's `device` commands).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use devicegate::store::{DeviceInfo, DeviceSpec};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::AdminAgent;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;

/// The page size when none is asked for.
const DEFAULT_LIMIT: usize = 100;
/// The largest page.
const MAX_LIMIT: usize = 1000;

/// A device to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceCreate {
    /// The product key.
    product_key: String,
    /// The device key.
    device_key: String,
    /// Its secret; a random one is generated when left out.
    secret: Option<String>,
    /// Accept a secret shorter than 16 bytes.
    #[serde(default)]
    allow_weak_secret: bool,
    /// Create it without a secret, for dynamic activation.
    #[serde(default)]
    no_secret: bool,
}

/// A device just created, with its generated secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceCreated {
    /// The device, as `GET /v1/admin/devices/{productKey}/{deviceKey}` shows it.
    #[schema(value_type = Object)]
    device: DeviceInfo,
    /// The generated secret, if one was generated.
    secret: Option<String>,
}

/// Which devices to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Only this product's devices.
    product_key: Option<String>,
    /// At most this many (default 100, at most 1000).
    limit: Option<usize>,
    /// Skip this many first (ordered by product key, device key).
    offset: Option<usize>,
}

/// One page of devices.
#[derive(Debug, Serialize, ToSchema)]
pub struct DevicePage {
    /// The devices of this page.
    #[schema(value_type = Vec<Object>)]
    devices: Vec<DeviceInfo>,
    /// How many devices match in all.
    total: usize,
    /// The page size used.
    limit: usize,
    /// The offset used.
    offset: usize,
    /// The offset of the next page, if there is one.
    next_offset: Option<usize>,
}

/// Creates a device.
#[utoipa::path(
    post,
    path = "/v1/admin/devices",
    tag = "admin",
    request_body = DeviceCreate,
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Created", body = DeviceCreated),
        (status = 400, description = "A bad key or secret, named", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
        (status = 409, description = "The device exists", body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _: AdminAgent,
    JsonBody(request): JsonBody<DeviceCreate>,
) -> Result<(StatusCode, Json<DeviceCreated>), ApiError> {
    let spec = DeviceSpec {
        secret: request.secret,
        allow_weak_secret: request.allow_weak_secret,
        no_secret: request.no_secret,
        gateway: None,
    };
    let store = state.store();
    let secret = store
        .create_device(&request.product_key, &request.device_key, spec)
        .await?;
    let device = store.device_info(&request.product_key, &request.device_key).await?;
    Ok((StatusCode::CREATED, Json(DeviceCreated { device, secret })))
}

/// Devices, a page at a time, ordered by product key, then device key.
#[utoipa::path(
    get,
    path = "/v1/admin/devices",
    tag = "admin",
    params(DeviceQuery),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "One page", body = DevicePage),
        (status = 400, description = "A bad query parameter, named", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _: AdminAgent,
    QueryParams(query): QueryParams<DeviceQuery>,
) -> Result<Json<DevicePage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::bad_request(format!("limit: expected 1 to {MAX_LIMIT}")));
    }
    let offset = query.offset.unwrap_or(0);
    let (devices, total) = state
        .store()
        .list_devices_page(
            query.product_key.as_deref(),
            u32::try_from(limit).unwrap_or(u32::MAX),
            u64::try_from(offset).unwrap_or(u64::MAX),
        )
        .await?;
    let total = usize::try_from(total).unwrap_or(usize::MAX);
    let next_offset = Some(offset.saturating_add(devices.len())).filter(|next| *next < total);
    Ok(Json(DevicePage {
        devices,
        total,
        limit,
        offset,
        next_offset,
    }))
}

/// One device.
#[utoipa::path(
    get,
    path = "/v1/admin/devices/{productKey}/{deviceKey}",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The device (never its secret)", body = Object),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<Json<DeviceInfo>, ApiError> {
    Ok(Json(state.store().device_info(&product_key, &device_key).await?))
}

/// One device, by its GUID.
#[utoipa::path(
    get,
    path = "/v1/admin/devices/by-guid/{guid}",
    tag = "admin",
    params(("guid" = String, Path, description = "The device's GUID")),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The device (never its secret)", body = Object),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No device has this GUID", body = ErrorBody)
    )
)]
pub async fn show_by_guid(
    State(state): State<AppState>,
    _: AdminAgent,
    Path(guid): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let (product_key, device_key) = state
        .store()
        .device_by_guid(&guid)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no device has the GUID `{guid}`")))?;
    Ok(Json(state.store().device_info(&product_key, &device_key).await?))
}

/// Enables a device.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/enable",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The device, enabled", body = Object),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn enable(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<Json<DeviceInfo>, ApiError> {
    set_enabled(&state, &product_key, &device_key, true).await
}

/// Disables a device: every broker throws it off.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/disable",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The device, disabled", body = Object),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn disable(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<Json<DeviceInfo>, ApiError> {
    set_enabled(&state, &product_key, &device_key, false).await
}

async fn set_enabled(state: &AppState, pk: &str, dk: &str, enabled: bool) -> Result<Json<DeviceInfo>, ApiError> {
    state.store().set_device_enabled(pk, dk, enabled).await?;
    Ok(Json(state.store().device_info(pk, dk).await?))
}

/// Deletes a device.
#[utoipa::path(
    delete,
    path = "/v1/admin/devices/{productKey}/{deviceKey}",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.store().delete_device(&product_key, &device_key).await?;
    Ok(StatusCode::NO_CONTENT)
}
