//! `auth_on_register`: a client's CONNECT. The login is decided here; the
//! session is bound to its subscriber id, canonical for devices when the
//! broker accepts a rewritten one.

use devicegate::clock::now_ms;
use devicegate::decision::ConnectOutcome;
use devicegate::engine::{ConnectDecision, ConnectRequest, Hooks, TlsIdentity};

use crate::abi::{
    DG_CLIENT_ID_MAX, DG_STRING_MAX, DG_TLS_CERTIFICATE, DG_TLS_NONE, DG_TLS_PSK, dg_out_buf, dg_result, dg_str,
    dg_tls_identity,
};
use crate::args::{check_room, write};
use crate::guard::{Failure, entry};
use crate::handle::dg_engine;
use crate::sessions::Subscriber;

/// Decides a CONNECT (VerneMQ `auth_on_register`, also `_m5`).
///
/// `peer_ip` is the client's address as text (for failed-login limits and
/// logs); `peer_port` is not used. `mountpoint` may be absent (empty).
/// `client_id` must be UTF-8. `username` and `password` are opaque bytes;
/// absent means not sent (VerneMQ 2.x hands the password over as
/// `{encrypted, Bin}`: decrypt it before the call). `clean_session` is not
/// used.
///
/// `out_client_id` may be NULL. If given, its `cap` must be at least
/// `DG_CLIENT_ID_MAX` (else `DG_ERR_BUFFER_TOO_SMALL` before any work),
/// and for a device login devicegate writes the device's canonical
/// subscriber id `{deviceKey}&{productKey}`: answer VerneMQ with
/// `{ok, [{subscriber_id, {Mountpoint, Id}}]}` so that each device has one
/// session whatever client id its SDK sent, and use that id in later calls.
/// `len` is 0 when there is nothing to rewrite (principals).
///
/// Returns `DG_OK` (accepted), `DG_NEXT` (no username: not a client
/// devicegate owns), `DG_ERR_INVALID_CREDENTIALS`, `DG_ERR_NOT_AUTHORIZED`,
/// `DG_ERR_CLIENT_ID_INVALID` or `DG_ERR_UNAVAILABLE` (refused; the reason
/// is logged and in `dg_last_error`), or an argument error.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; every `dg_str` is absent or valid
/// for the call; `out_client_id` is NULL or a valid `dg_out_buf`. Any
/// thread; never blocks.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dg_auth_on_register(
    engine: *const dg_engine,
    peer_ip: dg_str,
    peer_port: u16,
    mountpoint: dg_str,
    client_id: dg_str,
    username: dg_str,
    password: dg_str,
    clean_session: bool,
    out_client_id: *mut dg_out_buf,
) -> dg_result {
    let _ = (peer_port, clean_session);
    entry("dg_auth_on_register", || {
        // SAFETY: the caller's contract is this function's.
        unsafe {
            register(
                engine,
                [peer_ip, mountpoint, client_id, username, password],
                None,
                out_client_id,
            )
        }
    })
}

/// `dg_auth_on_register` for a connection that proved who it is in TLS
/// (ABI version 2): `tls` says what the handshake proved. A TLS-PSK
/// connection logs in as the device holding the PSK identity, a
/// certificate connection as the device holding the certificate, with no
/// username or password; a username, if sent, must name the same device.
/// `tls` NULL, or `kind` `DG_TLS_NONE`, is exactly `dg_auth_on_register`.
///
/// Returns as `dg_auth_on_register`; `DG_ERR_BAD_ARGUMENT` for a
/// `struct_size` smaller than version 2's or an unknown `kind`.
///
/// # Safety
/// As `dg_auth_on_register`; `tls` is NULL or points to a
/// `dg_tls_identity` of at least `struct_size` bytes, valid for the call.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dg_auth_on_register_tls(
    engine: *const dg_engine,
    peer_ip: dg_str,
    peer_port: u16,
    mountpoint: dg_str,
    client_id: dg_str,
    username: dg_str,
    password: dg_str,
    clean_session: bool,
    tls: *const dg_tls_identity,
    out_client_id: *mut dg_out_buf,
) -> dg_result {
    let _ = (peer_port, clean_session);
    entry("dg_auth_on_register_tls", || {
        // SAFETY: the caller's contract is this function's.
        unsafe {
            let tls = tls_identity(tls)?;
            register(
                engine,
                [peer_ip, mountpoint, client_id, username, password],
                tls,
                out_client_id,
            )
        }
    })
}

/// The TLS part of a `dg_auth_on_register_tls` call.
///
/// # Safety
/// `tls` is NULL or points to a `dg_tls_identity` of at least
/// `struct_size` bytes whose strings are valid for `'a`.
unsafe fn tls_identity<'a>(tls: *const dg_tls_identity) -> Result<Option<TlsIdentity<'a>>, Failure> {
    // SAFETY: per this function's contract; `struct_size` is read first
    // and the rest only when the caller's struct is large enough.
    let Some(size) = (unsafe { tls.cast::<usize>().as_ref() }) else {
        return Ok(None);
    };
    if *size < std::mem::size_of::<dg_tls_identity>() {
        return Err(Failure::bad_argument(format!(
            "tls.struct_size is {size}, smaller than ABI version 2's dg_tls_identity ({} bytes)",
            std::mem::size_of::<dg_tls_identity>()
        )));
    }
    // SAFETY: non-null and at least as large as the struct (checked above).
    let tls = unsafe { &*tls };
    match tls.kind {
        DG_TLS_NONE => Ok(None),
        // SAFETY: the caller guarantees the identity string.
        DG_TLS_PSK => match unsafe { tls.psk_identity.bytes("tls.psk_identity", DG_STRING_MAX) }? {
            Some(identity) => Ok(Some(TlsIdentity::Psk(identity))),
            None => Err(Failure::bad_argument(
                "tls.psk_identity is NULL with DG_TLS_PSK".to_owned(),
            )),
        },
        // SAFETY: the caller guarantees the certificate bytes.
        DG_TLS_CERTIFICATE => match unsafe { tls.certificate_der.bytes("tls.certificate_der", DG_STRING_MAX) }? {
            Some(der) => Ok(Some(TlsIdentity::Certificate(der))),
            None => Err(Failure::bad_argument(
                "tls.certificate_der is NULL with DG_TLS_CERTIFICATE".to_owned(),
            )),
        },
        other => Err(Failure::bad_argument(format!(
            "tls.kind {other} is unknown: DG_TLS_NONE, DG_TLS_PSK or DG_TLS_CERTIFICATE"
        ))),
    }
}

/// The login both entry points share.
///
/// # Safety
/// As `dg_auth_on_register`.
unsafe fn register(
    engine: *const dg_engine,
    [peer_ip, mountpoint, client_id, username, password]: [dg_str; 5],
    tls: Option<TlsIdentity<'_>>,
    out_client_id: *mut dg_out_buf,
) -> Result<dg_result, Failure> {
    {
        // SAFETY: the caller's contract covers the handle and every string.
        let (gate, address, mountpoint, client_id, username, password) = unsafe {
            (
                dg_engine::gate(engine)?,
                peer_ip.text("peer_ip")?,
                mountpoint.text("mountpoint")?.unwrap_or(""),
                client_id.text("client_id")?.unwrap_or(""),
                username.bytes("username", u16::MAX.into())?,
                password.bytes("password", u16::MAX.into())?,
            )
        };
        if !out_client_id.is_null() {
            // SAFETY: a non-null `out_client_id` is valid by the contract.
            unsafe { check_room(&[(out_client_id, DG_CLIENT_ID_MAX, "out_client_id")]) }?;
        }
        let now = now_ms();
        let connection = gate.sessions.new_connection();
        let mut request = ConnectRequest::new(client_id.as_bytes(), username, password, address);
        if let Some(tls) = tls {
            request = request.with_tls(tls);
        }
        match gate.auth.handle_connect(connection, &request, now) {
            ConnectDecision::Defer => Ok(dg_result::DG_NEXT),
            ConnectDecision::Refuse(reason) => {
                tracing::info!(client_id, address, "devicegate refused a login: {reason}");
                let code = match reason.outcome() {
                    ConnectOutcome::BadClientId => dg_result::DG_ERR_CLIENT_ID_INVALID,
                    ConnectOutcome::BadCredentials => dg_result::DG_ERR_INVALID_CREDENTIALS,
                    ConnectOutcome::Unavailable => dg_result::DG_ERR_UNAVAILABLE,
                    ConnectOutcome::UseAnotherServer => dg_result::DG_ERR_USE_ANOTHER_SERVER,
                    ConnectOutcome::NotAuthorized | ConnectOutcome::Ok => dg_result::DG_ERR_NOT_AUTHORIZED,
                };
                // A device assigned elsewhere learns where: the last error
                // is the server's URL alone.
                match gate.auth.server_reference(&request) {
                    Some(url) if code == dg_result::DG_ERR_USE_ANOTHER_SERVER => Err(Failure::new(code, url)),
                    _ => Err(Failure::new(code, format!("login refused: {reason}"))),
                }
            }
            ConnectDecision::Accept => {
                let canonical = if out_client_id.is_null() {
                    None
                } else {
                    gate.auth.engine().device_of(connection)
                };
                if !out_client_id.is_null() {
                    let rewrite = canonical.as_deref().unwrap_or("").as_bytes();
                    // SAFETY: check_room found room for DG_CLIENT_ID_MAX bytes,
                    // and a device key is never longer.
                    unsafe { write(out_client_id, rewrite) };
                }
                let subscriber = Subscriber {
                    mountpoint: mountpoint.into(),
                    client_id: canonical.unwrap_or_else(|| client_id.into()),
                };
                if let Some(replaced) = gate.sessions.bind(subscriber, connection, now) {
                    gate.auth.handle_disconnect(replaced, now);
                }
                tracing::debug!(client_id, address, "devicegate accepted a login");
                Ok(dg_result::DG_OK)
            }
        }
    }
}
