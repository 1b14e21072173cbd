//! devicegate behind a C ABI shaped like VerneMQ's hooks, for brokers and
//! hosts that load a shared library: `libdevicegate.so` (and `.a`), with
//! the header `include/devicegate.h` generated from this crate.
//!
//! The rules every function keeps (see each one's doc for its own):
//!
//! - **Strings in** are borrowed [`dg_str`] (pointer and length, no NUL),
//!   valid only during the call; the library copies what it keeps. Client
//!   ids, topics and mountpoints must be UTF-8; passwords and payloads are
//!   bytes.
//! - **Strings out** go into caller-owned [`dg_out_buf`]s; when one is too
//!   small its `len` says how much is needed, nothing happens, and the call
//!   returns `DG_ERR_BUFFER_TOO_SMALL`. No memory crosses allocators.
//! - **Results** are one [`dg_result`], mapped one-to-one onto VerneMQ's
//!   `ok` / `next` / `{error, _}`; after each call `dg_last_error` gives
//!   the calling thread the reason for a failure (never a secret).
//! - **Threads**: an engine may be used from any number of threads at once;
//!   no call waits on the database (the device registry is in memory and a
//!   background thread keeps it fresh), except `dg_engine_new` and
//!   `dg_engine_free`.
//! - **Failures stay inside**: null pointers, bad UTF-8, over-long strings
//!   and freed handles are refused with `DG_ERR_BAD_ARGUMENT`; a panic is
//!   caught and becomes `DG_ERR_INTERNAL`. Nothing aborts the host.
//!
//! Sessions are named as VerneMQ names them, by mountpoint and client id;
//! the library keeps the map to the engine's connections.

mod abi;
mod args;
mod config;
mod effects;
mod engine;
mod guard;
mod handle;
mod presence;
mod psk;
mod publish;
mod register;
mod sessions;
mod subscribe;

pub use abi::{
    DG_ABI_VERSION, DG_CLIENT_ID_MAX, DG_PSK_KEY_MAX, DG_STRING_MAX, DG_SUBACK_FAILURE, DG_TLS_CERTIFICATE,
    DG_TLS_NONE, DG_TLS_PSK, dg_effect_kind, dg_out_buf, dg_result, dg_str, dg_tls_identity, dg_topic_qos,
};
pub use effects::{dg_effect, dg_poll_effect};
pub use engine::{dg_abi_version, dg_engine_free, dg_engine_new, dg_last_error};
pub use handle::dg_engine;
pub use presence::{dg_on_client_gone, dg_on_client_offline, dg_on_register};
pub use psk::dg_psk_key;
pub use publish::dg_auth_on_publish;
pub use register::{dg_auth_on_register, dg_auth_on_register_tls};
pub use subscribe::dg_auth_on_subscribe;

#[cfg(test)]
mod bad_input;
#[cfg(all(test, feature = "panic-injection"))]
mod panic_injection;
#[cfg(test)]
mod test_calls;
#[cfg(test)]
mod tls_calls;
