//! `GET /healthz`: whether the database answers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// The health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `up` or `down`.
    database: &'static str,
    /// Why the database is down, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'static str>,
}

/// 200 when a query reaches the database, 503 when none does.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database does not answer", body = Health)
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match state.store().latest_change().await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                database: "up",
                detail: None,
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    database: "down",
                    detail: Some("the database does not answer (see the service log)"),
                }),
            )
        }
    }
}
