//! devicegate as a Mosquitto 2.0 plugin (plugin API v5).
//!
//! Add to `mosquitto.conf` (see `examples/mosquitto.conf`):
//!
//! ```text
//! per_listener_settings false
//! plugin /usr/lib/devicegate/libdevicegate_mosquitto.so
//! plugin_opt_database_url sqlite:///var/lib/devicegate/devicegate.db
//! ```
//!
//! This file wires things up like dynamic-security's `plugin.c`: version,
//! options, callback registration, cleanup. Each event has its own module
//! that converts, calls the engine, and maps the answer back. The key
//! decision: **no callback waits on the database**; the engine answers from
//! memory and a background thread (joined in cleanup) talks to the database.

pub mod ffi;
pub use devicegate_mosquitto_options as options;

mod acl;
mod basic_auth;
mod client;
mod disconnect;
mod effects;
mod log;
mod memory;
mod message;
mod metrics;
mod panic;
mod psk;
mod stats;
mod tick;

use std::cell::RefCell;
use std::ffi::{CStr, c_int, c_void};

use devicegate::clock::now_ms;
use devicegate::engine::{ConnectionId, Hooks};
use devicegate::store::redact_url;
use devicegate::sync::Authenticator;

use options::Options;
use panic::guard;

/// The events devicegate handles, with their callbacks.
const CALLBACKS: [(c_int, ffi::GenericCallback); 7] = [
    (ffi::MOSQ_EVT_PSK_KEY, psk::on_psk_key),
    (ffi::MOSQ_EVT_BASIC_AUTH, basic_auth::on_basic_auth),
    (ffi::MOSQ_EVT_ACL_CHECK, acl::on_acl_check),
    (ffi::MOSQ_EVT_MESSAGE, message::on_message),
    (ffi::MOSQ_EVT_DISCONNECT, disconnect::on_disconnect),
    (ffi::MOSQ_EVT_TICK, tick::on_tick),
    (ffi::MOSQ_EVT_RELOAD, tick::on_reload),
];

/// Disconnects handed to the engine per TICK (about 2 µs each).
const MAX_DISCONNECTS_PER_TICK: usize = 256;

/// One plugin instance: the engine and what waits for the broker's thread.
/// Lives in a `Box` from init to cleanup; callbacks get it as userdata.
pub struct Plugin {
    identifier: *mut ffi::mosquitto_plugin_id_t,
    auth: std::sync::Arc<Authenticator>,
    /// `plugin_opt_metrics_listen`, if set.
    metrics: Option<metrics::MetricsEndpoint>,
    /// Kicks waiting for a moment when they are safe (see `effects.rs`).
    kicks: RefCell<Vec<(ConnectionId, String)>>,
    /// Connections closed since the last TICK (see `disconnect.rs`).
    disconnects: RefCell<Vec<ConnectionId>>,
    /// PSK handshakes waiting for their CONNECT (see `psk.rs`).
    psk_handshakes: RefCell<psk::PskHandshakes>,
    /// Events this instance registered (a second instance registers none).
    registered: Vec<c_int>,
}

impl Plugin {
    /// The plugin and the event behind a callback's pointers.
    ///
    /// # Safety
    /// `userdata` is NULL or the pointer registered by `mosquitto_plugin_init`
    /// (alive until cleanup); `event` is NULL or points to a `T` valid for
    /// the callback.
    unsafe fn with_event<'a, T>(userdata: *mut c_void, event: *mut c_void) -> Option<(&'a Plugin, &'a T)> {
        // SAFETY: per this function's contract.
        unsafe { Some((userdata.cast::<Plugin>().as_ref()?, event.cast::<T>().as_ref()?)) }
    }

    /// After an event: carry out publishes (kicks wait), write the log.
    fn after_event(&self) {
        self.drain_effects(effects::Kicks::Wait);
        log::flush();
    }

    fn queue_disconnect(&self, connection: ConnectionId) {
        self.disconnects.borrow_mut().push(connection);
    }

    /// Tells the engine about connections closed since the last TICK, at
    /// most [`MAX_DISCONNECTS_PER_TICK`] at a time so that a mass disconnect
    /// does not hold the broker's thread; the rest wait for the next TICK.
    fn finish_disconnects(&self) {
        let closed: Vec<ConnectionId> = {
            let mut pending = self.disconnects.borrow_mut();
            let n = pending.len().min(MAX_DISCONNECTS_PER_TICK);
            pending.drain(..n).collect()
        };
        for connection in closed {
            self.auth.handle_disconnect(connection, now_ms());
        }
    }

    /// Every queued disconnect (cleanup).
    fn finish_all_disconnects(&self) {
        while !self.disconnects.borrow().is_empty() {
            self.finish_disconnects();
        }
    }

    /// A client pointer is reused by a new CONNECT: end its old connection first.
    fn finish_disconnect(&self, connection: ConnectionId) {
        let pending = {
            let mut list = self.disconnects.borrow_mut();
            let before = list.len();
            list.retain(|c| *c != connection);
            before != list.len()
        };
        if pending {
            self.auth.handle_disconnect(connection, now_ms());
        }
    }
}

/// Mosquitto asks which plugin API version this is: 5.
#[unsafe(no_mangle)]
pub extern "C" fn mosquitto_plugin_version(_count: c_int, _versions: *const c_int) -> c_int {
    5
}

/// Reads the options, starts the engine (the database is opened in the
/// background), and registers the callbacks. A bad option fails init with
/// one log line naming it; an unreachable database does not.
///
/// # Safety
/// Called once per instance by the broker with its identifier, a place for
/// userdata, and `option_count` options.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_init(
    identifier: *mut ffi::mosquitto_plugin_id_t,
    userdata: *mut *mut c_void,
    options: *mut ffi::mosquitto_opt,
    option_count: c_int,
) -> c_int {
    guard("init", ffi::MOSQ_ERR_UNKNOWN, || {
        // SAFETY: the broker passes `option_count` valid options.
        let pairs = unsafe { option_pairs(options, option_count) };
        let mut options = match Options::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok(o) => o,
            Err(message) => return init_failed(&message),
        };
        // Read now, while the broker still runs as root: the key file may
        // be readable by its owner only.
        if let Some(path) = &options.secret_key_file {
            match devicegate::store::SecretKeys::load(path) {
                Ok(keys) => options.sync.secret_keys = Some(std::sync::Arc::new(keys)),
                Err(e) => return init_failed(&format!("plugin_opt_secret_key_file: {e}")),
            }
        }
        // SAFETY: the identifier the broker passed to this call.
        if unsafe { ffi::loaded_per_listener(identifier) } {
            return init_failed(PER_LISTENER_REFUSED);
        }
        if let Some(missing) = missing_sqlite_file(&options) {
            return init_failed(&missing);
        }
        options.sync.release_memory = Some(memory::release_freed_memory);
        log::install(options.log_level);
        stats::enable(options.stats_interval_secs);
        let auth = match Authenticator::start(options.engine.clone(), options.sync.clone(), &options.database_url) {
            Ok(a) => std::sync::Arc::new(a),
            Err(e) => return init_failed(&e.to_string()),
        };
        let metrics = match options.metrics_listen {
            Some(address) => match metrics::MetricsEndpoint::start(address, std::sync::Arc::clone(&auth)) {
                Ok(endpoint) => Some(endpoint),
                Err(message) => {
                    auth.shutdown();
                    return init_failed(&message);
                }
            },
            None => None,
        };
        let mut plugin = Box::new(Plugin {
            identifier,
            auth,
            metrics,
            kicks: RefCell::new(Vec::new()),
            disconnects: RefCell::new(Vec::new()),
            psk_handshakes: RefCell::new(psk::PskHandshakes::default()),
            registered: Vec::new(),
        });
        let raw: *mut Plugin = &mut *plugin;
        for (event, callback) in CALLBACKS {
            // SAFETY: broker thread during init; `raw` stays valid until cleanup.
            let rc =
                unsafe { ffi::mosquitto_callback_register(identifier, event, callback, std::ptr::null(), raw.cast()) };
            match rc {
                ffi::MOSQ_ERR_SUCCESS => plugin.registered.push(event),
                ffi::MOSQ_ERR_ALREADY_EXISTS => {}
                _ => tracing::error!(event, rc, "cannot register a callback"),
            }
        }
        if plugin.registered.is_empty() {
            tracing::warn!("this plugin is loaded twice; the second instance is inert");
        }
        tracing::info!(
            "devicegate {} loaded; database {}; the registry loads in the background",
            env!("CARGO_PKG_VERSION"),
            redact_url(&options.database_url)
        );
        log::flush();
        if !userdata.is_null() {
            // SAFETY: the broker passes a valid place for the userdata.
            unsafe { *userdata = Box::into_raw(plugin).cast() };
        }
        ffi::MOSQ_ERR_SUCCESS
    })
}

/// Unregisters the callbacks and stops the engine, joining its thread, so
/// nothing of this library runs after the broker unloads it.
///
/// # Safety
/// Called once by the broker with the userdata init stored.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mosquitto_plugin_cleanup(
    userdata: *mut c_void,
    _options: *mut ffi::mosquitto_opt,
    _option_count: c_int,
) -> c_int {
    guard("cleanup", ffi::MOSQ_ERR_SUCCESS, || {
        if userdata.is_null() {
            return ffi::MOSQ_ERR_SUCCESS;
        }
        // SAFETY: `userdata` is the Box init leaked; cleanup runs once.
        let mut plugin = unsafe { Box::from_raw(userdata.cast::<Plugin>()) };
        if let Some(endpoint) = plugin.metrics.take() {
            endpoint.stop();
        }
        for (event, callback) in CALLBACKS.iter().filter(|(e, _)| plugin.registered.contains(e)) {
            // SAFETY: broker thread; unregistering what init registered.
            unsafe { ffi::mosquitto_callback_unregister(plugin.identifier, *event, *callback, std::ptr::null()) };
        }
        plugin.finish_all_disconnects();
        plugin.auth.shutdown();
        tracing::info!("devicegate stopped");
        log::flush();
        ffi::MOSQ_ERR_SUCCESS
    })
}

/// The plugin's version as bytes in the file, so that `devicegate doctor`
/// can tell which version a `.so` is without loading it.
#[used]
static VERSION_MARKER: &str = concat!("devicegate-mosquitto-version=", env!("CARGO_PKG_VERSION"), "\0");

/// Why the plugin does not start with `per_listener_settings true`.
const PER_LISTENER_REFUSED: &str = "per_listener_settings true is not supported: Mosquitto 2.0.11 to 2.0.14 \
     never send TICK to a plugin loaded per listener, so a disabled device or a revoked credential would stay \
     connected until other traffic happened to come, and each listener would keep its own sessions apart. \
     Set `per_listener_settings false` and load the plugin once, before the first listener; it then serves \
     every listener.";

/// Why the plugin must not start on a SQLite file that does not exist
/// (unless `plugin_opt_create_database true`): a mistyped path would
/// otherwise start an empty fleet that refuses every device.
fn missing_sqlite_file(options: &Options) -> Option<String> {
    let (file, _) = devicegate::store::sqlite_files(&options.database_url)?;
    if options.create_database || file.exists() {
        return None;
    }
    let shown = std::path::absolute(&file).unwrap_or(file);
    Some(format!(
        "the SQLite database {} does not exist: check plugin_opt_database_url, create it with \
         `devicegate --database-url sqlite://{} status` and `chown mosquitto` it, or set \
         plugin_opt_create_database true to start with an empty one",
        shown.display(),
        shown.display()
    ))
}

fn init_failed(message: &str) -> c_int {
    log::queue(ffi::MOSQ_LOG_ERR, format!("devicegate: {message}"));
    log::flush();
    ffi::MOSQ_ERR_INVAL
}

/// Copies the options out of broker memory.
///
/// # Safety
/// `options` is NULL or points to `count` options with NUL-terminated (or NULL) strings.
unsafe fn option_pairs(options: *const ffi::mosquitto_opt, count: c_int) -> Vec<(String, String)> {
    let count = usize::try_from(count).unwrap_or(0);
    if options.is_null() || count == 0 {
        return Vec::new();
    }
    // SAFETY: per this function's contract.
    let slice = unsafe { std::slice::from_raw_parts(options, count) };
    let text = |p: *const std::ffi::c_char| {
        if p.is_null() {
            return String::new();
        }
        // SAFETY: non-null and NUL-terminated per this function's contract.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    };
    slice.iter().map(|o| (text(o.key), text(o.value))).collect()
}
