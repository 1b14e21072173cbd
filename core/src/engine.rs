//! The engine: decisions plus effects for the broker, and state-change
//! writes for the background task.
//!
//! [`Engine`] is sans-I/O. Brokers call it through the [`Hooks`] trait on
//! their network threads; every hook reads memory only and returns at once.
//! Outputs wait in queues:
//!
//! - **inputs** (`handle_*`): a connection logs in, publishes a message the
//!   engine may consume, disconnects; the clock ticks; the background task
//!   reports a committed secret.
//! - **decisions** (`authorize_*`): may this connection publish, subscribe,
//!   receive this topic.
//! - **outputs** (`poll_*`): effects for the broker ([`Effect`]: publish to
//!   one client, kick a client) and writes for the store ([`StoreWrite`]).
//!
//! Calling order for an adapter: call the hook, then drain
//! [`Hooks::poll_effect`] until it returns `None` (Mosquitto: also on every
//! TICK). Time comes in as `now_ms`, milliseconds since the UNIX epoch; the
//! engine never reads the clock.

mod access;
mod activation;
mod coalesce;
mod connection;
mod denials;
mod gateway;
mod login;
mod presence;
mod routing;
mod timers;
mod tls;
mod verified_tokens;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use rustc_hash::FxBuildHasher;

use crate::decision::{AccessDecision, ConnectOutcome, Refusal};
use crate::lifecycle::{Communication, DeviceState, Event, Operational, Verdict};
use crate::rate_limit::{Budget, LoginLimits};
use crate::registry::{DeviceRecord, Registry};
use crate::secret::Secret;
use crate::verify::Via;
pub use activation::parse_activation_reply;
use connection::Connection;
pub use connection::ConnectionId;
pub use gateway::{GatewayOp, GatewayRequest, ReplyCode, SubDeviceLogin, parse_request as parse_gateway_request};
use timers::Timers;

/// Writes the in-memory queue holds before audit events are dropped (and
/// counted). The background task empties it every few tens of
/// milliseconds, into the database or its spool file, so it reaches this
/// only when that task cannot keep up at all; state changes (presence,
/// activation, issued secrets) are never dropped.
pub const MAX_QUEUED_WRITES: usize = 262_144;

/// Limits and timings of the engine. The defaults follow PROTOCOL.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Failed logins of one device (or principal) from one address per
    /// window before that pair is blocked; 0 = no limit.
    pub failed_logins_per_device: u32,
    /// Failed logins per source address per window, whatever the username,
    /// before the address is blocked; 0 = no limit.
    pub failed_logins_per_address: u32,
    /// Failed logins of one device (or principal) per window from all
    /// addresses together, before it is refused from every address that
    /// failed for it (never from one that did not); 0 = no limit.
    pub failed_logins_device_ceiling: u32,
    /// The failure window in milliseconds.
    pub failure_window_ms: u64,
    /// Slow checks the broker thread runs per second at most: PBKDF2
    /// (about 0.5 ms, for principals with an operator-chosen password and
    /// no remembered login) and certificate checks for just-in-time
    /// registration; logins past it are refused as busy.
    pub principal_slow_hashes_per_sec: u32,
    /// Time between activation pushes without a reply.
    pub activation_retry_ms: u64,
    /// Pushes per activation session before it is closed.
    pub activation_max_pushes: u32,
    /// An activation session is closed this long after CONNECT.
    pub activation_session_ms: u64,
    /// An activation session is closed this long after activation.
    pub activation_linger_ms: u64,
    /// A registration session is closed this long after its push.
    pub registration_linger_ms: u64,
    /// Device-token signature checks (Ed25519, tens of µs each) the broker
    /// thread runs per second at most; token logins past it are refused
    /// as busy and retry.
    pub token_checks_per_sec: u32,
    /// This broker's own URL (`mqtt://` or `mqtts://HOST:PORT`), if it
    /// knows it: a device assigned to another server is then refused
    /// (IDENTITIES.md §5).
    pub server_url: Option<String>,
    /// Which audit events are written to the `events` table.
    pub events: EventDetail,
}

/// Which audit events the engine writes (issue 11 item 3). A fleet whose
/// devices reconnect often writes one `login` row per connection; an
/// operator who only needs what changed keeps the rest and drops those,
/// counted in `devicegate_events_skipped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventDetail {
    /// Every event (the default).
    #[default]
    All,
    /// Every event but accepted logins (`login`, `principal_login`):
    /// refusals, blocks, kicks, activations and registrations stay.
    Changes,
}

impl EventDetail {
    /// Whether an event of `kind` is written.
    fn keeps(self, kind: &str) -> bool {
        match self {
            EventDetail::All => true,
            EventDetail::Changes => !matches!(kind, "login" | "principal_login"),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            failed_logins_per_device: 10,
            failed_logins_per_address: 30,
            failed_logins_device_ceiling: 100,
            failure_window_ms: 60_000,
            principal_slow_hashes_per_sec: 20,
            activation_retry_ms: 10_000,
            activation_max_pushes: 5,
            activation_session_ms: 60_000,
            activation_linger_ms: 5_000,
            registration_linger_ms: 2_000,
            token_checks_per_sec: 2_000,
            server_url: None,
            events: EventDetail::All,
        }
    }
}

/// The CONNECT fields a broker passes to [`Hooks::handle_connect`], and
/// what the TLS layer proved about the client, if anything. Built with
/// [`ConnectRequest::new`] (fields may be added). `Debug` never shows the
/// password.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct ConnectRequest<'a> {
    /// The MQTT client identifier.
    pub client_id: &'a [u8],
    /// The username, if any.
    pub username: Option<&'a [u8]>,
    /// The password, if any.
    pub password: Option<&'a [u8]>,
    /// The peer's IP address as text, if known (rate limiting, logs).
    pub address: Option<&'a str>,
    /// The identity the client proved in the TLS handshake, if any.
    pub tls: Option<TlsIdentity<'a>>,
}

impl<'a> ConnectRequest<'a> {
    /// A CONNECT without a TLS identity.
    pub fn new(
        client_id: &'a [u8],
        username: Option<&'a [u8]>,
        password: Option<&'a [u8]>,
        address: Option<&'a str>,
    ) -> Self {
        ConnectRequest {
            client_id,
            username,
            password,
            address,
            tls: None,
        }
    }

    /// The same CONNECT over a TLS handshake that proved `tls`.
    pub fn with_tls(self, tls: TlsIdentity<'a>) -> Self {
        ConnectRequest { tls: Some(tls), ..self }
    }
}

impl std::fmt::Debug for ConnectRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("client_id", &String::from_utf8_lossy(self.client_id))
            .field("username", &self.username.map(String::from_utf8_lossy))
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("address", &self.address)
            .field("tls", &self.tls)
            .finish()
    }
}

/// What a client proved in the TLS handshake, as the broker saw it
/// (IDENTITIES.md §2, §3). It names the device; a username, if the CONNECT
/// has one, must name the same device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsIdentity<'a> {
    /// The handshake used this PSK identity, with the key
    /// [`Engine::psk_key`] gave the broker for it.
    Psk(&'a [u8]),
    /// The client presented this certificate (DER), and the broker's TLS
    /// layer verified its chain. devicegate maps it to its device by
    /// SHA-256 fingerprint: a valid chain alone never logs a device in.
    Certificate(&'a [u8]),
}

/// The answer to a CONNECT.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectDecision {
    /// Accepted.
    Accept,
    /// Refused; the outcome gives the wire code, the reason goes to the log.
    Refuse(Refusal),
    /// Not a client devicegate owns (no username): let the broker's other
    /// authentication decide.
    Defer,
}

impl ConnectDecision {
    /// The logical outcome (PROTOCOL.md §8.1); `Defer` counts as refused.
    pub fn outcome(&self) -> ConnectOutcome {
        match self {
            ConnectDecision::Accept => ConnectOutcome::Ok,
            ConnectDecision::Refuse(r) => r.outcome(),
            ConnectDecision::Defer => ConnectOutcome::NotAuthorized,
        }
    }
}

/// What the broker must do with a published message after the engine saw it.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageDecision {
    /// Route it as usual.
    Forward,
    /// The engine handled it (activation reply, gateway request); do not
    /// deliver it to subscribers.
    Consume,
}

/// An action the broker must carry out, drained with [`Hooks::poll_effect`].
/// `Debug` shows a payload's length only: activation pushes carry secrets.
#[derive(Clone, PartialEq, Eq)]
pub enum Effect {
    /// Deliver a message to one connection, without a subscription
    /// (PROTOCOL.md §7.6). Never broadcast it: it may carry a secret.
    Publish {
        /// The target connection.
        connection: ConnectionId,
        /// The target's MQTT client id (for brokers that address by id).
        client_id: String,
        /// The topic.
        topic: String,
        /// The payload.
        payload: Vec<u8>,
        /// QoS 0 or 1.
        qos: u8,
    },
    /// Close a connection (disabled device, superseded session, ended
    /// activation session).
    Kick {
        /// The target connection.
        connection: ConnectionId,
        /// The target's MQTT client id.
        client_id: String,
    },
}

impl std::fmt::Debug for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Publish {
                connection,
                client_id,
                topic,
                payload,
                qos,
            } => f
                .debug_struct("Publish")
                .field("connection", connection)
                .field("client_id", client_id)
                .field("topic", topic)
                .field("payload_len", &payload.len())
                .field("qos", qos)
                .finish(),
            Effect::Kick { connection, client_id } => f
                .debug_struct("Kick")
                .field("connection", connection)
                .field("client_id", client_id)
                .finish(),
        }
    }
}

/// Why a new secret or token is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// EnOS dynamic activation (`thing/activate/info`).
    Activation,
    /// Aliyun `authType=register` (`/ext/register`).
    Register,
    /// Aliyun `authType=regnwl` (`/ext/regnwl`); the device may be new.
    Regnwl,
}

/// A state change for the background task to write to the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreWrite {
    /// The device went online or offline.
    Presence {
        /// The device, `{dk}&{pk}`.
        device: Box<str>,
        /// Online or offline now.
        online: bool,
        /// When.
        at_ms: u64,
        /// The peer address on going online.
        address: Option<Box<str>>,
    },
    /// The device activated; a pending secret, if any, became its secret.
    Activated {
        /// The device, `{dk}&{pk}`.
        device: Box<str>,
        /// When.
        at_ms: u64,
    },
    /// A new secret (or token) must be committed; once it is, the
    /// background task calls [`Engine::handle_issue_committed`].
    Issue {
        /// The device, `{dk}&{pk}`.
        device: Box<str>,
        /// Why.
        kind: IssueKind,
        /// The new secret or token.
        secret: Secret,
        /// The connection waiting for it.
        connection: ConnectionId,
    },
    /// A certificate registered just in time (IDENTITIES.md §3): create
    /// the device unless it exists by now, and register the certificate.
    RegisterCertificate {
        /// The new device's product key.
        product_key: Box<str>,
        /// The new device's key.
        device_key: Box<str>,
        /// The certificate's SHA-256 fingerprint, hex.
        fingerprint: Box<str>,
        /// The certificate, DER.
        der: Box<[u8]>,
        /// The end of its validity, ms since the UNIX epoch.
        not_after_ms: u64,
    },
    /// A credential was used for the first time (its `first_used_at`).
    CredentialUsed {
        /// The device, `{dk}&{pk}`.
        device: Box<str>,
        /// The credential's kind: `secret`, `psk`, `certificate`.
        kind: &'static str,
        /// Its identity (the device key for its secret).
        identity: Box<str>,
        /// When.
        at_ms: u64,
    },
    /// An audit event.
    Event {
        /// When.
        at_ms: u64,
        /// A stable name: `login_refused`, `activated`, `kicked`, ...
        kind: Cow<'static, str>,
        /// The device or principal concerned, if known.
        subject: Option<Box<str>>,
        /// The peer address, if known.
        address: Option<Box<str>>,
        /// The reason code, if any.
        reason: Option<Cow<'static, str>>,
    },
}

/// The contract between devicegate and a broker: the hooks a broker calls.
///
/// Implemented by [`Engine`] (decisions over an in-memory registry you
/// fill yourself) and by [`crate::sync::Authenticator`] (the engine plus
/// the background task that loads the registry from a database and writes
/// state changes back); a broker adapter holds either behind this trait.
///
/// Every method is synchronous and non-blocking: it reads memory and
/// returns, so it may be called on the broker's network threads. The
/// broker names each network connection with a [`ConnectionId`] that is
/// unique for the connection's lifetime, from CONNECT to close.
///
/// What the broker must do:
///
/// 1. On CONNECT, call [`Hooks::handle_connect`]. [`ConnectDecision::Accept`]:
///    accept. [`ConnectDecision::Refuse`]: refuse with the CONNACK code of
///    [`ConnectDecision::outcome`] (`mqtt3_code` / `mqtt5_reason`) and log
///    the reason. [`ConnectDecision::Defer`]: no username, not a client
///    devicegate owns; let the broker's other authentication decide.
/// 2. Before routing a PUBLISH (wills and retained messages included), call
///    [`Hooks::authorize_publish`]; when allowed, call
///    [`Hooks::handle_message`] and do not route the message if it answers
///    [`MessageDecision::Consume`] (the engine answers activation replies
///    and gateway requests itself).
/// 3. Check each SUBSCRIBE filter with [`Hooks::authorize_subscribe`]
///    (refused: SUBACK 0x80 / 0x87 for that filter), report UNSUBSCRIBE
///    with [`Hooks::handle_unsubscribe`], and, where the broker can, check
///    each delivery with [`Hooks::authorize_delivery`].
/// 4. When the connection closes for any reason, call
///    [`Hooks::handle_disconnect`]; call [`Hooks::handle_tick`] every 100 ms
///    or so.
/// 5. After each hook and each tick, drain [`Hooks::poll_effect`] and carry
///    out every [`Effect`]: [`Effect::Publish`] delivers a message to that
///    one connection without a subscription (it may carry a device secret:
///    never broadcast or log it); [`Effect::Kick`] closes that connection.
///
/// [`AccessDecision::Defer`] means the connection is not one devicegate
/// accepted: let the broker's other rules decide.
///
/// # Example
///
/// A broker's view of one device session, on a registry filled by hand
/// (with a database, start a [`crate::sync::Authenticator`] instead):
///
/// ```
/// use std::sync::Arc;
/// use devicegate::credentials::Dialect;
/// use devicegate::decision::AccessDecision;
/// use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Effect, Engine, EngineConfig, Hooks};
/// use devicegate::registry::{DeviceRecord, Product, Registry};
/// use devicegate::secret::Secret;
///
/// let registry = Arc::new(Registry::new());
/// registry.put_product(Product::new("Ab3dEf9h", Dialect::Enos));
/// registry.put_device("dev_0001&Ab3dEf9h", DeviceRecord::new(Some(Secret::new(*b"S3cretDevice0001"))));
/// registry.mark_loaded();
/// let hooks: &dyn Hooks = &Engine::new(registry, EngineConfig::default());
///
/// // CONNECT as an EnOS device SDK sends it (PROTOCOL.md vector E3).
/// let now = 1_795_320_550_912;
/// let connection = ConnectionId(1);
/// let request = ConnectRequest::new(
///     b"dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|",
///     Some(b"dev_0001&Ab3dEf9h"),
///     Some(b"ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec"),
///     Some("10.0.0.7"),
/// );
/// assert_eq!(hooks.handle_connect(connection, &request, now), ConnectDecision::Accept);
///
/// // Its own topics only; a wildcard that reaches other devices is refused.
/// let own = "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post";
/// assert_eq!(hooks.authorize_publish(connection, own, false, now), AccessDecision::Allow);
/// let other = "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post";
/// assert_eq!(hooks.authorize_publish(connection, other, false, now), AccessDecision::Deny);
/// assert_eq!(hooks.authorize_subscribe(connection, "/sys/+/+/thing/#", now), AccessDecision::Deny);
///
/// // Carry out whatever the engine asks for.
/// while let Some(effect) = hooks.poll_effect() {
///     match effect {
///         Effect::Publish { connection, topic, payload, qos, .. } => {
///             let _deliver_to_this_connection_only = (connection, topic, payload, qos);
///         }
///         Effect::Kick { connection, .. } => {
///             let _close = connection;
///         }
///     }
/// }
/// hooks.handle_disconnect(connection, now + 1_000);
/// ```
pub trait Hooks: Send + Sync {
    /// A client sent CONNECT on `connection`.
    fn handle_connect(&self, connection: ConnectionId, request: &ConnectRequest<'_>, now_ms: u64) -> ConnectDecision;
    /// May `connection` publish to `topic` (also wills and retained messages)?
    fn authorize_publish(&self, connection: ConnectionId, topic: &str, retain: bool, now_ms: u64) -> AccessDecision;
    /// `connection` published `payload` on `topic` (after `authorize_publish`
    /// allowed it): the engine may consume activation replies and gateway
    /// requests, and delivers commands directly (as [`Effect::Publish`], QoS
    /// 1) to the device they name when it has no matching subscription.
    fn handle_message(&self, connection: ConnectionId, topic: &str, payload: &[u8], now_ms: u64) -> MessageDecision;
    /// May `connection` subscribe with `filter` (raw, `$share/` included)?
    /// An allowed filter is remembered, so commands are not delivered twice.
    fn authorize_subscribe(&self, connection: ConnectionId, filter: &str, now_ms: u64) -> AccessDecision;
    /// `connection` unsubscribed from `filter` (always allowed).
    fn handle_unsubscribe(&self, connection: ConnectionId, filter: &str);
    /// May the message on `topic` be delivered to `connection`?
    fn authorize_delivery(&self, connection: ConnectionId, topic: &str) -> AccessDecision;
    /// `connection` closed, for whatever reason.
    fn handle_disconnect(&self, connection: ConnectionId, now_ms: u64);
    /// Time passed: idle-offline, activation retries, session limits.
    fn handle_tick(&self, now_ms: u64);
    /// The next effect to carry out, if any.
    fn poll_effect(&self) -> Option<Effect>;
    /// After `handle_connect` refused `request` with
    /// [`Refusal::AssignedElsewhere`]: the URL of the server the device is
    /// assigned to, for brokers that can tell the client (the MQTT 5
    /// Server Reference of CONNACK 0x9C). None by default.
    fn server_reference(&self, request: &ConnectRequest<'_>) -> Option<Box<str>> {
        let _ = request;
        None
    }
    /// The metrics in the Prometheus text format (issue 12), for an
    /// embedding broker's `/metrics`. Call it from the scraper's thread.
    /// Empty by default.
    fn metrics_text(&self) -> String {
        String::new()
    }
}

/// The engine. Safe to share between threads.
#[derive(Debug)]
pub struct Engine {
    registry: Arc<Registry>,
    config: EngineConfig,
    /// Keyed by the broker's handle; FxHash, as ids are the broker's own
    /// numbers (no attacker picks them) and this lookup is on every check.
    connections: DashMap<ConnectionId, Connection, FxBuildHasher>,
    /// Device key `{dk}&{pk}` to the connection it is online through (its
    /// own, or its gateway's).
    online: DashMap<Box<str>, ConnectionId>,
    /// MQTT client id to the accepted connection that holds it, so that
    /// no login takes over another subject's session (DESIGN.md §5).
    client_ids: DashMap<Box<str>, ConnectionId>,
    limits: LoginLimits,
    slow_hashes: Budget,
    token_checks: Budget,
    verified_tokens: verified_tokens::VerifiedTokens,
    metrics: crate::metrics::Metrics,
    /// When the write queue last went from empty to holding writes (ms);
    /// 0 while it is empty.
    writes_waiting_since_ms: AtomicU64,
    timers: Timers,
    effects: Mutex<VecDeque<Effect>>,
    /// How many effects wait, so an empty poll costs no lock.
    effect_count: AtomicUsize,
    writes: Mutex<VecDeque<StoreWrite>>,
    /// Writes taken by the background task and not yet committed or put back.
    writes_in_flight: AtomicUsize,
    /// Writes the background task keeps in its spool file.
    writes_spooled: AtomicUsize,
    /// Audit events dropped because the queue was full (see [`MAX_QUEUED_WRITES`]).
    events_dropped: AtomicU64,
    /// Audit events not written because of `EngineConfig::events`.
    events_skipped: AtomicU64,
    next_serial: AtomicU64,
    last_prune_ms: AtomicU64,
}

impl Engine {
    /// An engine over `registry`.
    pub fn new(registry: Arc<Registry>, config: EngineConfig) -> Self {
        Engine {
            limits: LoginLimits::new(
                config.failed_logins_per_device,
                config.failed_logins_per_address,
                config.failed_logins_device_ceiling,
                config.failure_window_ms,
            ),
            client_ids: DashMap::new(),
            slow_hashes: Budget::new(config.principal_slow_hashes_per_sec),
            token_checks: Budget::new(config.token_checks_per_sec),
            verified_tokens: Default::default(),
            metrics: Default::default(),
            writes_waiting_since_ms: AtomicU64::new(0),
            registry,
            config,
            connections: DashMap::with_hasher(FxBuildHasher),
            online: DashMap::new(),
            timers: Timers::default(),
            effects: Mutex::new(VecDeque::new()),
            effect_count: AtomicUsize::new(0),
            writes: Mutex::new(VecDeque::new()),
            writes_in_flight: AtomicUsize::new(0),
            writes_spooled: AtomicUsize::new(0),
            events_dropped: AtomicU64::new(0),
            events_skipped: AtomicU64::new(0),
            next_serial: AtomicU64::new(1),
            last_prune_ms: AtomicU64::new(0),
        }
    }

    /// The registry the engine reads.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Takes up to `max` state changes to write, oldest first, with each
    /// device's presence changes merged into one (background task). They count as pending until [`Engine::store_writes_committed`]
    /// or [`Engine::requeue_store_writes`] says what became of them.
    pub fn take_store_writes(&self, max: usize) -> Vec<StoreWrite> {
        let taken: Vec<StoreWrite> = {
            let Ok(mut queue) = self.writes.lock() else {
                return Vec::new();
            };
            let count = max.min(queue.len());
            let taken: Vec<StoreWrite> = queue.drain(..count).collect();
            self.writes_in_flight.fetch_add(taken.len(), Ordering::Relaxed);
            taken
        };
        // Merged outside the lock the broker thread pushes under.
        let count = taken.len();
        let batch = coalesce::coalesce_presence(taken);
        self.writes_in_flight.fetch_sub(count - batch.len(), Ordering::Relaxed);
        batch
    }

    /// Puts writes back at the front of the queue after a failed attempt,
    /// so they are retried in order and never lost.
    pub fn requeue_store_writes(&self, failed: Vec<StoreWrite>) {
        let count = failed.len();
        if let Ok(mut queue) = self.writes.lock() {
            for write in failed.into_iter().rev() {
                queue.push_front(write);
            }
        }
        self.writes_in_flight.fetch_sub(count, Ordering::Relaxed);
    }

    /// Records that `count` taken writes are in the database.
    pub fn store_writes_committed(&self, count: usize) {
        self.writes_in_flight.fetch_sub(count, Ordering::Relaxed);
        if self.pending_store_writes() == 0 {
            self.writes_waiting_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// The engine's counters, for code that counts.
    pub(crate) fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// Writes the engine's metrics (issue 12): the counters, and gauges
    /// read now — connections by product, registry size, the write queue.
    /// For the scraper's thread, never a broker callback.
    pub fn render_metrics(&self, out: &mut crate::metrics::Exposition, now_ms: u64) {
        self.metrics.render(out);
        let mut by_product: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        let mut principals = 0u64;
        for conn in self.connections.iter() {
            match conn.identity() {
                Some(identity) => *by_product.entry(identity.product_key.to_owned()).or_default() += 1,
                None => principals += 1,
            }
        }
        out.family(
            "devicegate_connections",
            "gauge",
            "Live sessions, by product (principals apart).",
        );
        for (product, count) in &by_product {
            out.sample("devicegate_connections", &[("product", product)], count);
        }
        out.sample("devicegate_connections", &[("product", "")], principals);
        out.family(
            "devicegate_registry_devices",
            "gauge",
            "Devices loaded in the registry.",
        );
        out.sample("devicegate_registry_devices", &[], self.registry.device_count());
        out.family(
            "devicegate_registry_loaded",
            "gauge",
            "1 once the registry is loaded from the database.",
        );
        out.sample("devicegate_registry_loaded", &[], u8::from(self.registry.is_loaded()));
        out.family(
            "devicegate_write_queue_depth",
            "gauge",
            "State writes waiting for the database (spool included).",
        );
        out.sample("devicegate_write_queue_depth", &[], self.pending_store_writes());
        let since = self.writes_waiting_since_ms.load(Ordering::Relaxed);
        let age = if since == 0 || self.pending_store_writes() == 0 {
            0.0
        } else {
            now_ms.saturating_sub(since) as f64 / 1000.0
        };
        out.family(
            "devicegate_write_queue_oldest_age_seconds",
            "gauge",
            "How long the oldest waiting state write has waited.",
        );
        out.sample("devicegate_write_queue_oldest_age_seconds", &[], age);
        out.family(
            "devicegate_events_dropped_total",
            "counter",
            "Audit events dropped while the write queue was full.",
        );
        out.sample("devicegate_events_dropped_total", &[], self.dropped_events());
        out.family(
            "devicegate_events_skipped_total",
            "counter",
            "Audit events not written by policy (plugin_opt_events changes: accepted logins).",
        );
        out.sample(
            "devicegate_events_skipped_total",
            &[],
            self.events_skipped.load(Ordering::Relaxed),
        );
    }

    /// How many writes wait for the database, counting a batch being
    /// written and those kept in the spool file.
    pub fn pending_store_writes(&self) -> usize {
        let queued = self.writes.lock().map(|q| q.len()).unwrap_or(0);
        queued + self.writes_in_flight.load(Ordering::Relaxed) + self.writes_spooled.load(Ordering::Relaxed)
    }

    /// The background task reports how many writes its spool file holds.
    pub fn set_spooled_store_writes(&self, count: usize) {
        self.writes_spooled.store(count, Ordering::Relaxed);
    }

    /// How many audit events were dropped since start because the write
    /// queue held [`MAX_QUEUED_WRITES`] (state changes are never dropped).
    pub fn dropped_events(&self) -> u64 {
        self.events_dropped.load(Ordering::Relaxed)
    }

    /// How many connections the engine tracks.
    pub fn connection_count(&self) -> usize {
        self.connections.len()
    }

    /// The device `{dk}&{pk}` logged in on `connection`, if a device did:
    /// brokers that key sessions by client id (VerneMQ) use it as the
    /// session's canonical id, so each device has one session whatever
    /// client id its SDK sent.
    pub fn device_of(&self, connection: ConnectionId) -> Option<Box<str>> {
        match &self.connections.get(&connection)?.subject {
            connection::Subject::Device { key, .. } => Some(key.clone()),
            connection::Subject::Principal(_) => None,
        }
    }

    /// Whether the device `{dk}&{pk}` is online (directly or via a gateway).
    pub fn is_online(&self, device: &str) -> bool {
        self.online.contains_key(device)
    }

    /// The background task changed or removed a device in the database:
    /// update the registry and throw the device off if it may no longer be
    /// connected (disabled, deleted, secret changed, activation reset).
    pub fn apply_device_change(&self, device: &str, mut record: Option<DeviceRecord>, now_ms: u64) {
        let current = self.registry.device(device);
        if let (Some(old), Some(new)) = (&current, &mut record) {
            // Writes go behind: the database may not yet show an activation
            // the engine already applied. Keep it unless an operator changed
            // the device's secret since.
            if old.secret_version == new.secret_version && old.activated && !new.activated {
                new.activated = true;
                new.secret = old.secret.clone();
                new.pending_secret = old.pending_secret.clone();
            }
        }
        if let (Some(old), Some(new)) = (&current, &record)
            && new.unblocked_at_ms != old.unblocked_at_ms
        {
            self.limits.unblock_subject(device);
            tracing::info!(device, "failed-login blocks lifted by the operator");
        }
        let via = self.online_via(device);
        let events = operator_events(current.as_ref(), record.as_ref(), via.as_ref());
        let kick = self.kicks(device, current.as_ref(), &events);
        if current.as_ref() != record.as_ref() {
            match record {
                Some(r) => {
                    self.registry.put_device(device, r);
                }
                None => {
                    self.registry.remove_device(device);
                }
            }
        }
        if kick {
            self.throw_off(device, now_ms, "device_changed");
        }
    }

    /// The background task changed or removed a product: update the
    /// registry, refresh live sessions' rules, and throw off the devices of
    /// a deleted product.
    pub fn apply_product_change(&self, pk: &str, product: Option<crate::registry::Product>, now_ms: u64) {
        match product {
            Some(p) => {
                self.registry.put_product(p);
                if let Some(fresh) = self.registry.product(pk) {
                    for mut c in self.connections.iter_mut() {
                        c.refresh_product(&fresh);
                    }
                }
            }
            None => {
                let devices: Vec<Box<str>> = self
                    .online
                    .iter()
                    .filter(|e| crate::registry::identity_of(e.key()).is_some_and(|id| id.product_key == pk))
                    .map(|e| e.key().clone())
                    .collect();
                self.registry.remove_product(pk);
                for device in devices {
                    self.throw_off(&device, now_ms, "product_deleted");
                }
            }
        }
    }

    /// The credential the device's live session logged in with, if it is
    /// online.
    fn online_via(&self, device: &str) -> Option<Via> {
        let online = self.online.get(device).map(|c| *c)?;
        self.connections.get(&online).map(|conn| conn.via_of(device))
    }

    /// Whether `events` throw the device's live session off, by the
    /// lifecycle table (DESIGN.md §4) from its current state.
    fn kicks(&self, device: &str, current: Option<&DeviceRecord>, events: &[Event]) -> bool {
        let mut state = current.map_or(DeviceState::NEW, login::device_state);
        if self.online.contains_key(device) {
            state.operational = Operational::Enabled;
            state.communication = Communication::Online;
        }
        let mut kick = false;
        for event in events {
            let transition = state.apply(*event);
            kick |= transition.verdict == Verdict::AcceptAndKick;
            state = transition.next;
        }
        kick
    }

    /// The background task added, replaced or removed the device-token key
    /// `kid`. Sessions that logged in with a token it signed are closed
    /// when it goes away or changes, as for a revoked credential.
    pub fn apply_token_key_change(&self, kid: &str, key: Option<[u8; 32]>, now_ms: u64) {
        let withdrawn = self.registry.token_key(kid).is_some_and(|old| Some(old) != key);
        self.registry.put_token_key(kid, key);
        if !withdrawn {
            return;
        }
        let signed_by_kid = Via::AccessToken(kid.into());
        // Collected first: the online map is not read again while iterated.
        let online: Vec<Box<str>> = self.online.iter().map(|e| e.key().clone()).collect();
        for device in online {
            if self.online_via(&device).as_ref() != Some(&signed_by_kid) {
                continue;
            }
            let current = self.registry.device(&device);
            if self.kicks(&device, current.as_ref(), &[Event::CredentialRevoked]) {
                self.throw_off(&device, now_ms, "token_key_removed");
            }
        }
    }

    /// The background task changed or removed a principal.
    pub fn apply_principal_change(&self, name: &str, principal: Option<crate::principal::Principal>) {
        match principal {
            Some(p) => {
                self.registry.put_principal(p);
                if let Some(fresh) = self.registry.principal(name) {
                    for mut c in self.connections.iter_mut() {
                        c.refresh_principal(&fresh);
                    }
                }
            }
            None => {
                self.registry.remove_principal(name);
                let gone: Vec<(ConnectionId, String)> = self
                    .connections
                    .iter()
                    .filter(|c| c.principal_name() == Some(name))
                    .map(|c| (*c.key(), c.client_id.to_string()))
                    .collect();
                for (connection, client_id) in gone {
                    self.push_effect(Effect::Kick { connection, client_id });
                }
            }
        }
    }

    fn push_effect(&self, effect: Effect) {
        if let Ok(mut q) = self.effects.lock() {
            q.push_back(effect);
            self.effect_count.store(q.len(), Ordering::Release);
        }
    }

    fn push_write(&self, write: StoreWrite) {
        if let Ok(mut q) = self.writes.lock() {
            if q.len() >= MAX_QUEUED_WRITES && matches!(write, StoreWrite::Event { .. }) {
                self.events_dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            if q.is_empty() && self.writes_in_flight.load(Ordering::Relaxed) == 0 {
                self.writes_waiting_since_ms
                    .store(crate::clock::now_ms(), Ordering::Relaxed);
            }
            q.push_back(write);
        }
    }

    fn event(
        &self,
        now_ms: u64,
        kind: &'static str,
        subject: Option<&str>,
        address: Option<&str>,
        reason: Option<&'static str>,
    ) {
        if !self.config.events.keeps(kind) {
            self.events_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push_write(StoreWrite::Event {
            at_ms: now_ms,
            kind: Cow::Borrowed(kind),
            subject: subject.map(Into::into),
            address: address.map(Into::into),
            reason: reason.map(Cow::Borrowed),
        });
    }
}

/// The lifecycle events (DESIGN.md §4) an operator's change to a device
/// is, for a session that logged in with `via`.
fn operator_events(old: Option<&DeviceRecord>, new: Option<&DeviceRecord>, via: Option<&Via>) -> Vec<Event> {
    let Some(new) = new else {
        return vec![Event::CredentialRevoked];
    };
    let mut events = Vec::new();
    if !new.enabled {
        events.push(Event::Disable);
    }
    if old.is_some_and(|o| o.activated && !new.activated) {
        events.push(Event::ResetActivation);
    }
    let revoked = match via {
        None => false,
        // An operator change to the secret, the activation or the token
        // bumps `secret_version`.
        Some(Via::Secret | Via::ProductSecret | Via::DeviceToken) => {
            old.is_some_and(|o| o.secret_version != new.secret_version)
        }
        Some(Via::Credential(kind, identity)) => !new.holds(*kind, identity),
        Some(Via::AccessToken(_)) => old.is_some_and(|o| o.tokens_revoked_at_ms != new.tokens_revoked_at_ms),
    };
    if revoked || old.is_some_and(|o| o.gateway != new.gateway) {
        events.push(Event::CredentialRevoked);
    }
    events
}

impl Hooks for Engine {
    fn handle_connect(&self, connection: ConnectionId, request: &ConnectRequest<'_>, now_ms: u64) -> ConnectDecision {
        self.connect(connection, request, now_ms)
    }

    fn authorize_publish(&self, connection: ConnectionId, topic: &str, retain: bool, now_ms: u64) -> AccessDecision {
        self.check_publish(connection, topic, retain, now_ms)
    }

    fn handle_message(&self, connection: ConnectionId, topic: &str, payload: &[u8], now_ms: u64) -> MessageDecision {
        self.message(connection, topic, payload, now_ms)
    }

    fn authorize_subscribe(&self, connection: ConnectionId, filter: &str, now_ms: u64) -> AccessDecision {
        self.check_subscribe(connection, filter, now_ms)
    }

    fn handle_unsubscribe(&self, connection: ConnectionId, filter: &str) {
        self.unsubscribe(connection, filter);
    }

    fn authorize_delivery(&self, connection: ConnectionId, topic: &str) -> AccessDecision {
        self.check_delivery(connection, topic)
    }

    fn handle_disconnect(&self, connection: ConnectionId, now_ms: u64) {
        self.disconnect(connection, now_ms);
    }

    fn handle_tick(&self, now_ms: u64) {
        self.tick(now_ms);
    }

    fn server_reference(&self, request: &ConnectRequest<'_>) -> Option<Box<str>> {
        Engine::server_reference(self, request)
    }

    fn metrics_text(&self) -> String {
        let mut out = crate::metrics::Exposition::new();
        self.render_metrics(&mut out, crate::clock::now_ms());
        out.finish()
    }

    fn poll_effect(&self) -> Option<Effect> {
        if self.effect_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut q = self.effects.lock().ok()?;
        let effect = q.pop_front();
        self.effect_count.store(q.len(), Ordering::Release);
        effect
    }
}

#[cfg(test)]
mod tests;
