//! `auth_on_publish`: may this session publish here? Activation replies and
//! gateway requests are consumed by the engine, which answers them itself.

use devicegate::clock::now_ms;
use devicegate::decision::AccessDecision;
use devicegate::engine::{Hooks, MessageDecision};

use crate::abi::{dg_result, dg_str};
use crate::guard::{Failure, entry};
use crate::handle::dg_engine;

/// Decides a PUBLISH (VerneMQ `auth_on_publish`, also `_m5`), wills and
/// retained messages included.
///
/// The session is named by `mountpoint` and `client_id` (the canonical id
/// if `dg_auth_on_register` wrote one); `username` and `qos` are not used.
/// `topic` (words joined with `/`) must be UTF-8; `payload` is opaque.
///
/// Returns `DG_OK` (allowed), `DG_CONSUMED` (allowed, but the engine
/// handled the message: answer VerneMQ with `ok` plus a modifier that keeps
/// it from subscribers; the Erlang shim moves it to a mountpoint nobody
/// uses), `DG_ERR_NOT_AUTHORIZED` (denied: MQTT 5 PUBACK 0x87; VerneMQ
/// disconnects a 3.1.1 client), `DG_NEXT` (not a session devicegate
/// accepted) or an argument error.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; every `dg_str` is absent or valid
/// for the call. Any thread; never blocks.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn dg_auth_on_publish(
    engine: *const dg_engine,
    username: dg_str,
    mountpoint: dg_str,
    client_id: dg_str,
    qos: u8,
    topic: dg_str,
    payload: dg_str,
    retain: bool,
) -> dg_result {
    let _ = (username, qos);
    entry("dg_auth_on_publish", || {
        // SAFETY: the caller's contract covers the handle and every string.
        let (gate, mountpoint, client_id, topic, payload) = unsafe {
            (
                dg_engine::gate(engine)?,
                mountpoint.text("mountpoint")?.unwrap_or(""),
                client_id.required_text("client_id")?,
                topic.required_text("topic")?,
                payload.bytes("payload", usize::MAX)?.unwrap_or(&[]),
            )
        };
        let Some(connection) = gate.connection(mountpoint, client_id) else {
            return Ok(dg_result::DG_NEXT);
        };
        let now = now_ms();
        match gate.auth.authorize_publish(connection, topic, retain, now) {
            AccessDecision::Defer => Ok(dg_result::DG_NEXT),
            AccessDecision::Deny => {
                tracing::info!(client_id, topic, "devicegate denied a publish");
                Err(Failure::new(
                    dg_result::DG_ERR_NOT_AUTHORIZED,
                    format!("publish to `{topic}` not allowed"),
                ))
            }
            AccessDecision::Allow => match gate.auth.handle_message(connection, topic, payload, now) {
                MessageDecision::Forward => Ok(dg_result::DG_OK),
                MessageDecision::Consume => Ok(dg_result::DG_CONSUMED),
            },
        }
    })
}
