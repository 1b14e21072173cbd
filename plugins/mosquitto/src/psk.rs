//! MOSQ_EVT_PSK_KEY: a TLS-PSK handshake on a listener with `psk_hint` and
//! no `psk_file` (IDENTITIES.md §2). The key comes from the registry; the
//! identity is remembered for the client pointer until its CONNECT, where
//! BASIC_AUTH binds the connection to the identity's device.
//!
//! Mosquitto 2.0.11 says nothing else about a connection's TLS to a
//! plugin, so the handshake's identity reaches the CONNECT through this
//! table. It is kept tight because a client pointer can outlive its
//! entry's meaning: a TLS 1.3 handshake that fails inside `accept` frees
//! the client with no DISCONNECT event, and the next connection may get
//! the same pointer. An entry is therefore used at most once, only by a
//! CONNECT from the same address, only within [`HANDSHAKE_TO_CONNECT`],
//! and dropped on DISCONNECT.

use std::collections::HashMap;
use std::ffi::{c_int, c_void};

use devicegate::clock::now_ms;

use crate::{Plugin, client, ffi, panic::guard};

/// The longest time from a PSK handshake to its CONNECT: clients send
/// CONNECT right after the handshake.
pub const HANDSHAKE_TO_CONNECT_MS: u64 = 30_000;

/// PSK handshakes that have not reached their CONNECT yet, by client pointer.
#[derive(Debug, Default)]
pub struct PskHandshakes {
    by_client: HashMap<usize, Handshake>,
}

#[derive(Debug)]
struct Handshake {
    identity: Box<[u8]>,
    address: Option<String>,
    at_ms: u64,
}

impl PskHandshakes {
    fn record(&mut self, client: *const ffi::mosquitto, identity: &[u8], address: Option<String>, now_ms: u64) {
        self.by_client.insert(
            client as usize,
            Handshake {
                identity: identity.into(),
                address,
                at_ms: now_ms,
            },
        );
    }

    /// The identity of `client`'s handshake, taken out of the table, if it
    /// was made from `address` within [`HANDSHAKE_TO_CONNECT_MS`].
    pub fn take(&mut self, client: *const ffi::mosquitto, address: Option<&str>, now_ms: u64) -> Option<Box<[u8]>> {
        let handshake = self.by_client.remove(&(client as usize))?;
        if handshake.address.as_deref() != address {
            tracing::warn!(
                address = address.unwrap_or("-"),
                "a CONNECT came from another address than the PSK handshake recorded for its client: ignoring the \
                 handshake"
            );
            return None;
        }
        if now_ms.saturating_sub(handshake.at_ms) > HANDSHAKE_TO_CONNECT_MS {
            tracing::warn!(
                address = address.unwrap_or("-"),
                "a CONNECT came more than {} s after its PSK handshake: ignoring the handshake; the client must \
                 connect again",
                HANDSHAKE_TO_CONNECT_MS / 1000
            );
            return None;
        }
        Some(handshake.identity)
    }

    /// Forgets `client`'s handshake (the client disconnected).
    pub fn forget(&mut self, client: *const ffi::mosquitto) {
        self.by_client.remove(&(client as usize));
    }

    /// Drops handshakes whose CONNECT never came.
    pub fn prune(&mut self, now_ms: u64) {
        self.by_client
            .retain(|_, h| now_ms.saturating_sub(h.at_ms) <= HANDSHAKE_TO_CONNECT_MS);
    }
}

/// # Safety
/// Called by the broker with a `mosquitto_evt_psk_key` and the userdata
/// given at registration.
pub unsafe extern "C" fn on_psk_key(_event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int {
    guard("psk_key", ffi::MOSQ_ERR_AUTH, || {
        // SAFETY: the broker passes the registered userdata and a valid event.
        let Some((plugin, event)) = (unsafe { Plugin::with_event::<ffi::mosquitto_evt_psk_key>(userdata, event_data) })
        else {
            return ffi::MOSQ_ERR_AUTH;
        };
        // SAFETY: the identity is NULL or NUL-terminated for the callback;
        // `event.client` is the live client of this handshake.
        let (identity, address) = unsafe { (client::bytes(event.identity), client::address(event.client)) };
        let identity = identity.unwrap_or_default();
        let now = now_ms();
        let answer = match plugin.auth.engine().psk_key(identity, address.as_deref()) {
            // SAFETY: `event.key` has room for `max_key_len` characters and a NUL.
            Some(key) => unsafe { write_key(key.expose(), event.key, event.max_key_len) },
            None => ffi::MOSQ_ERR_AUTH,
        };
        let mut handshakes = plugin.psk_handshakes.borrow_mut();
        if answer == ffi::MOSQ_ERR_SUCCESS {
            handshakes.record(event.client, identity, address, now);
        } else {
            handshakes.forget(event.client);
        }
        drop(handshakes);
        crate::log::flush();
        answer
    })
}

/// Copies the hex `key` and a NUL into the broker's buffer.
///
/// # Safety
/// `buffer` is NULL or has room for `max_len` bytes plus a NUL.
unsafe fn write_key(key: &[u8], buffer: *mut std::ffi::c_char, max_len: c_int) -> c_int {
    let fits = usize::try_from(max_len).is_ok_and(|max| key.len() <= max);
    if buffer.is_null() || !fits {
        tracing::error!(
            "the broker's PSK buffer holds {max_len} hex digits, the key has {}: refusing the handshake",
            key.len()
        );
        return ffi::MOSQ_ERR_AUTH;
    }
    // SAFETY: `buffer` has room for `key.len() + 1` bytes (checked above,
    // per this function's contract); the regions do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(key.as_ptr(), buffer.cast::<u8>(), key.len());
        *buffer.add(key.len()) = 0;
    }
    ffi::MOSQ_ERR_SUCCESS
}
