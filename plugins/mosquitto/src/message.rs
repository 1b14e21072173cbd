//! MOSQ_EVT_MESSAGE: the engine consumes activation replies and gateway
//! `combine/*` requests; it answers on the reply topic itself, so the
//! request is rejected here and never reaches other subscribers (MQTT 5
//! senders see PUBACK 0x87 for it; 3.1.1 senders a normal PUBACK).

use std::ffi::{c_int, c_void};

use devicegate::clock::now_ms;
use devicegate::engine::{Hooks, MessageDecision};

use crate::{Plugin, client, ffi, panic::guard};

/// # Safety
/// Called by the broker with a `mosquitto_evt_message` and the userdata
/// given at registration.
pub unsafe extern "C" fn on_message(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("message", ffi::MOSQ_ERR_ACL_DENIED, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        let Some((plugin, event)) = (unsafe { Plugin::with_event::<ffi::mosquitto_evt_message>(userdata, event_data) })
        else {
            return ffi::MOSQ_ERR_SUCCESS;
        };
        // SAFETY: the topic is NUL-terminated for the callback's duration.
        let topic = unsafe { client::bytes(event.topic) }.and_then(|t| std::str::from_utf8(t).ok());
        let payload: &[u8] = if event.payload.is_null() || event.payloadlen == 0 {
            &[]
        } else {
            // SAFETY: the broker's payload holds `payloadlen` bytes for the callback's duration.
            unsafe { std::slice::from_raw_parts(event.payload.cast::<u8>(), event.payloadlen as usize) }
        };
        let connection = client::connection(event.client);
        let decision = match topic {
            Some(topic) => plugin.auth.handle_message(connection, topic, payload, now_ms()),
            None => MessageDecision::Forward,
        };
        // Before the broker routes the message: kicks for other clients are safe.
        plugin.drain_effects(crate::effects::Kicks::ExceptFor(connection));
        crate::log::flush();
        match decision {
            MessageDecision::Forward => ffi::MOSQ_ERR_SUCCESS,
            MessageDecision::Consume => ffi::MOSQ_ERR_ACL_DENIED,
        }
    })
}
