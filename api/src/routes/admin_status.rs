//! Admin API, status: device counts by state, per product (`devicegate status`).

use axum::Json;
use axum::extract::State;
use devicegate::store::ProductStatus;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AdminAgent;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Device counts per product.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// One entry per product.
    #[schema(value_type = Vec<Object>)]
    products: Vec<ProductStatus>,
}

/// Device counts by state, per product.
#[utoipa::path(
    get,
    path = "/v1/admin/status",
    tag = "admin",
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The counts", body = Status),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody)
    )
)]
pub async fn status(State(state): State<AppState>, _: AdminAgent) -> Result<Json<Status>, ApiError> {
    Ok(Json(Status {
        products: state.store().status().await?,
    }))
}
