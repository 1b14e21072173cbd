//! Reading borrowed arguments and writing caller-owned buffers, with the
//! checks every entry point makes: null pointers, UTF-8, length bounds.

use crate::abi::{DG_STRING_MAX, dg_out_buf, dg_result, dg_str};
use crate::guard::Failure;

impl dg_str {
    /// The bytes, or `None` when absent; refused above `max` bytes.
    ///
    /// # Safety
    /// `ptr` must be null or point to `len` bytes readable for `'a`.
    pub(crate) unsafe fn bytes<'a>(self, what: &str, max: usize) -> Result<Option<&'a [u8]>, Failure> {
        if self.ptr.is_null() {
            return Ok(None);
        }
        if self.len > max {
            return Err(Failure::bad_argument(format!("{what} is longer than {max} bytes")));
        }
        // SAFETY: the caller guarantees `len` readable bytes at the non-null `ptr`.
        Ok(Some(unsafe { std::slice::from_raw_parts(self.ptr, self.len) }))
    }

    /// The text, or `None` when absent; refused if not UTF-8 or longer than
    /// [`DG_STRING_MAX`].
    ///
    /// # Safety
    /// As for [`dg_str::bytes`].
    pub(crate) unsafe fn text<'a>(self, what: &str) -> Result<Option<&'a str>, Failure> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        match unsafe { self.bytes(what, DG_STRING_MAX) }? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(Some)
                .map_err(|_| Failure::bad_argument(format!("{what} is not UTF-8"))),
        }
    }

    /// The text; refused when absent.
    ///
    /// # Safety
    /// As for [`dg_str::bytes`].
    pub(crate) unsafe fn required_text<'a>(self, what: &str) -> Result<&'a str, Failure> {
        // SAFETY: the caller's guarantee is passed on unchanged.
        unsafe { self.text(what) }?.ok_or_else(|| Failure::bad_argument(format!("{what} is NULL")))
    }
}

/// The size each answer needs, written to every buffer's `len`; fails with
/// `DG_ERR_BUFFER_TOO_SMALL` (writing nothing) unless all of them fit.
///
/// # Safety
/// Each pointer must be null or point to a valid `dg_out_buf` whose `ptr`
/// has `cap` writable bytes.
pub(crate) unsafe fn check_room(outputs: &[(*mut dg_out_buf, usize, &str)]) -> Result<(), Failure> {
    let mut short = Vec::new();
    for &(out, needed, what) in outputs {
        // SAFETY: the caller guarantees a valid buffer descriptor or null.
        let out = unsafe { out.as_mut() }.ok_or_else(|| Failure::bad_argument(format!("{what} is NULL")))?;
        if out.ptr.is_null() && out.cap > 0 {
            return Err(Failure::bad_argument(format!(
                "{what}.ptr is NULL with cap {}",
                out.cap
            )));
        }
        out.len = needed;
        if out.cap < needed {
            short.push(format!("{what} needs {needed} bytes"));
        }
    }
    if short.is_empty() {
        Ok(())
    } else {
        Err(Failure::new(dg_result::DG_ERR_BUFFER_TOO_SMALL, short.join(", ")))
    }
}

/// Copies `answer` into `out`, which [`check_room`] found large enough.
///
/// # Safety
/// `out` must have passed [`check_room`] for `answer.len()` bytes.
pub(crate) unsafe fn write(out: *mut dg_out_buf, answer: &[u8]) {
    // SAFETY: check_room proved `out` valid and `cap >= answer.len()`.
    let out = unsafe { &mut *out };
    out.len = answer.len();
    if !answer.is_empty() {
        // SAFETY: `ptr` has at least `cap >= answer.len()` writable bytes,
        // and a caller's buffer cannot overlap the library's own string.
        unsafe { std::ptr::copy_nonoverlapping(answer.as_ptr(), out.ptr, answer.len()) };
    }
}
