//! `auth_on_subscribe`: each filter of a SUBSCRIBE is allowed only if every
//! topic it can match is one the session may read.

use devicegate::clock::now_ms;
use devicegate::decision::AccessDecision;
use devicegate::engine::Hooks;

use crate::abi::{DG_SUBACK_FAILURE, dg_result, dg_topic_qos};
use crate::guard::{Failure, entry};
use crate::handle::dg_engine;

/// The most filters in one call (a SUBSCRIBE rarely has more than a few).
const MAX_FILTERS: usize = 4096;

/// Decides the `n` filters of a SUBSCRIBE (VerneMQ `auth_on_subscribe`,
/// also `_m5`): `out_qos[i]` gets the QoS granted for `topics[i]` (the
/// requested one) or `DG_SUBACK_FAILURE` (0x80) when it is refused.
///
/// The session is named by `mountpoint` and `client_id`; `username` is not
/// used. Every filter must be UTF-8, else nothing is decided and the call
/// returns `DG_ERR_BAD_ARGUMENT`. Returns `DG_OK` with `out_qos` filled
/// (answer VerneMQ `{ok, [{Topic, QoS | not_allowed}]}`), `DG_NEXT` (not a
/// session devicegate accepted; `out_qos` untouched) or an argument error.
///
/// # Safety
/// `engine` comes from `dg_engine_new`; `topics` points to `n` valid
/// entries and `out_qos` to `n` writable bytes (both may be NULL when `n`
/// is 0). Any thread; never blocks.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_auth_on_subscribe(
    engine: *const dg_engine,
    username: crate::abi::dg_str,
    mountpoint: crate::abi::dg_str,
    client_id: crate::abi::dg_str,
    topics: *const dg_topic_qos,
    n: usize,
    out_qos: *mut u8,
) -> dg_result {
    let _ = username;
    entry("dg_auth_on_subscribe", || {
        if n > MAX_FILTERS {
            return Err(Failure::bad_argument(format!("more than {MAX_FILTERS} filters")));
        }
        if n > 0 && (topics.is_null() || out_qos.is_null()) {
            return Err(Failure::bad_argument("topics or out_qos is NULL"));
        }
        // SAFETY: the caller's contract covers the handle and the strings.
        let (gate, mountpoint, client_id) = unsafe {
            (
                dg_engine::gate(engine)?,
                mountpoint.text("mountpoint")?.unwrap_or(""),
                client_id.required_text("client_id")?,
            )
        };
        let requested: &[dg_topic_qos] = if n == 0 {
            &[]
        } else {
            // SAFETY: non-null (checked) and `n` valid entries by the contract.
            unsafe { std::slice::from_raw_parts(topics, n) }
        };
        let filters = requested
            .iter()
            .enumerate()
            // SAFETY: each entry's string is valid for the call by the contract.
            .map(|(i, t)| unsafe { t.topic.required_text(&format!("topics[{i}]")) }.map(|f| (f, t.qos)))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(connection) = gate.connection(mountpoint, client_id) else {
            return Ok(dg_result::DG_NEXT);
        };
        let now = now_ms();
        for (i, (filter, qos)) in filters.into_iter().enumerate() {
            let granted = match gate.auth.authorize_subscribe(connection, filter, now) {
                AccessDecision::Allow => qos.min(2),
                AccessDecision::Deny | AccessDecision::Defer => {
                    tracing::info!(client_id, filter, "devicegate denied a subscription");
                    DG_SUBACK_FAILURE
                }
            };
            // SAFETY: `out_qos` has `n` writable bytes and `i < n`.
            unsafe { out_qos.add(i).write(granted) };
        }
        Ok(dg_result::DG_OK)
    })
}
