//! The broker's side of the plugin API, Mosquitto 2.0.11, API version 5,
//! declared by hand from `mosquitto_broker.h` and `mosquitto_plugin.h`.
//! `tests/layout.rs` compiles a C file against the real headers and checks
//! every struct's size and field offsets against these definitions.
//!
//! The functions are resolved when the broker `dlopen`s the plugin: this
//! crate does not link libmosquitto (BROKERS.md §1.2).

#![allow(non_camel_case_types, missing_docs)]

use std::ffi::{c_char, c_int, c_long, c_void};

pub const MOSQ_ERR_SUCCESS: c_int = 0;
pub const MOSQ_ERR_INVAL: c_int = 3;
pub const MOSQ_ERR_AUTH: c_int = 11;
pub const MOSQ_ERR_ACL_DENIED: c_int = 12;
pub const MOSQ_ERR_UNKNOWN: c_int = 13;
pub const MOSQ_ERR_PLUGIN_DEFER: c_int = 17;
pub const MOSQ_ERR_ALREADY_EXISTS: c_int = 31;

pub const MOSQ_EVT_RELOAD: c_int = 1;
pub const MOSQ_EVT_ACL_CHECK: c_int = 2;
pub const MOSQ_EVT_BASIC_AUTH: c_int = 3;
pub const MOSQ_EVT_MESSAGE: c_int = 7;
pub const MOSQ_EVT_PSK_KEY: c_int = 8;
pub const MOSQ_EVT_TICK: c_int = 9;
pub const MOSQ_EVT_DISCONNECT: c_int = 10;

pub const MOSQ_ACL_READ: c_int = 0x01;
pub const MOSQ_ACL_WRITE: c_int = 0x02;
pub const MOSQ_ACL_SUBSCRIBE: c_int = 0x04;
pub const MOSQ_ACL_UNSUBSCRIBE: c_int = 0x08;

pub const MOSQ_LOG_INFO: c_int = 1 << 0;
pub const MOSQ_LOG_NOTICE: c_int = 1 << 1;
pub const MOSQ_LOG_WARNING: c_int = 1 << 2;
pub const MOSQ_LOG_ERR: c_int = 1 << 3;
pub const MOSQ_LOG_DEBUG: c_int = 1 << 4;

/// `struct mosquitto`, opaque.
#[repr(C)]
pub struct mosquitto {
    _private: [u8; 0],
}

/// `mosquitto_plugin_id_t`, opaque in the public header.
#[repr(C)]
pub struct mosquitto_plugin_id_t {
    _private: [u8; 0],
}

/// Whether the broker loaded this instance for one listener
/// (`per_listener_settings true`) rather than for the whole broker.
///
/// No public function says so. Every Mosquitto 2.0 release, 2.0.0 to
/// 2.0.20, defines the identifier as
/// `struct mosquitto_plugin_id_t { struct mosquitto__listener *listener; }`
/// (`src/mosquitto_broker_internal.h`) and sets `listener` to NULL exactly
/// when the plugin serves every listener (`src/plugin.c`, `plugin__load_v5`).
///
/// # Safety
/// `identifier` is NULL or the identifier the broker passed to
/// `mosquitto_plugin_init`, valid for the call.
pub unsafe fn loaded_per_listener(identifier: *const mosquitto_plugin_id_t) -> bool {
    if identifier.is_null() {
        return false;
    }
    // SAFETY: per this function's contract the broker allocated the
    // identifier with at least its first field, a pointer, which it
    // initialised (NULL or a listener); we only compare it with NULL.
    unsafe { !identifier.cast::<*const c_void>().read().is_null() }
}

#[repr(C)]
pub struct mosquitto_opt {
    pub key: *mut c_char,
    pub value: *mut c_char,
}

#[repr(C)]
pub struct mosquitto_evt_basic_auth {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub username: *mut c_char,
    pub password: *mut c_char,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_psk_key {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub hint: *const c_char,
    pub identity: *const c_char,
    pub key: *mut c_char,
    pub max_key_len: c_int,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_acl_check {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub topic: *const c_char,
    pub payload: *const c_void,
    pub properties: *mut c_void,
    pub access: c_int,
    pub payloadlen: u32,
    pub qos: u8,
    pub retain: bool,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_message {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub topic: *mut c_char,
    pub payload: *mut c_void,
    pub properties: *mut c_void,
    pub reason_string: *mut c_char,
    pub payloadlen: u32,
    pub qos: u8,
    pub reason_code: u8,
    pub retain: bool,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_disconnect {
    pub future: *mut c_void,
    pub client: *mut mosquitto,
    pub reason: c_int,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_tick {
    pub future: *mut c_void,
    pub now_ns: c_long,
    pub next_ns: c_long,
    pub now_s: i64,
    pub next_s: i64,
    pub future2: [*mut c_void; 4],
}

#[repr(C)]
pub struct mosquitto_evt_reload {
    pub future: *mut c_void,
    pub options: *mut mosquitto_opt,
    pub option_count: c_int,
    pub future2: [*mut c_void; 4],
}

// SAFETY: OpenSSL's libcrypto, which the broker links; these two have had
// these signatures since OpenSSL 0.9.
unsafe extern "C" {
    /// DER-encodes `x` into `*out` (advancing it), or returns the length
    /// needed when `out` is NULL; negative on error.
    pub fn i2d_X509(x: *mut c_void, out: *mut *mut u8) -> c_int;
    /// Drops one reference to `x`.
    pub fn X509_free(x: *mut c_void);
}

/// `MOSQ_FUNC_generic_callback`.
pub type GenericCallback = unsafe extern "C" fn(event: c_int, event_data: *mut c_void, userdata: *mut c_void) -> c_int;

// SAFETY: these are the broker's exported functions with the signatures of
// mosquitto_broker.h 2.0.11; they are only called on the broker's thread.
unsafe extern "C" {
    pub fn mosquitto_callback_register(
        identifier: *mut mosquitto_plugin_id_t,
        event: c_int,
        cb: GenericCallback,
        event_data: *const c_void,
        userdata: *mut c_void,
    ) -> c_int;
    pub fn mosquitto_callback_unregister(
        identifier: *mut mosquitto_plugin_id_t,
        event: c_int,
        cb: GenericCallback,
        event_data: *const c_void,
    ) -> c_int;
    pub fn mosquitto_log_printf(level: c_int, fmt: *const c_char, ...);
    pub fn mosquitto_client_address(client: *const mosquitto) -> *const c_char;
    pub fn mosquitto_client_id(client: *const mosquitto) -> *const c_char;
    /// The client's certificate (`X509 *`, a new reference the caller
    /// frees with `X509_free`), or NULL.
    pub fn mosquitto_client_certificate(client: *const mosquitto) -> *mut c_void;
    pub fn mosquitto_kick_client_by_clientid(clientid: *const c_char, with_will: bool) -> c_int;
    pub fn mosquitto_broker_publish_copy(
        clientid: *const c_char,
        topic: *const c_char,
        payloadlen: c_int,
        payload: *const c_void,
        qos: c_int,
        retain: bool,
        properties: *mut c_void,
    ) -> c_int;
}
