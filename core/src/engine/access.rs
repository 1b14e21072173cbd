//! Publish, subscribe and delivery checks for one connection (PROTOCOL.md
//! §7): the session's rules, then the families of logged-in sub-devices.

use super::connection::{Connection, GatewayState, MAX_TRACKED_SUBSCRIPTIONS, Subject};
use super::denials::DenialReason;
use super::{ConnectionId, Engine};
use crate::acl::{Rights, strip_shared};
use crate::decision::AccessDecision;
use crate::metrics::DenialKind;
use crate::registry::with_device_key;

impl Engine {
    pub(super) fn check_publish(
        &self,
        connection: ConnectionId,
        topic: &str,
        retain: bool,
        now_ms: u64,
    ) -> AccessDecision {
        let (decision, was_idle) = {
            let Some(conn) = self.connections.get(&connection) else {
                return AccessDecision::Defer;
            };
            if retain && !retain_allowed(&conn) {
                self.metrics().denied(DenialKind::Publish);
                conn.log_denial("publish", topic, DenialReason::RetainNotAllowed, now_ms);
                return AccessDecision::Deny;
            }
            let allowed = allows_topic(&conn, Rights::PUBLISH, topic);
            if !allowed {
                self.metrics().denied(DenialKind::Publish);
                conn.log_denial("publish", topic, DenialReason::OutsideFamilies, now_ms);
            }
            (AccessDecision::from_bool(allowed), allowed && conn.touch(now_ms))
        };
        if was_idle {
            self.back_from_idle(connection, now_ms);
        }
        decision
    }

    pub(super) fn check_delivery(&self, connection: ConnectionId, topic: &str) -> AccessDecision {
        match self.connections.get(&connection) {
            Some(conn) => {
                let allowed = allows_topic(&conn, Rights::READ, topic);
                if !allowed {
                    self.metrics().denied(DenialKind::Delivery);
                }
                AccessDecision::from_bool(allowed)
            }
            None => AccessDecision::Defer,
        }
    }

    pub(super) fn check_subscribe(&self, connection: ConnectionId, filter: &str, now_ms: u64) -> AccessDecision {
        let (decision, was_idle) = {
            let Some(conn) = self.connections.get(&connection) else {
                return AccessDecision::Defer;
            };
            let verdict = allows_filter(&conn, filter);
            if let Err(reason) = verdict {
                self.metrics().denied(DenialKind::Subscribe);
                conn.log_denial("subscribe", filter, reason, now_ms);
            }
            let allowed = verdict.is_ok();
            (AccessDecision::from_bool(allowed), allowed && conn.touch(now_ms))
        };
        if was_idle {
            self.back_from_idle(connection, now_ms);
        }
        if decision == AccessDecision::Allow {
            self.remember_subscription(connection, filter);
        }
        decision
    }

    fn remember_subscription(&self, connection: ConnectionId, raw: &str) {
        let filter = match strip_shared(raw) {
            Some(Ok(inner)) => inner,
            _ => raw,
        };
        if let Some(mut conn) = self.connections.get_mut(&connection) {
            let known = conn.subscriptions.iter().any(|f| **f == *filter);
            if !known && conn.subscriptions.len() < MAX_TRACKED_SUBSCRIPTIONS {
                conn.subscriptions.push(filter.into());
            }
        }
    }

    pub(super) fn unsubscribe(&self, connection: ConnectionId, raw: &str) {
        let filter = match strip_shared(raw) {
            Some(Ok(inner)) => inner,
            _ => raw,
        };
        if let Some(mut conn) = self.connections.get_mut(&connection) {
            conn.subscriptions.retain(|f| **f != *filter);
        }
    }
}

fn retain_allowed(conn: &Connection) -> bool {
    match &conn.subject {
        Subject::Device { product, .. } => product.allow_retain,
        Subject::Principal(_) => true,
    }
}

pub(super) fn allows_topic(conn: &Connection, right: Rights, topic: &str) -> bool {
    match &conn.subject {
        Subject::Principal(p) => p.rules.principal_allows_topic(right, topic),
        Subject::Device { gateway, .. } => {
            conn.rules.allows_topic(right, topic) || sub_device_allows(gateway, right, topic)
        }
    }
}

/// Whether `conn` may subscribe with `raw`, or the rule that refuses it.
fn allows_filter(conn: &Connection, raw: &str) -> Result<(), DenialReason> {
    let (filter, shared) = match strip_shared(raw) {
        Some(Ok(inner)) => (inner, true),
        Some(Err(())) => return Err(DenialReason::MalformedShared),
        None => (raw, false),
    };
    let allowed = match &conn.subject {
        Subject::Principal(p) => p.rules.principal_allows_filter(filter),
        Subject::Device { product, gateway, .. } => {
            if shared && !product.shared_subscriptions {
                return Err(DenialReason::SharedNotAllowed);
            }
            conn.rules.allows_filter(filter) || sub_device_allows(gateway, Rights::SUBSCRIBE, filter)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(DenialReason::OutsideFamilies)
    }
}

/// Whether a sub-device logged in through this gateway connection names
/// `topic` (a filter for SUB) in one of its product's gateway families.
fn sub_device_allows(gateway: &GatewayState, right: Rights, topic: &str) -> bool {
    gateway.sub_products.iter().any(|p| {
        p.rules.sub_device_in(right, topic).is_some_and(|id| {
            *id.product_key == *p.key && with_device_key(id, |k| gateway.sub_devices.contains(k)).unwrap_or(false)
        })
    })
}
