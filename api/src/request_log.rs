//! One log line per request at info: method, path, status and duration.
//! Never the query string, a body or a header (tokens travel in those).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::listener::PeerAddr;
use crate::state::AppState;

/// The middleware that writes the line and counts the request.
pub async fn log_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics()
        .request(&route, response.status().as_u16(), started.elapsed().as_secs_f64());
    tracing::info!(
        target: "devicegate_api::request",
        %method,
        path,
        status = response.status().as_u16(),
        duration_ms = %format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0),
        peer = peer.map(tracing::field::display),
        "request"
    );
    response
}
