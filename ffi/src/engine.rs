//! Creating and freeing an engine, the ABI version, and the last error.

use devicegate::sync::Authenticator;

use crate::abi::{DG_ABI_VERSION, dg_out_buf, dg_result, dg_str};
use crate::args::{check_room, write};
use crate::config::Config;
use crate::guard::{Failure, catch, entry, last_error};
use crate::handle::dg_engine;

/// The version of the ABI this library implements (`DG_ABI_VERSION`).
/// Any thread.
#[unsafe(no_mangle)]
pub extern "C" fn dg_abi_version() -> u32 {
    DG_ABI_VERSION
}

/// Creates an engine from a JSON configuration, e.g.
/// `{"database_url": "sqlite:///var/lib/vernemq/devicegate.db"}`; optional
/// keys: `log_level` (error, warn, info, debug; to stderr),
/// `failed_logins_per_device`, `failed_logins_per_address`,
/// `failed_logins_device_ceiling`,
/// `failure_window_secs`, `refresh_interval_ms`, `reconcile_interval_secs`,
/// `spool_dir`.
///
/// Returns at once: the database is opened by a background thread, and
/// logins answer `DG_ERR_UNAVAILABLE` until the device registry is loaded.
/// Returns NULL if the configuration does not parse or names no supported
/// database (`dg_last_error` says why).
///
/// The caller owns the engine and frees it with `dg_engine_free`.
///
/// # Safety
/// `config_json` is valid for the call. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_engine_new(config_json: dg_str) -> *mut dg_engine {
    catch("dg_engine_new", || {
        // SAFETY: the caller guarantees the string.
        let json = unsafe { config_json.required_text("config_json") }?;
        let config = Config::parse(json).map_err(Failure::bad_argument)?;
        if let Ok(level) = config.log_level() {
            // Another subscriber may already be installed by the host: keep it.
            let _ = tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(std::io::stderr)
                .try_init();
        }
        let auth = Authenticator::start(config.engine(), config.sync(), &config.database_url)
            .map_err(|e| Failure::bad_argument(e.to_string()))?;
        Ok(dg_engine::create(auth))
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Stops an engine: writes the state changes still queued (waiting up to
/// 5 s for the database), stops its background thread and releases it.
/// Blocks meanwhile: call it where blocking is allowed (VerneMQ: plugin
/// stop). A NULL `engine` is ignored (`DG_OK`); freeing twice is refused
/// with `DG_ERR_BAD_ARGUMENT`.
///
/// # Safety
/// `engine` is NULL or comes from `dg_engine_new`; no other call on it may
/// be running or start after this one (a later call is refused, not
/// undefined, as the handle's few bytes are never reused).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_engine_free(engine: *mut dg_engine) -> dg_result {
    entry("dg_engine_free", || {
        if engine.is_null() {
            return Ok(dg_result::DG_OK);
        }
        // SAFETY: the caller's contract.
        unsafe { dg_engine::destroy(engine) }?;
        Ok(dg_result::DG_OK)
    })
}

/// Writes why the calling thread's previous call failed into `message`
/// (UTF-8, no NUL); `len` 0 if it succeeded. Does not itself change the
/// last error, so it can be retried with a larger buffer.
///
/// Returns `DG_OK`, `DG_ERR_BUFFER_TOO_SMALL` or `DG_ERR_BAD_ARGUMENT`
/// (`message` is NULL).
///
/// # Safety
/// `message` is NULL or a valid `dg_out_buf`. Any thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dg_last_error(message: *mut dg_out_buf) -> dg_result {
    let copy = std::panic::AssertUnwindSafe(|| {
        crate::guard::injected_panic("dg_last_error");
        let text = last_error();
        // SAFETY: the caller's contract.
        match unsafe { check_room(&[(message, text.len(), "message")]) } {
            Ok(()) => {
                // SAFETY: check_room found room.
                unsafe { write(message, text.as_bytes()) };
                dg_result::DG_OK
            }
            Err(failure) => failure.code,
        }
    });
    std::panic::catch_unwind(copy).unwrap_or(dg_result::DG_ERR_INTERNAL)
}
