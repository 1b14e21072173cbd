//! Carrying out the engine's effects, like dynamic-security's kicklist:
//! direct publishes go out from any callback; a kick is synchronous in
//! Mosquitto (the client is disconnected inside the call), so it runs only
//! where the broker is in none of its loops over clients — TICK, a new
//! CONNECT, a PUBLISH before routing — and never against the client of the
//! current callback (BROKERS.md §1.8). Revocation thus waits for no TICK
//! while other traffic comes.

use std::ffi::{CString, c_int};

use devicegate::engine::{ConnectionId, Effect, Hooks};

use crate::{Plugin, ffi};

/// Which kicks may run in the current callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kicks {
    /// None: the broker may be iterating clients (ACL checks on delivery).
    Wait,
    /// All of them (TICK).
    Now,
    /// All but the client of this callback.
    ExceptFor(ConnectionId),
}

impl Kicks {
    fn allows(self, target: ConnectionId) -> bool {
        match self {
            Kicks::Wait => false,
            Kicks::Now => true,
            Kicks::ExceptFor(current) => current != target,
        }
    }
}

impl Plugin {
    /// Drains the engine's effects; kicks run now where `kicks` allows.
    pub fn drain_effects(&self, kicks: Kicks) {
        if kicks != Kicks::Wait && !self.kicks.borrow().is_empty() {
            let due: Vec<(ConnectionId, String)> = {
                let mut waiting = self.kicks.borrow_mut();
                let (due, keep) = waiting.drain(..).partition(|(c, _)| kicks.allows(*c));
                *waiting = keep;
                due
            };
            for (connection, client_id) in due {
                self.kick(connection, &client_id);
            }
        }
        while let Some(effect) = self.auth.poll_effect() {
            match effect {
                Effect::Publish {
                    client_id,
                    topic,
                    payload,
                    qos,
                    ..
                } => publish(&client_id, &topic, &payload, qos),
                Effect::Kick { connection, client_id } if kicks.allows(connection) => self.kick(connection, &client_id),
                Effect::Kick { connection, client_id } => self.kicks.borrow_mut().push((connection, client_id)),
            }
        }
    }

    /// Kicks `connection` by its client id, unless a newer session of the
    /// same subject holds that id by now (Mosquitto kicks by id only).
    fn kick(&self, connection: ConnectionId, client_id: &str) {
        let holder = self.auth.engine().client_id_holder(client_id.as_bytes());
        if holder.is_some_and(|h| h != connection) {
            tracing::debug!(client_id, "kick skipped: the client id belongs to a newer session");
            return;
        }
        let Ok(id) = CString::new(client_id) else { return };
        // SAFETY: broker thread, outside any callback of this client and
        // outside the broker's loops over clients (see `Kicks`); `id` is
        // NUL-terminated and outlives the call.
        unsafe { ffi::mosquitto_kick_client_by_clientid(id.as_ptr(), false) };
    }
}

fn publish(client_id: &str, topic: &str, payload: &[u8], qos: u8) {
    let (Ok(id), Ok(topic_c), Ok(len)) = (
        CString::new(client_id),
        CString::new(topic),
        c_int::try_from(payload.len()),
    ) else {
        tracing::error!(
            topic,
            "cannot publish: client id or topic contains NUL, or the payload is too large"
        );
        return;
    };
    // SAFETY: broker thread; every pointer is valid for the call, and the
    // `_copy` variant copies the payload before returning.
    let rc = unsafe {
        ffi::mosquitto_broker_publish_copy(
            id.as_ptr(),
            topic_c.as_ptr(),
            len,
            payload.as_ptr().cast(),
            c_int::from(qos),
            false,
            std::ptr::null_mut(),
        )
    };
    if rc != ffi::MOSQ_ERR_SUCCESS {
        tracing::warn!(topic, rc, "direct publish failed");
    }
}
