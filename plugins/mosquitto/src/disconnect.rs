//! MOSQ_EVT_DISCONNECT: fires for every socket close, per client pointer
//! (BROKERS.md §1.8). The engine learns of it on the next TICK, so that
//! the client's will, published right after this event, is still checked
//! against the rights of its connection (eclipse-mosquitto/mosquitto#3487).

use std::ffi::{c_int, c_void};

use crate::{Plugin, client, ffi, panic::guard};

/// # Safety
/// Called by the broker with a `mosquitto_evt_disconnect` and the userdata
/// given at registration.
pub unsafe extern "C" fn on_disconnect(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("disconnect", ffi::MOSQ_ERR_SUCCESS, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        let found = unsafe { Plugin::with_event::<ffi::mosquitto_evt_disconnect>(userdata, event_data) };
        if let Some((plugin, event)) = found {
            plugin.psk_handshakes.borrow_mut().forget(event.client);
            plugin.queue_disconnect(client::connection(event.client));
        }
        ffi::MOSQ_ERR_SUCCESS
    })
}
