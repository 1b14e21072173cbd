//! Where a published message goes besides its subscribers: requests the
//! engine answers itself (activation replies, gateway `combine/*`), and
//! commands delivered straight to the device they name (PROTOCOL.md §7.6):
//! device SDKs never subscribe to their command topics.

use std::sync::OnceLock;

use super::access::allows_topic;
use super::connection::Subject;
use super::gateway::GatewayOp;
use super::{ConnectionId, Effect, Engine, MessageDecision};
use crate::acl::{Rights, TopicRules, filter_matches};
use crate::credentials::{Dialect, Identity};
use crate::registry::{identity_of, with_device_key};

/// The default families of both dialects, used to find which device a
/// command topic names.
fn command_families() -> &'static [TopicRules; 2] {
    static FAMILIES: OnceLock<[TopicRules; 2]> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        [
            TopicRules::device_defaults(Dialect::Enos),
            TopicRules::device_defaults(Dialect::Aliyun),
        ]
    })
}

/// The device a topic belongs to, by the default families of either dialect.
fn command_target(topic: &str) -> Option<Identity<'_>> {
    command_families()
        .iter()
        .find_map(|rules| rules.sub_device_in(Rights::READ, topic))
}

impl Engine {
    /// Routes a message after the publish check allowed it.
    pub(super) fn message(
        &self,
        connection: ConnectionId,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> MessageDecision {
        if let Some(decision) = self.session_request(connection, topic, payload, now_ms) {
            return decision;
        }
        self.deliver_command(connection, topic, payload);
        MessageDecision::Forward
    }

    /// Delivers `topic` to the connection the named device is online
    /// through (its own, or its gateway's), if that connection may read it
    /// and has no subscription of its own that already matches.
    fn deliver_command(&self, from: ConnectionId, topic: &str, payload: &[u8]) {
        // A device may publish only in its own families (and its logged-in
        // sub-devices'), which route back to itself: nothing to deliver.
        let from_device = self
            .connections
            .get(&from)
            .is_some_and(|c| matches!(c.subject, Subject::Device { .. }));
        if from_device {
            return;
        }
        let Some(identity) = command_target(topic) else { return };
        let Some(target) = with_device_key(identity, |k| self.online.get(k).map(|c| *c)).flatten() else {
            return;
        };
        if target == from {
            return;
        }
        let Some(conn) = self.connections.get(&target) else {
            return;
        };
        if !allows_topic(&conn, Rights::READ, topic) || conn.subscriptions.iter().any(|f| filter_matches(f, topic)) {
            return;
        }
        let client_id = conn.client_id.to_string();
        drop(conn);
        tracing::debug!(topic, client_id, "delivering a command directly");
        self.push_effect(Effect::Publish {
            connection: target,
            client_id,
            topic: topic.to_owned(),
            payload: payload.to_vec(),
            qos: 1,
        });
    }

    /// A request on the sender's own `/ext/session/{pk}/{dk}/…` topics that
    /// the engine answers itself, if this is one.
    fn session_request(
        &self,
        connection: ConnectionId,
        topic: &str,
        payload: &[u8],
        now_ms: u64,
    ) -> Option<MessageDecision> {
        let rest = topic.strip_prefix("/ext/session/")?;
        let (dialect, own) = {
            let conn = self.connections.get(&connection)?;
            match &conn.subject {
                Subject::Device { key, product, .. } => (product.dialect, key.to_string()),
                Subject::Principal(_) => return None,
            }
        };
        let id = identity_of(&own)?;
        let suffix = rest
            .strip_prefix(id.product_key)
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_prefix(id.device_key))
            .and_then(|r| r.strip_prefix('/'))?;
        if suffix == "thing/activate/info_reply" {
            return Some(self.activation_reply(connection, payload, now_ms));
        }
        match GatewayOp::from_suffix(suffix) {
            Some(op) if dialect == Dialect::Enos => Some(self.gateway_request(connection, op, topic, payload, now_ms)),
            _ => None,
        }
    }
}
