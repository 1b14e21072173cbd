//! MOSQ_EVT_TICK, about 10 Hz or more: disconnects, the engine's deadlines
//! (idle-offline, activation retries, session limits), kicks, logs.

use std::ffi::{c_int, c_void};

use devicegate::clock::now_ms;
use devicegate::engine::Hooks;

use crate::{Plugin, ffi, panic::guard};

/// # Safety
/// Called by the broker with a `mosquitto_evt_tick` and the userdata given
/// at registration.
pub unsafe extern "C" fn on_tick(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("tick", ffi::MOSQ_ERR_SUCCESS, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        if let Some((plugin, _)) = unsafe { Plugin::with_event::<ffi::mosquitto_evt_tick>(userdata, event_data) } {
            // The broker runs as its own user by its first TICK.
            plugin.auth.begin();
            plugin.finish_disconnects();
            let now = now_ms();
            plugin.psk_handshakes.borrow_mut().prune(now);
            plugin.auth.handle_tick(now);
            plugin.drain_effects(crate::effects::Kicks::Now);
            crate::stats::report_if_due();
            crate::log::flush();
        }
        ffi::MOSQ_ERR_SUCCESS
    })
}

/// MOSQ_EVT_RELOAD: options are fixed at start (plugins are not reloaded).
///
/// # Safety
/// Called by the broker; reads nothing.
pub unsafe extern "C" fn on_reload(_event: c_int, _event_data: *mut c_void, _userdata: *mut c_void) -> c_int {
    guard("reload", ffi::MOSQ_ERR_SUCCESS, || {
        crate::log::queue(
            ffi::MOSQ_LOG_INFO,
            "devicegate: reload ignored; plugin options are read at start only".to_owned(),
        );
        crate::log::flush();
        ffi::MOSQ_ERR_SUCCESS
    })
}
