//! The routes, each registered with its OpenAPI description (utoipa-axum
//! collects the document from the handlers' `#[utoipa::path]`), and the
//! layers around them: request log, body limit, error-shaped 404 and 405.

mod admin_credentials;
mod admin_devices;
mod admin_products;
mod admin_status;
mod agent;
mod authenticate;
mod bootstrap;
mod health;
mod metrics;
mod openapi_doc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody};
use crate::extract::MAX_BODY_BYTES;
use crate::request_log::log_request;
use crate::state::AppState;

/// The name of the bearer-token security scheme in the document.
const AGENT_TOKEN: &str = "agent_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "devicegate provisioning service",
        description = "Device tokens, bootstrap, registration agents and an admin API (IDENTITIES.md §4–§7). \
                       Errors answer {\"errors\":{\"detail\":\"…\"}}."
    ),
    components(schemas(ErrorBody)),
    modifiers(&AgentTokenScheme)
)]
struct ApiDoc;

/// Adds the agents' bearer-token scheme the agent and admin routes name.
struct AgentTokenScheme;

impl Modify for AgentTokenScheme {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                AGENT_TOKEN,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// Every route with its description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi_doc::openapi_json))
        .routes(routes!(authenticate::authenticate))
        .routes(routes!(bootstrap::bootstrap))
        .routes(routes!(agent::register))
        .routes(routes!(agent::unregister))
        .routes(routes!(admin_products::list, admin_products::create))
        .routes(routes!(
            admin_products::show,
            admin_products::update,
            admin_products::delete
        ))
        .routes(routes!(admin_devices::list, admin_devices::create))
        .routes(routes!(admin_devices::show, admin_devices::delete))
        .routes(routes!(admin_devices::show_by_guid))
        .routes(routes!(admin_devices::enable))
        .routes(routes!(admin_devices::disable))
        .routes(routes!(admin_credentials::list))
        .routes(routes!(admin_credentials::create_psk))
        .routes(routes!(admin_credentials::issue_certificate))
        .routes(routes!(admin_credentials::create_access_key))
        .routes(routes!(admin_credentials::revoke))
        .routes(routes!(admin_status::status))
}

/// The OpenAPI document of [`api`].
pub fn openapi() -> OpenApiDocument {
    api().into_openapi()
}

/// The service over `state`.
pub fn router(state: AppState) -> Router {
    let (routes, document) = api().split_for_parts();
    routes
        .layer(openapi_doc::layer(&document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route (GET /openapi.json lists them)")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this route (GET /openapi.json lists them)",
    )
}
