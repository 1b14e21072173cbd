//! Carrying out the engine's effects, like dynamic-security's kicklist:
//! direct publishes go out from any callback; kicks wait for TICK, because
//! a kick is synchronous and must never hit the client of the current
//! callback (BROKERS.md §1.8).

use std::ffi::{CString, c_int};

use devicegate::engine::{Effect, Hooks};

use crate::{Plugin, ffi};

impl Plugin {
    /// Drains the engine's effects; kicks run now only when `kicks_now`.
    pub fn drain_effects(&self, kicks_now: bool) {
        if kicks_now {
            let kicks: Vec<String> = self.kicks.borrow_mut().drain(..).collect();
            for client_id in kicks {
                kick(&client_id);
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
                Effect::Kick { client_id, .. } if kicks_now => kick(&client_id),
                Effect::Kick { client_id, .. } => self.kicks.borrow_mut().push(client_id),
            }
        }
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

fn kick(client_id: &str) {
    let Ok(id) = CString::new(client_id) else { return };
    // SAFETY: broker thread, outside any callback of this client; `id` is
    // NUL-terminated and outlives the call.
    unsafe { ffi::mosquitto_kick_client_by_clientid(id.as_ptr(), false) };
}
