//! The one error answer: a status and `{"errors":{"detail":"…"}}`
//! (IDENTITIES.md §7), and how store errors map onto it. Details never
//! carry a secret or a database internal; those go to the log.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use devicegate::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// A refused request: its status and the sentence the client sees.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: String,
    retry_after_secs: Option<u64>,
}

/// The error body: `{"errors":{"detail":"…"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub errors: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// One sentence; for bad input it names the field at fault.
    pub detail: String,
}

impl ApiError {
    /// An answer with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            retry_after_secs: None,
        }
    }

    /// 400: the request is malformed; `detail` names the field.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 429: the address is blocked for `secs` seconds.
    pub fn too_many_requests(secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed requests from this address: retry in {secs} s"),
            )
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The same error, naming `field` when it is a 400 (the store's
    /// messages say what is wrong, the route knows where).
    pub fn in_field(mut self, field: &str) -> Self {
        if self.status == StatusCode::BAD_REQUEST {
            self.detail = format!("{field}: {}", self.detail);
        }
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
            StoreError::NotAuthenticated(_) => StatusCode::UNAUTHORIZED,
            StoreError::Forbidden(_) => StatusCode::FORBIDDEN,
            StoreError::UnknownProduct(_) | StoreError::UnknownDevice(..) | StoreError::UnknownPrincipal(_) => {
                StatusCode::NOT_FOUND
            }
            StoreError::ProductExists(_) | StoreError::DeviceExists(..) | StoreError::PrincipalExists(_) => {
                StatusCode::CONFLICT
            }
            StoreError::AlreadyActivated(..) => {
                return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "device already registered");
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "database unavailable");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is unavailable: try again later",
                );
            }
            _ => {
                tracing::error!(error = %e, "request failed in the store");
                return ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (see the service log)",
                );
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            errors: ErrorDetail { detail: self.detail },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
