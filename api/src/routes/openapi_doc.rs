//! `GET /openapi.json`: the document utoipa generated from the routes.

use std::sync::Arc;

use axum::Extension;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::OpenApi;

/// The document, serialized once at start.
#[derive(Debug, Clone)]
pub struct OpenApiJson(Arc<str>);

/// The layer that hands the handler `document`.
pub fn layer(document: &OpenApi) -> Extension<OpenApiJson> {
    let json = document.to_pretty_json().unwrap_or_else(|_| "{}".to_owned());
    Extension(OpenApiJson(Arc::from(json)))
}

/// The OpenAPI 3 document of this service.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "service",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json.to_string())
}
