//! `dg_psk_key`: the key a TLS-PSK handshake needs, for brokers whose TLS
//! layer asks the host for it (IDENTITIES.md §2).

use crate::abi::{DG_PSK_KEY_MAX, dg_out_buf, dg_result, dg_str};
use crate::args::{check_room, write};
use crate::guard::{Failure, entry};
use crate::handle::dg_engine;

/// Writes the key of the PSK `identity` into `out_key` as upper-case hex
/// (64 bytes; `cap` at least `DG_PSK_KEY_MAX`, else
/// `DG_ERR_BUFFER_TOO_SMALL` before any work) when an enabled device holds
/// a live PSK with that identity. Give the key to the TLS layer, then pass
/// the identity to `dg_auth_on_register_tls` at CONNECT.
///
/// Returns `DG_OK`, `DG_ERR_NOT_AUTHORIZED` (unknown or revoked identity,
/// disabled device: fail the handshake; the reason is logged) or an
/// argument error. Reads memory only: call it from the handshake.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; `identity` and `peer_ip` are
/// absent or valid for the call; `out_key` is a valid `dg_out_buf`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_psk_key(
    engine: *const dg_engine,
    identity: dg_str,
    peer_ip: dg_str,
    out_key: *mut dg_out_buf,
) -> dg_result {
    entry("dg_psk_key", || {
        // SAFETY: the caller's contract covers the handle and the strings.
        let (gate, identity, address) = unsafe {
            (
                dg_engine::gate(engine)?,
                identity.bytes("identity", crate::abi::DG_STRING_MAX)?,
                peer_ip.text("peer_ip")?,
            )
        };
        let identity = identity.ok_or_else(|| Failure::bad_argument("identity is NULL".to_owned()))?;
        // SAFETY: `out_key` is valid by the contract.
        unsafe { check_room(&[(out_key, DG_PSK_KEY_MAX, "out_key")]) }?;
        match gate.auth.engine().psk_key(identity, address) {
            Some(key) => {
                // SAFETY: check_room found room for DG_PSK_KEY_MAX bytes,
                // and a stored key is never longer.
                unsafe { write(out_key, key.expose()) };
                Ok(dg_result::DG_OK)
            }
            None => Err(Failure::new(
                dg_result::DG_ERR_NOT_AUTHORIZED,
                "unknown or revoked PSK identity, or a disabled device".to_owned(),
            )),
        }
    })
}
