//! Per-address limits on the routes that check a proof (`/authenticate`,
//! `/bootstrap`, agent registration): the engine's failed-login limiter
//! (`devicegate::rate_limit::FailureLimiter`), keyed by the client's IP
//! address, one per route. Refusals of a proof count (400, 401, 403); an
//! address that reaches the limit is answered 429 with `Retry-After`
//! until its block ends, each further block twice as long.

use std::future::Future;

use axum::http::StatusCode;
use devicegate::clock::now_ms;
use devicegate::rate_limit::FailureLimiter;

use crate::error::ApiError;
use crate::listener::PeerAddr;

/// Refusals allowed per address and route in one window.
const FAILURES_PER_WINDOW: u32 = 20;
/// The window, and the first block.
const WINDOW_MS: u64 = 60_000;
/// Tracked addresses above which old entries are pruned.
const PRUNE_ABOVE: usize = 4096;

/// A route whose refusals are limited per address.
#[derive(Debug, Clone, Copy)]
pub enum LimitedRoute {
    /// `POST /authenticate`.
    Authenticate,
    /// `POST /bootstrap`.
    Bootstrap,
    /// `POST /v1/{productKey}/agent/devices`.
    Registration,
}

/// One failure limiter per limited route.
#[derive(Debug)]
pub struct AddressLimits {
    authenticate: FailureLimiter,
    bootstrap: FailureLimiter,
    registration: FailureLimiter,
}

impl AddressLimits {
    /// Fresh limits.
    pub fn new() -> Self {
        let limiter = || FailureLimiter::new(FAILURES_PER_WINDOW, WINDOW_MS);
        AddressLimits {
            authenticate: limiter(),
            bootstrap: limiter(),
            registration: limiter(),
        }
    }

    fn limiter(&self, route: LimitedRoute) -> &FailureLimiter {
        match route {
            LimitedRoute::Authenticate => &self.authenticate,
            LimitedRoute::Bootstrap => &self.bootstrap,
            LimitedRoute::Registration => &self.registration,
        }
    }

    /// Runs `work` for a request from `peer` to `route` unless the address
    /// is blocked (429), and counts its refusal if it is refused.
    pub async fn guard<T>(
        &self,
        route: LimitedRoute,
        peer: Option<PeerAddr>,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        let limiter = self.limiter(route);
        let key = peer.map_or_else(|| "unknown".to_owned(), |p| p.0.ip().to_string());
        let now = now_ms();
        if let Some(until) = limiter.blocked_until(&key, now) {
            return Err(ApiError::too_many_requests(until.saturating_sub(now).div_ceil(1000)));
        }
        let result = work.await;
        if let Err(e) = &result
            && matches!(
                e.status(),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            )
        {
            let now = now_ms();
            if limiter.record_failure(&key, now).is_some() {
                tracing::warn!(address = %key, ?route, "address blocked after repeated refusals");
            }
            if limiter.len() > PRUNE_ABOVE {
                limiter.prune(now);
            }
        }
        result
    }
}
