//! The catch-panic boundary every callback runs in: a panic never crosses
//! into the broker; the callback answers with a refusal instead. It also
//! times the callback when `plugin_opt_stats_interval_secs` is set.

use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs the callback `name`'s `body`; on a panic, logs it and returns
/// `fallback` (always a refusal or an error code, never success).
pub fn guard(name: &'static str, fallback: c_int, body: impl FnOnce() -> c_int) -> c_int {
    let body = || {
        injected_panic(name);
        body()
    };
    match crate::stats::timed(name, || catch_unwind(AssertUnwindSafe(body))) {
        Ok(rc) => rc,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            crate::log::queue(
                crate::ffi::MOSQ_LOG_ERR,
                format!("devicegate: internal error, refusing: {what}"),
            );
            crate::log::flush();
            fallback
        }
    }
}

/// Test builds only (`--features panic-injection`): panics in the callback
/// named by the broker process's `DEVICEGATE_INJECT_PANIC`, to prove no
/// panic crosses into Mosquitto.
#[cfg(feature = "panic-injection")]
fn injected_panic(name: &str) {
    if std::env::var("DEVICEGATE_INJECT_PANIC").is_ok_and(|armed| armed == name) {
        panic!("injected panic in {name}");
    }
}

/// Nothing: panics are injected only in test builds.
#[cfg(not(feature = "panic-injection"))]
#[inline(always)]
fn injected_panic(_name: &str) {}
