//! `GET /metrics`: the Prometheus text format — the service's requests,
//! whether the database answers, and device counts by product and state.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use devicegate::metrics::Exposition;

use crate::state::AppState;

/// The metrics, read from memory and one status query.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = Exposition::new();
    state.metrics().render(&mut out);
    let status = state.store().status().await;
    out.family(
        "devicegate_database_up",
        "gauge",
        "1 if the database answered this scrape.",
    );
    out.sample("devicegate_database_up", &[], u8::from(status.is_ok()));
    if let Ok(products) = status {
        out.family(
            "devicegate_devices",
            "gauge",
            "Devices by product and state, as the database says.",
        );
        for p in &products {
            for (label, count) in [
                ("total", p.total),
                ("enabled", p.enabled),
                ("disabled", p.disabled),
                ("activated", p.activated),
                ("inactive", p.inactive),
                ("online", p.online),
            ] {
                out.sample(
                    "devicegate_devices",
                    &[("product", &p.product_key), ("state", label)],
                    count,
                );
            }
        }
    }
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], out.finish())
}
