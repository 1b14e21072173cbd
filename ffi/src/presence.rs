//! The broker's session events: registered, offline, gone. They keep the
//! engine's online state (and so the database's) true to the broker's.

use devicegate::clock::now_ms;

use crate::abi::{dg_result, dg_str};
use crate::guard::entry;
use crate::handle::dg_engine;

/// The broker registered the session (VerneMQ `on_register`, after a
/// successful `auth_on_register`). A session devicegate accepted but the
/// broker never registers within 30 s is counted as gone, so a failed
/// registration cannot leave a device online.
///
/// `peer_ip`, `peer_port` and `username` are not used. Returns `DG_OK`,
/// `DG_NEXT` (not a session devicegate accepted) or an argument error.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; every `dg_str` is absent or valid
/// for the call. Any thread; never blocks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_on_register(
    engine: *const dg_engine,
    peer_ip: dg_str,
    peer_port: u16,
    mountpoint: dg_str,
    client_id: dg_str,
    username: dg_str,
) -> dg_result {
    let _ = (peer_ip, peer_port, username);
    entry("dg_on_register", || {
        // SAFETY: the caller's contract covers the handle and the strings.
        let (gate, mountpoint, client_id) = unsafe {
            (
                dg_engine::gate(engine)?,
                mountpoint.text("mountpoint")?.unwrap_or(""),
                client_id.required_text("client_id")?,
            )
        };
        Ok(if gate.sessions.confirm(mountpoint, client_id) {
            dg_result::DG_OK
        } else {
            dg_result::DG_NEXT
        })
    })
}

/// A session with a persistent queue went offline (VerneMQ
/// `on_client_offline`): the device goes offline.
///
/// Returns `DG_OK`, `DG_NEXT` (not a session devicegate knows) or an
/// argument error.
///
/// # Safety
/// As for `dg_on_register`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_on_client_offline(
    engine: *const dg_engine,
    mountpoint: dg_str,
    client_id: dg_str,
) -> dg_result {
    // SAFETY: the caller's contract is passed on unchanged.
    unsafe { session_ended("dg_on_client_offline", engine, mountpoint, client_id) }
}

/// A clean session ended (VerneMQ `on_client_gone`): the device goes
/// offline.
///
/// Returns `DG_OK`, `DG_NEXT` (not a session devicegate knows) or an
/// argument error.
///
/// # Safety
/// As for `dg_on_register`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_on_client_gone(
    engine: *const dg_engine,
    mountpoint: dg_str,
    client_id: dg_str,
) -> dg_result {
    // SAFETY: the caller's contract is passed on unchanged.
    unsafe { session_ended("dg_on_client_gone", engine, mountpoint, client_id) }
}

/// # Safety
/// As for `dg_on_register`.
unsafe fn session_ended(
    name: &'static str,
    engine: *const dg_engine,
    mountpoint: dg_str,
    client_id: dg_str,
) -> dg_result {
    entry(name, || {
        // SAFETY: the caller's contract covers the handle and the strings.
        let (gate, mountpoint, client_id) = unsafe {
            (
                dg_engine::gate(engine)?,
                mountpoint.text("mountpoint")?.unwrap_or(""),
                client_id.required_text("client_id")?,
            )
        };
        Ok(if gate.client_left(mountpoint, client_id, now_ms()) {
            dg_result::DG_OK
        } else {
            dg_result::DG_NEXT
        })
    })
}
