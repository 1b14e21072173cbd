//! The C types of the ABI: one result enum, borrowed strings in,
//! caller-owned buffers out. No memory crosses allocators.

/// What every call answers. The codes map one-to-one onto VerneMQ's hook
/// results: `DG_OK` is `ok`, `DG_NEXT` is `next`, the negative codes are
/// `{error, _}` (see each code for the MQTT reason a broker should send).
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum dg_result {
    /// `ok`: accepted or allowed.
    DG_OK = 0,
    /// `next`: not a client devicegate owns; let the next plugin decide.
    /// From `dg_poll_effect`: no effect is waiting.
    DG_NEXT = 1,
    /// `ok`, but the engine consumed the message (an activation reply or a
    /// gateway request it answers itself): do not route it to subscribers.
    DG_CONSUMED = 2,
    /// `{error, invalid_credentials}`: CONNACK 4 (MQTT 5: 0x86). Malformed
    /// username, unknown device, bad signature or stale timestamp.
    DG_ERR_INVALID_CREDENTIALS = -1,
    /// `{error, not_allowed}`: CONNACK 5 / 0x87, PUBACK 0x87, SUBACK 0x80 / 0x87.
    DG_ERR_NOT_AUTHORIZED = -2,
    /// `{error, client_identifier_not_valid}`: CONNACK 2 (MQTT 5: 0x85).
    DG_ERR_CLIENT_ID_INVALID = -3,
    /// An output buffer is too small; its `len` holds the size needed.
    /// Nothing happened: retry with a larger buffer.
    DG_ERR_BUFFER_TOO_SMALL = -4,
    /// `{error, server_unavailable}`: CONNACK 3 (MQTT 5: 0x88). The device
    /// registry is not loaded from the database yet.
    DG_ERR_UNAVAILABLE = -5,
    /// `{error, use_another_server}`: MQTT 5 CONNACK 0x9C (MQTT 3.1.1: 5).
    /// The device is assigned to another broker; `dg_last_error` names its
    /// URL, to send as the Server Reference.
    DG_ERR_USE_ANOTHER_SERVER = -6,
    /// A null pointer, invalid UTF-8, an over-long string, a freed or
    /// foreign engine handle, or a configuration that does not parse.
    /// `dg_last_error` says which.
    DG_ERR_BAD_ARGUMENT = -100,
    /// devicegate failed internally (a caught panic); the host is unharmed.
    DG_ERR_INTERNAL = -101,
}

/// A borrowed string or byte string: `len` bytes at `ptr`, not
/// NUL-terminated. Valid only for the duration of the call; the library
/// copies what it keeps. `ptr == NULL` means absent (Erlang `undefined`).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct dg_str {
    /// The first byte, or NULL for an absent value.
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
}

/// A buffer the caller owns, for the library to write into: `cap` bytes at
/// `ptr`. The library sets `len` to the size of the answer; when that is
/// more than `cap`, nothing is written and the call returns
/// `DG_ERR_BUFFER_TOO_SMALL`. Answers are not NUL-terminated.
#[repr(C)]
#[derive(Debug)]
#[allow(non_camel_case_types)]
pub struct dg_out_buf {
    /// Where to write; may be NULL when `cap` is 0.
    pub ptr: *mut u8,
    /// How many bytes `ptr` can hold.
    pub cap: usize,
    /// Set by the library: the size of the answer.
    pub len: usize,
}

/// One filter of a SUBSCRIBE with the QoS the client asked for.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct dg_topic_qos {
    /// The filter, words joined with `/`.
    pub topic: dg_str,
    /// The requested QoS, 0 to 2.
    pub qos: u8,
}

/// What a polled effect asks the broker to do.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum dg_effect_kind {
    /// Deliver `payload` on `topic` to the one session named, without a
    /// subscription and never to anyone else: it may carry a device secret.
    DG_EFFECT_PUBLISH = 1,
    /// Disconnect the session named (device disabled, deleted, re-keyed or
    /// its session limit reached).
    DG_EFFECT_KICK = 2,
}

/// The `qos` written for a refused filter by `dg_auth_on_subscribe`.
pub const DG_SUBACK_FAILURE: u8 = 0x80;

/// The most bytes a canonical subscriber id can take: what
/// `dg_auth_on_register` needs in `out_client_id`.
pub const DG_CLIENT_ID_MAX: usize = 129;

/// The longest client id, topic, username or mountpoint accepted (bytes).
pub const DG_STRING_MAX: usize = 65_535;

/// The version of this ABI, returned by `dg_abi_version`; bumped on any
/// incompatible change or addition. 2: TLS identities
/// (`dg_auth_on_register_tls`, `dg_psk_key`); every version-1 call is kept.
pub const DG_ABI_VERSION: u32 = 2;

/// `dg_tls_identity.kind`: the connection proved nothing in TLS.
pub const DG_TLS_NONE: u32 = 0;
/// `dg_tls_identity.kind`: a TLS-PSK handshake with `psk_identity`.
pub const DG_TLS_PSK: u32 = 1;
/// `dg_tls_identity.kind`: a client certificate (`certificate_der`) whose
/// chain the host's TLS layer verified.
pub const DG_TLS_CERTIFICATE: u32 = 2;

/// The most bytes `dg_psk_key` writes: a 32-byte key as hex.
pub const DG_PSK_KEY_MAX: usize = 64;

/// What a client proved in its TLS handshake, for
/// `dg_auth_on_register_tls`. Versioned by size: set `struct_size` to
/// `sizeof(dg_tls_identity)`; fields added later go at the end, and a
/// library reads only those the caller's size covers.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct dg_tls_identity {
    /// `sizeof(dg_tls_identity)` as the caller compiled it.
    pub struct_size: usize,
    /// `DG_TLS_NONE`, `DG_TLS_PSK` or `DG_TLS_CERTIFICATE`.
    pub kind: u32,
    /// With `DG_TLS_PSK`: the PSK identity the handshake used (the key
    /// came from `dg_psk_key`).
    pub psk_identity: dg_str,
    /// With `DG_TLS_CERTIFICATE`: the client's certificate, DER. The
    /// device is found by its SHA-256 fingerprint; a valid chain alone
    /// logs nobody in.
    pub certificate_der: dg_str,
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_canonical_id_fits_dg_client_id_max() {
        let longest = 2 * devicegate::credentials::keys::MAX_KEY_LEN + "&".len();
        assert_eq!(super::DG_CLIENT_ID_MAX, longest);
    }
}
