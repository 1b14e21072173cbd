//! Bearer tokens of registration agents (IDENTITIES.md §6): who is
//! calling the agent and admin routes.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use devicegate::store::Agent;

use crate::error::ApiError;
use crate::state::AppState;

/// The agent whose bearer token the request carries (401 when missing,
/// unknown, expired or revoked).
#[derive(Debug)]
pub struct BearerAgent(pub Agent);

/// Proof that the request's agent was created with `--admin` (403 for
/// any other).
#[derive(Debug)]
pub struct AdminAgent;

impl FromRequestParts<AppState> for BearerAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    "missing agent token: send `Authorization: Bearer TOKEN` (devicegate agent create)",
                )
            })?;
        Ok(BearerAgent(state.store().agent_by_token(token).await?))
    }
}

impl FromRequestParts<AppState> for AdminAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerAgent(agent) = BearerAgent::from_request_parts(parts, state).await?;
        agent.require_admin()?;
        Ok(AdminAgent)
    }
}
