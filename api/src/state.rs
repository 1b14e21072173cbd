//! What every handler shares: the store, the service's keys and settings,
//! and the per-address limits.

use std::sync::Arc;

use devicegate::access_token::SigningKey;
use devicegate::store::Store;
use devicegate_pki::Ca;

use crate::limits::AddressLimits;
use crate::service_metrics::ServiceMetrics;

/// The service's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    store: Store,
    token_key: Option<SigningKey>,
    default_server: Option<String>,
    ca: Option<Ca>,
    limits: AddressLimits,
    metrics: ServiceMetrics,
}

impl AppState {
    /// The state over `store`: `token_key` signs device tokens (without
    /// it `/authenticate` answers 503), `default_server` answers bootstrap
    /// for unassigned devices, `ca` issues certificates from CSRs.
    pub fn new(store: Store, token_key: Option<SigningKey>, default_server: Option<String>, ca: Option<Ca>) -> Self {
        AppState {
            inner: Arc::new(Shared {
                store,
                token_key,
                default_server,
                ca,
                limits: AddressLimits::new(),
                metrics: ServiceMetrics::default(),
            }),
        }
    }

    /// The database.
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The service's request counters.
    pub(crate) fn metrics(&self) -> &ServiceMetrics {
        &self.inner.metrics
    }

    /// The token signing key, if the service has one.
    pub(crate) fn token_key(&self) -> Option<&SigningKey> {
        self.inner.token_key.as_ref()
    }

    /// The broker for devices that neither they nor their product are
    /// assigned to.
    pub(crate) fn default_server(&self) -> Option<&str> {
        self.inner.default_server.as_deref()
    }

    /// The devicegate CA, if the service has one.
    pub(crate) fn ca(&self) -> Option<&Ca> {
        self.inner.ca.as_ref()
    }

    /// The per-address failure limits.
    pub(crate) fn limits(&self) -> &AddressLimits {
        &self.inner.limits
    }
}
