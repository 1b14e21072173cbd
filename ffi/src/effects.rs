//! Effects: what the engine needs the broker to do (push an activation
//! secret, answer a gateway, throw a disabled device off), taken one at a
//! time on the broker's own loop.

use devicegate::clock::now_ms;
use devicegate::engine::Effect;

use crate::abi::{dg_effect_kind, dg_out_buf, dg_result};
use crate::args::{check_room, write};
use crate::guard::{Failure, entry};
use crate::handle::dg_engine;

/// One effect, written by `dg_poll_effect` into buffers the caller owns.
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct dg_effect {
    /// Written: a `dg_effect_kind` value.
    pub kind: i32,
    /// Written: the QoS to publish with (publish only).
    pub qos: u8,
    /// The session's mountpoint.
    pub mountpoint: dg_out_buf,
    /// The session's client id (the canonical one if it was rewritten).
    pub client_id: dg_out_buf,
    /// The topic to publish on (`len` 0 for a kick).
    pub topic: dg_out_buf,
    /// The payload to publish (`len` 0 for a kick). May hold a device
    /// secret: deliver it to this session only, never log it.
    pub payload: dg_out_buf,
}

/// Takes the oldest pending effect into `out`. Also advances the engine's
/// timers (activation retries, session limits, idle devices), so call it
/// regularly, e.g. every 100 ms and after each hook call.
///
/// Returns `DG_OK` (an effect was written and taken), `DG_NEXT` (none is
/// waiting), `DG_ERR_BUFFER_TOO_SMALL` (every buffer's `len` says what it
/// needs; the effect stays queued) or an argument error.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; `out` points to a `dg_effect` whose
/// four buffers are valid. Any thread; never blocks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_poll_effect(engine: *const dg_engine, out: *mut dg_effect) -> dg_result {
    entry("dg_poll_effect", || {
        // SAFETY: the caller's contract covers the handle.
        let gate = unsafe { dg_engine::gate(engine) }?;
        if out.is_null() {
            return Err(Failure::bad_argument("out is NULL"));
        }
        gate.advance(now_ms());
        let written = gate.with_ready_effect(|ready| {
            let (kind, qos, topic, payload) = match &ready.effect {
                Effect::Publish {
                    topic, payload, qos, ..
                } => (
                    dg_effect_kind::DG_EFFECT_PUBLISH,
                    *qos,
                    topic.as_bytes(),
                    payload.as_slice(),
                ),
                Effect::Kick { .. } => (dg_effect_kind::DG_EFFECT_KICK, 0, &[][..], &[][..]),
            };
            let mountpoint = ready.subscriber.mountpoint.as_bytes();
            let client_id = ready.subscriber.client_id.as_bytes();
            // SAFETY: `out` is valid by the contract; its fields are reached
            // through raw pointers, so no reference to a C-written `kind` is made.
            let buffers = unsafe {
                [
                    (&raw mut (*out).mountpoint, mountpoint),
                    (&raw mut (*out).client_id, client_id),
                    (&raw mut (*out).topic, topic),
                    (&raw mut (*out).payload, payload),
                ]
            };
            let names = ["out->mountpoint", "out->client_id", "out->topic", "out->payload"];
            let needs: Vec<_> = buffers
                .iter()
                .zip(names)
                .map(|((buffer, bytes), name)| (*buffer, bytes.len(), name))
                .collect();
            // SAFETY: the four buffers are valid by the contract.
            if let Err(failure) = unsafe { check_room(&needs) } {
                return (false, Err(failure));
            }
            for (buffer, bytes) in buffers {
                // SAFETY: check_room found room for each answer.
                unsafe { write(buffer, bytes) };
            }
            // SAFETY: `out` is valid by the contract.
            unsafe {
                (&raw mut (*out).kind).write(kind as i32);
                (&raw mut (*out).qos).write(qos);
            }
            (true, Ok(()))
        });
        match written {
            None => Ok(dg_result::DG_NEXT),
            Some(outcome) => outcome.map(|()| dg_result::DG_OK),
        }
    })
}
