//! Dynamic activation and registration (PROTOCOL.md §4, §6.3): push the
//! committed secret to the waiting connection, retry until the device
//! confirms, then close the session.

use sha2::{Digest as _, Sha256};

use super::connection::{Connection, Session, Subject};
use super::timers::TimerKind;
use super::{ConnectionId, Effect, Engine, IssueKind, MessageDecision};
use crate::credentials::Registration;
use crate::registry::{DeviceRecord, identity_of};
use crate::secret::Secret;

/// The longest activation reply read, in bytes.
const MAX_REPLY_LEN: usize = 4096;

impl Engine {
    /// The background task committed a secret issued for `connection`
    /// (see [`super::StoreWrite::Issue`]): record it as pending and push it
    /// there. `None`: the write was replayed from an earlier process's
    /// spool, whose connections are gone; the registry is updated only.
    pub fn handle_issue_committed(
        &self,
        connection: Option<ConnectionId>,
        device: &str,
        kind: IssueKind,
        secret: Secret,
        now_ms: u64,
    ) {
        match kind {
            IssueKind::Activation | IssueKind::Register => {
                self.registry
                    .update_device(device, |d| d.pending_secret = Some(secret.clone()));
            }
            IssueKind::Regnwl => {
                let hash: Box<[u8; 32]> = Box::new(Sha256::digest(secret.expose()).into());
                if !self
                    .registry
                    .update_device(device, |d| d.token_hash = Some(hash.clone()))
                {
                    let mut record = DeviceRecord::new(None);
                    record.token_hash = Some(hash);
                    self.registry.put_device(device, record);
                }
            }
        }
        let Some(connection) = connection else {
            return;
        };
        let Some(mut conn) = self.connections.get_mut(&connection) else {
            return;
        };
        if conn.device_key() != Some(device) {
            return;
        }
        let serial = conn.serial;
        let client_id = conn.client_id.to_string();
        let Some(id) = identity_of(device) else {
            return;
        };
        let (pk, dk) = (id.product_key.to_owned(), id.device_key.to_owned());
        let Subject::Device { session, .. } = &mut conn.subject else {
            return;
        };
        match session {
            Session::Activation(state) => {
                state.secret = Some(secret);
                drop(conn);
                self.push_activation(connection, now_ms);
            }
            Session::Registration(registration) => {
                let (topic, payload) = match registration {
                    Registration::Register => (
                        "/ext/register",
                        serde_json::json!({"productKey": pk, "deviceName": dk, "deviceSecret": secret.expose_str()}),
                    ),
                    Registration::Regnwl => (
                        "/ext/regnwl",
                        serde_json::json!({"clientId": format!("{pk}.{dk}"), "productKey": pk, "deviceName": dk,
                                           "deviceToken": secret.expose_str()}),
                    ),
                };
                drop(conn);
                self.push_effect(Effect::Publish {
                    connection,
                    client_id,
                    topic: topic.to_owned(),
                    payload: payload.to_string().into_bytes(),
                    qos: 1,
                });
                self.timers.schedule(
                    now_ms + self.config.registration_linger_ms,
                    connection,
                    serial,
                    TimerKind::Close,
                );
            }
            Session::Normal => {}
        }
    }

    /// Pushes `thing/activate/info` with a new id and the pending secret.
    fn push_activation(&self, connection: ConnectionId, now_ms: u64) {
        let Some(mut conn) = self.connections.get_mut(&connection) else {
            return;
        };
        let serial = conn.serial;
        let client_id = conn.client_id.to_string();
        let Some((pk, dk)) = conn
            .identity()
            .map(|id| (id.product_key.to_owned(), id.device_key.to_owned()))
        else {
            return;
        };
        let Some(state) = activation_state(&mut conn) else {
            return;
        };
        let Some(secret) = state.secret.as_ref().map(Secret::expose_str) else {
            return;
        };
        state.push_id += 1;
        state.pushes += 1;
        let payload = serde_json::json!({
            "id": state.push_id.to_string(),
            "version": "1.0",
            "method": "thing.activate.info",
            "params": {"assetId": format!("{dk}&{pk}"), "productKey": pk, "deviceKey": dk, "deviceSecret": secret},
        });
        drop(conn);
        self.push_effect(Effect::Publish {
            connection,
            client_id,
            topic: format!("/ext/session/{pk}/{dk}/thing/activate/info"),
            payload: payload.to_string().into_bytes(),
            qos: 1,
        });
        self.timers.schedule(
            now_ms + self.config.activation_retry_ms,
            connection,
            serial,
            TimerKind::ActivationRetry,
        );
    }

    /// No confirmation in time: push again, or close after the last push.
    pub(super) fn activation_retry(&self, connection: ConnectionId, _serial: u64, now_ms: u64) {
        let pushes = {
            let Some(mut conn) = self.connections.get_mut(&connection) else {
                return;
            };
            match activation_state(&mut conn) {
                Some(state) if !state.confirmed && state.secret.is_some() => state.pushes,
                _ => return,
            }
        };
        if pushes >= self.config.activation_max_pushes {
            tracing::info!(
                connection = connection.0,
                "activation unconfirmed after {pushes} pushes: closing"
            );
            self.close_connection(connection);
        } else {
            self.push_activation(connection, now_ms);
        }
    }

    /// A message on `/ext/session/{pk}/{dk}/thing/activate/info_reply`.
    pub(super) fn activation_reply(&self, connection: ConnectionId, payload: &[u8], now_ms: u64) -> MessageDecision {
        let reply = parse_activation_reply(payload);
        let (confirmed, device, serial) = {
            let Some(mut conn) = self.connections.get_mut(&connection) else {
                return MessageDecision::Forward;
            };
            let serial = conn.serial;
            let device = conn.device_key().map(str::to_owned);
            let Some(state) = activation_state(&mut conn) else {
                return MessageDecision::Consume;
            };
            let ok = state.secret.is_some()
                && !state.confirmed
                && reply.is_some_and(|(id, success)| success && id == state.push_id.to_string());
            if ok {
                state.confirmed = true;
            }
            (ok, device, serial)
        };
        match (confirmed, device) {
            (true, Some(device)) => {
                self.confirm_pending_secret(&device, now_ms);
                self.timers.schedule(
                    now_ms + self.config.activation_linger_ms,
                    connection,
                    serial,
                    TimerKind::Close,
                );
            }
            _ => self
                .timers
                .schedule(now_ms, connection, serial, TimerKind::ActivationRetry),
        }
        MessageDecision::Consume
    }
}

fn activation_state(conn: &mut Connection) -> Option<&mut super::connection::ActivationState> {
    match &mut conn.subject {
        Subject::Device {
            session: Session::Activation(state),
            ..
        } => Some(state),
        _ => None,
    }
}

/// `(id, success)` of a device's `thing/activate/info_reply` payload:
/// success is `code` 200 or "200"; `None` if it is not a reply at all.
pub fn parse_activation_reply(payload: &[u8]) -> Option<(String, bool)> {
    if payload.len() > MAX_REPLY_LEN {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let id = match value.get("id")? {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let success = match value.get("code") {
        Some(serde_json::Value::Number(n)) => n.as_u64() == Some(200),
        Some(serde_json::Value::String(s)) => s == "200",
        _ => false,
    };
    Some((id, success))
}

#[cfg(test)]
mod tests {
    use super::parse_activation_reply as parse_reply;

    #[test]
    fn replies() {
        let sdk = br#"{"id": "act-1", "code": 200, "data": null, "message": "device activate success"}"#;
        assert_eq!(parse_reply(sdk), Some(("act-1".into(), true)));
        assert_eq!(parse_reply(br#"{"id":"1","code":"200"}"#), Some(("1".into(), true)));
        assert_eq!(parse_reply(br#"{"id":"1","code":1101}"#), Some(("1".into(), false)));
        assert_eq!(parse_reply(br#"{"code":200}"#), None);
        assert_eq!(parse_reply(b"not json"), None);
    }
}
