//! Admin API, products: list, create, show, update, delete (the CLI's
//! `product` commands).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use devicegate::credentials::Dialect;
use devicegate::sign::AlgSet;
use devicegate::store::{ProductInfo, ProductSpec, ProductUpdate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AdminAgent;
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

/// A product to create; left-out settings take the CLI's defaults.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductCreate {
    /// The product key.
    product_key: String,
    /// `enos` (default) or `aliyun`.
    dialect: Option<String>,
    /// The product secret (generated with dynamic activation when left out).
    secret: Option<String>,
    /// Accept a secret shorter than 16 bytes.
    #[serde(default)]
    allow_weak_secret: bool,
    /// Allowed hashes, comma-separated: `sha256`, `sha1`, `md5`.
    sign_methods: Option<String>,
    /// Refuse logins whose timestamp is further than this from now (0 = off).
    timestamp_window_secs: Option<u32>,
    /// Dynamic activation (EnOS) or registration (Aliyun).
    #[serde(default)]
    dynamic_activation: bool,
    /// Any client id identity part accepted.
    #[serde(default)]
    free_client_id: bool,
    /// `$share/` subscriptions allowed.
    #[serde(default)]
    shared_subscriptions: bool,
    /// Retained publishes allowed.
    #[serde(default)]
    allow_retain: bool,
    /// Idle seconds before a device counts as offline (0 = never).
    offline_after_secs: Option<u32>,
    /// Sub-devices per gateway.
    max_sub_devices: Option<u32>,
    /// Extra topic rules, `pub:|sub:|all:TEMPLATE`.
    #[serde(default)]
    extra_topics: Vec<String>,
    /// Just-in-time certificate registration.
    #[serde(default)]
    auto_register_certs: bool,
    /// Device-token lifetime in seconds (default 3600).
    token_ttl_secs: Option<u32>,
    /// The broker URL the product's devices are assigned to.
    server_url: Option<String>,
}

/// Changes to a product; left-out settings stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    /// A new product secret.
    secret: Option<String>,
    /// Accept a new secret shorter than 16 bytes.
    #[serde(default)]
    allow_weak_secret: bool,
    /// `enos` or `aliyun`.
    dialect: Option<String>,
    /// New allowed hashes.
    sign_methods: Option<String>,
    /// A new timestamp window; 0 turns the policy off.
    timestamp_window_secs: Option<u32>,
    /// Dynamic activation on or off.
    dynamic_activation: Option<bool>,
    /// Free client ids on or off.
    free_client_id: Option<bool>,
    /// Shared subscriptions on or off.
    shared_subscriptions: Option<bool>,
    /// Retain on or off.
    allow_retain: Option<bool>,
    /// A new idle window.
    offline_after_secs: Option<u32>,
    /// A new sub-device limit.
    max_sub_devices: Option<u32>,
    /// New extra topic rules, replacing the old ones.
    extra_topics: Option<Vec<String>>,
    /// Just-in-time certificate registration on or off.
    auto_register_certs: Option<bool>,
    /// A new device-token lifetime.
    token_ttl_secs: Option<u32>,
    /// A new assigned broker URL; `""` removes the assignment.
    server_url: Option<String>,
}

/// A product just created, with its generated secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductCreated {
    /// The product, as `GET /v1/admin/products/{productKey}` shows it.
    #[schema(value_type = Object)]
    product: ProductInfo,
    /// The generated product secret, if one was generated.
    product_secret: Option<String>,
}

/// The products, as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    /// Every product, by key.
    #[schema(value_type = Vec<Object>)]
    products: Vec<ProductInfo>,
}

/// The number of devices a product deletion removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDeleted {
    /// How many of its devices were deleted with it.
    devices_deleted: u64,
}

fn dialect(name: &str) -> Result<Dialect, ApiError> {
    Dialect::from_name(name)
        .ok_or_else(|| ApiError::bad_request(format!("dialect: unknown dialect `{name}` (expected enos or aliyun)")))
}

fn sign_methods(list: &str) -> Result<AlgSet, ApiError> {
    AlgSet::parse(list).map_err(|e| ApiError::bad_request(format!("sign_methods: {e}")))
}

/// Every product with its device count.
#[utoipa::path(
    get,
    path = "/v1/admin/products",
    tag = "admin",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The products", body = ProductList),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody)
    )
)]
pub async fn list(State(state): State<AppState>, _: AdminAgent) -> Result<Json<ProductList>, ApiError> {
    Ok(Json(ProductList {
        products: state.store().list_products().await?,
    }))
}

/// Creates a product.
#[utoipa::path(
    post,
    path = "/v1/admin/products",
    tag = "admin",
    request_body = ProductCreate,
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Created", body = ProductCreated),
        (status = 400, description = "A bad setting, named", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 409, description = "The product exists", body = ErrorBody)
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _: AdminAgent,
    JsonBody(request): JsonBody<ProductCreate>,
) -> Result<(StatusCode, Json<ProductCreated>), ApiError> {
    let mut spec = ProductSpec::new(
        &request.product_key,
        dialect(request.dialect.as_deref().unwrap_or("enos"))?,
    );
    if let Some(list) = &request.sign_methods {
        spec.sign_methods = sign_methods(list)?.to_list();
    }
    spec.secret = request.secret;
    spec.allow_weak_secret = request.allow_weak_secret;
    spec.timestamp_window_secs = request.timestamp_window_secs.filter(|w| *w > 0);
    spec.dynamic_activation = request.dynamic_activation;
    spec.free_client_id = request.free_client_id;
    spec.shared_subscriptions = request.shared_subscriptions;
    spec.allow_retain = request.allow_retain;
    spec.offline_after_secs = request.offline_after_secs.unwrap_or(0);
    spec.max_sub_devices = request.max_sub_devices;
    spec.extra_topics = request.extra_topics;
    spec.auto_register_certs = request.auto_register_certs;
    spec.token_ttl_secs = request.token_ttl_secs;
    spec.server_url = request.server_url.filter(|s| !s.is_empty());
    let product_secret = state.store().create_product(spec).await?;
    let product = state.store().product_info(&request.product_key).await?;
    Ok((
        StatusCode::CREATED,
        Json(ProductCreated {
            product,
            product_secret,
        }),
    ))
}

/// One product.
#[utoipa::path(
    get,
    path = "/v1/admin/products/{productKey}",
    tag = "admin",
    params(("productKey" = String, Path, description = "The product key")),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The product (never its secret)", body = Object),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody)
    )
)]
pub async fn show(
    State(state): State<AppState>,
    _: AdminAgent,
    Path(product_key): Path<String>,
) -> Result<Json<ProductInfo>, ApiError> {
    Ok(Json(state.store().product_info(&product_key).await?))
}

/// Changes a product's settings.
#[utoipa::path(
    patch,
    path = "/v1/admin/products/{productKey}",
    tag = "admin",
    params(("productKey" = String, Path, description = "The product key")),
    request_body = ProductPatch,
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The product as changed", body = Object),
        (status = 400, description = "A bad setting, named", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody)
    )
)]
pub async fn update(
    State(state): State<AppState>,
    _: AdminAgent,
    Path(product_key): Path<String>,
    JsonBody(patch): JsonBody<ProductPatch>,
) -> Result<Json<ProductInfo>, ApiError> {
    let update = ProductUpdate {
        secret: patch.secret,
        allow_weak_secret: patch.allow_weak_secret,
        dialect: patch.dialect.as_deref().map(dialect).transpose()?,
        sign_methods: patch.sign_methods.as_deref().map(sign_methods).transpose()?,
        timestamp_window_secs: patch.timestamp_window_secs,
        dynamic_activation: patch.dynamic_activation,
        free_client_id: patch.free_client_id,
        shared_subscriptions: patch.shared_subscriptions,
        allow_retain: patch.allow_retain,
        offline_after_secs: patch.offline_after_secs,
        max_sub_devices: patch.max_sub_devices,
        extra_topics: patch.extra_topics,
        auto_register_certs: patch.auto_register_certs,
        token_ttl_secs: patch.token_ttl_secs,
        server_url: patch.server_url,
    };
    state.store().update_product(&product_key, update).await?;
    Ok(Json(state.store().product_info(&product_key).await?))
}

/// Deletes a product and its devices.
#[utoipa::path(
    delete,
    path = "/v1/admin/products/{productKey}",
    tag = "admin",
    params(("productKey" = String, Path, description = "The product key")),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "Deleted", body = ProductDeleted),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody)
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    _: AdminAgent,
    Path(product_key): Path<String>,
) -> Result<Json<ProductDeleted>, ApiError> {
    Ok(Json(ProductDeleted {
        devices_deleted: state.store().delete_product(&product_key).await?,
    }))
}
