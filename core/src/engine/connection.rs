//! Per-connection state: who is connected, with which session kind and
//! rights. Online state belongs to connections, never to client id strings.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::acl::BoundRules;
use crate::credentials::{Identity, Registration};
use crate::principal::Principal;
use crate::registry::{Product, identity_of};
use crate::secret::Secret;
use crate::verify::Via;

/// A broker's handle for one network connection, unique for the
/// connection's lifetime (Mosquitto: the client pointer plus a generation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

/// What kind of device session a connection holds.
#[derive(Debug)]
pub(super) enum Session {
    /// A normal login with the device secret or a token.
    Normal,
    /// EnOS securemode 3: waiting to push, pushing, or confirmed.
    Activation(ActivationState),
    /// Aliyun registration: one push, then closed.
    Registration(Registration),
}

/// Progress of one activation session.
#[derive(Debug, Default)]
pub(super) struct ActivationState {
    /// The committed pending secret, once the store has it.
    pub secret: Option<Secret>,
    /// The id of the latest push.
    pub push_id: u32,
    /// Pushes sent so far.
    pub pushes: u32,
    /// Whether the device confirmed.
    pub confirmed: bool,
}

/// Who is on the connection.
#[derive(Debug)]
pub(super) enum Subject {
    /// A device, with its product and the sub-devices it logged in.
    Device {
        /// `{dk}&{pk}`.
        key: Box<str>,
        product: Arc<Product>,
        session: Session,
        /// The credential the device logged in with.
        via: Via,
        gateway: GatewayState,
    },
    /// A backend principal.
    Principal(Arc<Principal>),
}

/// Sub-devices logged in through a gateway connection.
#[derive(Debug, Default)]
pub(super) struct GatewayState {
    /// `{dk}&{pk}` of each logged-in sub-device.
    pub sub_devices: HashSet<Box<str>>,
    /// The distinct products of those sub-devices, for ACL checks.
    pub sub_products: Vec<Arc<Product>>,
}

impl Connection {
    /// The credential `device` is online with through this connection:
    /// its own login's, or a secret for a sub-device of this gateway.
    pub(super) fn via_of(&self, device: &str) -> Via {
        match &self.subject {
            Subject::Device { key, via, .. } if &**key == device => via.clone(),
            _ => Via::Secret,
        }
    }
}

impl GatewayState {
    pub(super) fn add(&mut self, key: &str, product: Arc<Product>) {
        self.sub_devices.insert(key.into());
        if !self.sub_products.iter().any(|p| p.key == product.key) {
            self.sub_products.push(product);
        }
    }

    pub(super) fn remove(&mut self, key: &str) -> bool {
        let removed = self.sub_devices.remove(key);
        if removed {
            let pk = identity_of(key).map(|id| id.product_key);
            let still_used = self
                .sub_devices
                .iter()
                .any(|k| identity_of(k).map(|id| id.product_key) == pk);
            if !still_used {
                self.sub_products.retain(|p| Some(&*p.key) != pk);
            }
        }
        removed
    }
}

/// One live connection.
#[derive(Debug)]
pub(super) struct Connection {
    /// Distinguishes this connection from a later one with the same id.
    pub serial: u64,
    pub client_id: Box<str>,
    pub address: Option<Box<str>>,
    pub subject: Subject,
    /// The session's own rules, bound to the device (empty for principals).
    pub rules: BoundRules,
    /// Whether `rules` are an activation or registration session's, which
    /// product changes do not replace.
    pub restricted: bool,
    pub last_activity_ms: AtomicU64,
    /// Set when the idle window passed; cleared by traffic.
    pub idle: AtomicBool,
    /// Filters this connection subscribed to (`$share/` prefix stripped),
    /// at most [`MAX_TRACKED_SUBSCRIPTIONS`].
    pub subscriptions: Vec<Box<str>>,
    /// Denials logged in the current window (see `denials.rs`).
    pub denials: super::denials::DenialLog,
}

/// Subscriptions remembered per connection; beyond this, commands may be
/// delivered both directly and through a subscription.
pub(super) const MAX_TRACKED_SUBSCRIPTIONS: usize = 256;

impl Connection {
    pub(super) fn device_key(&self) -> Option<&str> {
        match &self.subject {
            Subject::Device { key, .. } => Some(key),
            Subject::Principal(_) => None,
        }
    }

    pub(super) fn identity(&self) -> Option<Identity<'_>> {
        self.device_key().and_then(identity_of)
    }

    pub(super) fn principal_name(&self) -> Option<&str> {
        match &self.subject {
            Subject::Principal(p) => Some(&p.name),
            Subject::Device { .. } => None,
        }
    }

    pub(super) fn touch(&self, now_ms: u64) -> bool {
        self.last_activity_ms.store(now_ms, Ordering::Relaxed);
        self.idle.swap(false, Ordering::Relaxed)
    }

    pub(super) fn refresh_product(&mut self, fresh: &Arc<Product>) {
        if let Subject::Device {
            key, product, gateway, ..
        } = &mut self.subject
        {
            if product.key == fresh.key {
                *product = Arc::clone(fresh);
                if let (false, Some(identity)) = (self.restricted, identity_of(key)) {
                    self.rules = BoundRules::bind(&fresh.rules, identity);
                }
            }
            for p in &mut gateway.sub_products {
                if p.key == fresh.key {
                    *p = Arc::clone(fresh);
                }
            }
        }
    }

    pub(super) fn refresh_principal(&mut self, fresh: &Arc<Principal>) {
        if let Subject::Principal(p) = &mut self.subject
            && p.name == fresh.name
        {
            *p = Arc::clone(fresh);
        }
    }
}
