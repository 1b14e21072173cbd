//! Test helpers for calling the C entry points from Rust.

use crate::abi::{dg_out_buf, dg_result, dg_str};
use crate::engine::dg_last_error;

/// A borrowed string argument.
pub(crate) fn s(bytes: &[u8]) -> dg_str {
    dg_str {
        ptr: bytes.as_ptr(),
        len: bytes.len(),
    }
}

/// An absent (NULL) string argument.
pub(crate) const ABSENT: dg_str = dg_str {
    ptr: std::ptr::null(),
    len: 0,
};

/// The calling thread's last error.
pub(crate) fn last_error() -> String {
    let mut text = [0u8; 512];
    let mut out = dg_out_buf {
        ptr: text.as_mut_ptr(),
        cap: text.len(),
        len: 0,
    };
    // SAFETY: `out` describes `text`, which outlives the call.
    assert_eq!(unsafe { dg_last_error(&mut out) }, dg_result::DG_OK);
    String::from_utf8(text[..out.len].to_vec()).unwrap()
}
