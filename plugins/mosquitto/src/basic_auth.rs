//! MOSQ_EVT_BASIC_AUTH: every CONNECT (BROKERS.md §1.8), with the PSK
//! identity of its TLS handshake if it had one (`psk.rs`), or the client
//! certificate the listener verified (`require_certificate true`). Every refusal is
//! `MOSQ_ERR_AUTH` (CONNACK 5 / 0x87: Mosquitto 2.0.11 cannot send 2, 3 or
//! 4 from a plugin); clients with neither a username nor a TLS identity
//! are left to the next plugin.

use std::ffi::{c_int, c_void};

use devicegate::clock::now_ms;
use devicegate::engine::{ConnectDecision, ConnectRequest, Hooks, TlsIdentity};

use crate::{Plugin, client, ffi, panic::guard};

/// # Safety
/// Called by the broker with a `mosquitto_evt_basic_auth` and the userdata
/// given at registration.
pub unsafe extern "C" fn on_basic_auth(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("basic_auth", ffi::MOSQ_ERR_AUTH, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        let Some((plugin, event)) =
            (unsafe { Plugin::with_event::<ffi::mosquitto_evt_basic_auth>(userdata, event_data) })
        else {
            return ffi::MOSQ_ERR_AUTH;
        };
        let connection = client::connection(event.client);
        plugin.finish_disconnect(connection);
        // SAFETY: `event.client` is the live client of this callback; the
        // username and password are NULL or NUL-terminated for its duration.
        let (client_id, address, username, password) = unsafe {
            (
                client::client_id(event.client),
                client::address(event.client),
                client::bytes(event.username),
                client::bytes(event.password),
            )
        };
        let now = now_ms();
        let psk_identity = plugin
            .psk_handshakes
            .borrow_mut()
            .take(event.client, address.as_deref(), now);
        // A client certificate, on a listener that asks for one (none with a PSK).
        let certificate = match psk_identity {
            Some(_) => None,
            // SAFETY: `event.client` is the live client of this callback.
            None => unsafe { client::certificate_der(event.client) },
        };
        let mut request = ConnectRequest::new(&client_id, username, password, address.as_deref());
        if let Some(identity) = &psk_identity {
            request = request.with_tls(TlsIdentity::Psk(identity));
        } else if let Some(der) = &certificate {
            request = request.with_tls(TlsIdentity::Certificate(der));
        }
        // A holder of this client id that closed since the last TICK frees
        // it now, so the engine's id check sees only live sessions.
        if let Some(holder) = plugin.auth.engine().client_id_holder(&client_id) {
            plugin.finish_disconnect(holder);
        }
        let decision = plugin.auth.handle_connect(connection, &request, now);
        // A new CONNECT is handled outside any of the broker's loops over
        // clients: kicks for other clients are safe here.
        plugin.drain_effects(crate::effects::Kicks::ExceptFor(connection));
        crate::log::flush();
        match decision {
            ConnectDecision::Accept => ffi::MOSQ_ERR_SUCCESS,
            ConnectDecision::Refuse(_) => ffi::MOSQ_ERR_AUTH,
            ConnectDecision::Defer => ffi::MOSQ_ERR_PLUGIN_DEFER,
        }
    })
}
