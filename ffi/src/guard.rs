//! The boundary every entry point runs in: panics are caught and become
//! `DG_ERR_INTERNAL`, and each call leaves its error message (or none) for
//! `dg_last_error` on the calling thread, as `errno` does.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::abi::dg_result;

/// Why a call did not succeed: the code it returns and the message
/// `dg_last_error` gives. Messages never contain secrets.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: dg_result,
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: dg_result, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }

    /// `DG_ERR_BAD_ARGUMENT` with `message`.
    pub fn bad_argument(message: impl Into<String>) -> Self {
        Failure::new(dg_result::DG_ERR_BAD_ARGUMENT, message)
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The message of the last call on this thread that did not succeed, or
/// an empty string if the last call succeeded.
pub(crate) fn last_error() -> String {
    LAST_ERROR.with(|e| e.borrow().clone())
}

/// Runs the entry point `name`: a panic becomes `DG_ERR_INTERNAL`, and the
/// thread's last error is set from the outcome.
pub(crate) fn catch<T>(name: &'static str, body: impl FnOnce() -> Result<T, Failure>) -> Result<T, Failure> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        injected_panic(name);
        body()
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        tracing::error!("devicegate: internal error in {name}: {what}");
        Err(Failure::new(
            dg_result::DG_ERR_INTERNAL,
            format!("internal error in {name}: {what}"),
        ))
    });
    let message = outcome.as_ref().err().map(|f| f.message.as_str()).unwrap_or("");
    // The thread-local is gone only while the thread exits; nothing to record then.
    let _ = LAST_ERROR.try_with(|e| {
        let mut e = e.borrow_mut();
        e.clear();
        e.push_str(message);
    });
    outcome
}

/// Runs an entry point that answers with a code.
pub(crate) fn entry(name: &'static str, body: impl FnOnce() -> Result<dg_result, Failure>) -> dg_result {
    catch(name, body).unwrap_or_else(|f| f.code)
}

/// Test builds only (`--features panic-injection`): the entry point that
/// panics on purpose, to prove no panic crosses `extern "C"`.
#[cfg(feature = "panic-injection")]
pub(crate) static INJECT_PANIC: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

/// Panics if this entry point is the one [`INJECT_PANIC`] names.
#[cfg(feature = "panic-injection")]
pub(crate) fn injected_panic(name: &str) {
    let armed = INJECT_PANIC.lock().map(|g| *g == Some(name)).unwrap_or(false);
    if armed {
        panic!("injected panic");
    }
}

/// Nothing: panics are injected only in test builds.
#[cfg(not(feature = "panic-injection"))]
#[inline(always)]
pub(crate) fn injected_panic(_name: &str) {}
