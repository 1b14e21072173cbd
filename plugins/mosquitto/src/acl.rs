//! MOSQ_EVT_ACL_CHECK: WRITE = publish (also wills and retained messages),
//! SUBSCRIBE = containment, READ = delivery, UNSUBSCRIBE always allowed
//! (BROKERS.md §1.5). Clients the engine does not know are deferred.

use std::ffi::{c_int, c_void};

use devicegate::clock::now_ms;
use devicegate::decision::AccessDecision;
use devicegate::engine::Hooks;

use crate::{Plugin, client, ffi, panic::guard};

fn code(decision: AccessDecision) -> c_int {
    match decision {
        AccessDecision::Allow => ffi::MOSQ_ERR_SUCCESS,
        AccessDecision::Deny => ffi::MOSQ_ERR_ACL_DENIED,
        AccessDecision::Defer => ffi::MOSQ_ERR_PLUGIN_DEFER,
    }
}

/// # Safety
/// Called by the broker with a `mosquitto_evt_acl_check` and the userdata
/// given at registration.
pub unsafe extern "C" fn on_acl_check(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("acl_check", ffi::MOSQ_ERR_ACL_DENIED, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        let Some((plugin, event)) =
            (unsafe { Plugin::with_event::<ffi::mosquitto_evt_acl_check>(userdata, event_data) })
        else {
            return ffi::MOSQ_ERR_ACL_DENIED;
        };
        let connection = client::connection(event.client);
        // SAFETY: the topic is NULL or NUL-terminated for the callback's duration.
        let topic = unsafe { client::bytes(event.topic) }.and_then(|t| std::str::from_utf8(t).ok());
        let Some(topic) = topic else {
            return ffi::MOSQ_ERR_ACL_DENIED;
        };
        let auth = &plugin.auth;
        let rc = match event.access {
            ffi::MOSQ_ACL_WRITE => code(auth.authorize_publish(connection, topic, event.retain, now_ms())),
            ffi::MOSQ_ACL_SUBSCRIBE => code(auth.authorize_subscribe(connection, topic, now_ms())),
            ffi::MOSQ_ACL_READ => code(auth.authorize_delivery(connection, topic)),
            ffi::MOSQ_ACL_UNSUBSCRIBE => {
                auth.handle_unsubscribe(connection, topic);
                ffi::MOSQ_ERR_SUCCESS
            }
            _ => ffi::MOSQ_ERR_ACL_DENIED,
        };
        plugin.after_event();
        rc
    })
}
