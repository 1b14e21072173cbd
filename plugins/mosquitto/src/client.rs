//! Reading the broker's per-client values: the connection handle and C
//! strings, copied out of broker memory.

use std::ffi::{CStr, c_char};

use devicegate::engine::ConnectionId;

use crate::ffi;

/// The engine's handle for a client: the client pointer, which is unique
/// between BASIC_AUTH and DISCONNECT (BROKERS.md §1.8).
pub fn connection(client: *const ffi::mosquitto) -> ConnectionId {
    ConnectionId(client as usize as u64)
}

/// The bytes of a C string, or `None` for NULL.
///
/// # Safety
/// `ptr` is NULL or a NUL-terminated string valid for the returned lifetime.
pub unsafe fn bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per this function's contract.
    Some(unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// The client's MQTT client id, copied.
///
/// # Safety
/// `client` is a live client pointer handed to the current callback.
pub unsafe fn client_id(client: *const ffi::mosquitto) -> Vec<u8> {
    // SAFETY: the broker returns NULL or a string owned by the live client.
    unsafe { bytes(ffi::mosquitto_client_id(client)) }
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// The client's peer address, copied.
///
/// # Safety
/// `client` is a live client pointer handed to the current callback.
pub unsafe fn address(client: *const ffi::mosquitto) -> Option<String> {
    // SAFETY: the broker returns NULL or a string owned by the live client.
    unsafe { bytes(ffi::mosquitto_client_address(client)) }.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// The client's TLS certificate as DER, copied, if it presented one.
///
/// # Safety
/// `client` is a live client pointer handed to the current callback.
pub unsafe fn certificate_der(client: *const ffi::mosquitto) -> Option<Vec<u8>> {
    // SAFETY: the broker returns NULL or a new reference we free below.
    let x509 = unsafe { ffi::mosquitto_client_certificate(client) };
    if x509.is_null() {
        return None;
    }
    // SAFETY: `x509` is a live certificate; a NULL `out` asks for the length.
    let len = unsafe { ffi::i2d_X509(x509, std::ptr::null_mut()) };
    let der = usize::try_from(len).ok().filter(|&n| n > 0).and_then(|n| {
        let mut der = vec![0u8; n];
        let mut cursor = der.as_mut_ptr();
        // SAFETY: `der` has the `n` bytes i2d_X509 said it needs.
        let written = unsafe { ffi::i2d_X509(x509, &mut cursor) };
        (written == len).then_some(der)
    });
    // SAFETY: the reference mosquitto_client_certificate gave us, freed once.
    unsafe { ffi::X509_free(x509) };
    der
}
