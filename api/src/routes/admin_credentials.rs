//! Admin API, a device's credentials (IDENTITIES.md §2–§4): list them,
//! create a TLS PSK, issue a certificate from a CSR, create an access
//! key, revoke. Each secret is shown only in the answer that creates it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use devicegate::registry::CredentialKind;
use devicegate::store::{CredentialInfo, NewAccessKey, NewPsk};
use devicegate_pki::PkiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::AdminAgent;
use crate::certificates::{IssueError, issue_device_certificate};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;

/// Certificate validity when none is asked for, as `device cert issue`.
const DEFAULT_CERT_DAYS: u32 = 365;

/// A PSK to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PskCreate {
    /// The PSK identity; 22 random base64url characters when left out.
    identity: Option<String>,
}

/// A new PSK: `{"identity","key"}`.
#[derive(Serialize, ToSchema)]
pub struct PskCreated {
    /// The identity the device sends in the handshake.
    identity: String,
    /// The key, 64 hex digits, shown only here.
    key: String,
}

/// A certificate to issue for the key in a CSR.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The device's certificate signing request, PEM (its key never leaves it).
    csr: String,
    /// Validity in days (default 365).
    days: Option<u32>,
}

/// A certificate just issued and registered to the device.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertificateIssued {
    /// The certificate, PEM.
    certificate: String,
    /// Its SHA-256 fingerprint, hex: the credential's identity.
    fingerprint: String,
    /// The end of its validity, ms since the UNIX epoch.
    not_after: u64,
    /// The devicegate CA certificate, PEM.
    ca_certificate: String,
}

/// A new access key pair: `{"accessKey","secretKey"}`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessKeyCreated {
    /// The access key, 64 hex digits.
    access_key: String,
    /// The secret key, 64 hex digits, shown only here.
    secret_key: String,
}

/// Which credentials to revoke.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// `psk`, `certificate` or `access_key`.
    kind: String,
    /// The one to revoke (PSK identity, certificate fingerprint, access
    /// key); all of the kind when left out.
    identity: Option<String>,
}

/// How many credentials were revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// The count.
    revoked: u64,
}

/// A device's credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialList {
    /// Live and revoked, oldest first; never their material.
    #[schema(value_type = Vec<Object>)]
    credentials: Vec<CredentialInfo>,
}

/// A device's credentials, live and revoked.
#[utoipa::path(
    get,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/credentials",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "The credentials", body = CredentialList),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody)
    )
)]
pub async fn list(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<Json<CredentialList>, ApiError> {
    state.store().device_info(&product_key, &device_key).await?;
    Ok(Json(CredentialList {
        credentials: state.store().credentials(&product_key, &device_key).await?,
    }))
}

/// Creates a TLS pre-shared key for the device.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/psk",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    request_body = PskCreate,
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Created", body = PskCreated),
        (status = 400, description = "A bad or taken identity", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn create_psk(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
    JsonBody(request): JsonBody<PskCreate>,
) -> Result<(StatusCode, Json<PskCreated>), ApiError> {
    let NewPsk { identity, key } = state
        .store()
        .create_psk(&product_key, &device_key, request.identity.as_deref())
        .await
        .map_err(|e| ApiError::from(e).in_field("identity"))?;
    Ok((StatusCode::CREATED, Json(PskCreated { identity, key })))
}

/// Issues a device certificate for the key in a CSR with the service's CA
/// (`serve --ca-dir`) and registers it, as `device cert issue --csr` does.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/certificates",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    request_body = CertificateRequest,
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Issued and registered", body = CertificateIssued),
        (status = 400, description = "A bad CSR", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody),
        (status = 503, description = "The service has no CA (serve --ca-dir)", body = ErrorBody)
    )
)]
pub async fn issue_certificate(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
    JsonBody(request): JsonBody<CertificateRequest>,
) -> Result<(StatusCode, Json<CertificateIssued>), ApiError> {
    let ca = state.ca().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the service has no CA: start `devicegate serve` with --ca-dir DIR (devicegate ca init)",
        )
    })?;
    let issued = issue_device_certificate(
        state.store(),
        ca,
        &product_key,
        &device_key,
        Some(&request.csr),
        request.days.unwrap_or(DEFAULT_CERT_DAYS),
    )
    .await
    .map_err(|e| match e {
        IssueError::Store(e) => ApiError::from(e),
        IssueError::NoGuid => ApiError::new(StatusCode::CONFLICT, e.to_string()),
        IssueError::Pki(PkiError::Malformed(_) | PkiError::BadCsrSignature | PkiError::WeakKey(_)) => {
            ApiError::bad_request(format!("csr: {e}"))
        }
        IssueError::Pki(e) => {
            tracing::error!(error = %e, "cannot issue a device certificate");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot issue the certificate (see the service log)",
            )
        }
    })?;
    Ok((
        StatusCode::CREATED,
        Json(CertificateIssued {
            certificate: issued.cert_pem,
            fingerprint: issued.info.fingerprint,
            not_after: issued.info.not_after_ms,
            ca_certificate: ca.cert_pem().to_owned(),
        }),
    ))
}

/// Creates an access key pair for `POST /authenticate`.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/access-keys",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    security(("agent_token" = [])),
    responses(
        (status = 201, description = "Created", body = AccessKeyCreated),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn create_access_key(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
) -> Result<(StatusCode, Json<AccessKeyCreated>), ApiError> {
    let NewAccessKey { access_key, secret_key } = state.store().create_access_key(&product_key, &device_key).await?;
    Ok((StatusCode::CREATED, Json(AccessKeyCreated { access_key, secret_key })))
}

/// Revokes a device's credentials of one kind: one, or all.
#[utoipa::path(
    post,
    path = "/v1/admin/devices/{productKey}/{deviceKey}/credentials/revoke",
    tag = "admin",
    params(
        ("productKey" = String, Path, description = "The product key"),
        ("deviceKey" = String, Path, description = "The device key")
    ),
    request_body = RevokeRequest,
    security(("agent_token" = [])),
    responses(
        (status = 200, description = "Revoked", body = Revoked),
        (status = 400, description = "A bad kind, or nothing live to revoke", body = ErrorBody),
        (status = 401, description = "No valid agent token", body = ErrorBody),
        (status = 403, description = "Not an admin agent", body = ErrorBody),
        (status = 404, description = "No such device", body = ErrorBody)
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    _: AdminAgent,
    Path((product_key, device_key)): Path<(String, String)>,
    JsonBody(request): JsonBody<RevokeRequest>,
) -> Result<Json<Revoked>, ApiError> {
    let store = state.store();
    let identity = request.identity.as_deref();
    let revoked = match request.kind.as_str() {
        "access_key" => store.revoke_access_keys(&product_key, &device_key, identity).await?,
        kind => {
            let kind = CredentialKind::from_name(kind).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "kind: unknown credential kind `{kind}` (expected psk, certificate or access_key)"
                ))
            })?;
            store
                .revoke_credentials(&product_key, &device_key, kind, identity)
                .await?
        }
    };
    Ok(Json(Revoked { revoked }))
}
