//! The background task and the [`Authenticator`] that owns it.
//!
//! The task runs on its own thread with a small tokio runtime, so brokers
//! need no async runtime of their own. It connects (retrying while the
//! database is unreachable), loads the registry, then loops: follow the
//! change feed (Postgres `LISTEN` plus a periodic poll; SQLite by polling),
//! write the engine's state changes behind in batches, reconcile the whole
//! registry now and then, and prune old audit events. Hooks never wait on
//! any of it.

mod cursor;
mod log_gate;
mod node;
mod watch;
mod writer;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::decision::AccessDecision;
use crate::engine::{
    ConnectDecision, ConnectRequest, ConnectionId, Effect, Engine, EngineConfig, Hooks, MessageDecision,
};
use crate::registry::Registry;
use crate::spool::{Spool, spool_path};
use crate::store::{Backend, Change, Entity, Store, StoreError, redact_url};
use cursor::Cursor;
use log_gate::LogGate;
use node::Node;
use watch::{FileState, FileWatch};
use writer::Writer;

/// Timings of the background task.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// How often the change feed is polled (SQLite; Postgres as a fallback to `LISTEN`).
    pub poll_interval: Duration,
    /// How often queued state changes are written.
    pub write_interval: Duration,
    /// The most state changes in one transaction.
    pub write_batch: usize,
    /// How often the whole registry is compared with the database.
    pub reconcile_interval: Duration,
    /// How long audit events are kept.
    pub event_retention: Duration,
    /// Where the spool file goes (state changes the database will not take
    /// yet); `None`: beside an SQLite file, or the system's temporary
    /// directory for Postgres.
    pub spool_dir: Option<std::path::PathBuf>,
    /// How often an SQLite file is checked for deletion or replacement.
    pub watch_interval: Duration,
    /// Open nothing (database, spool) until [`Authenticator::begin`]: a
    /// broker that loads plugins as root and drops privileges afterwards
    /// (Mosquitto) calls it once it runs as its own user, so no file is
    /// created or opened as root.
    pub wait_for_begin: bool,
    /// The keys secrets are sealed with at rest (issue 10 item 6), loaded
    /// by the adapter from its key file option; `None`: plaintext.
    pub secret_keys: Option<Arc<crate::store::SecretKeys>>,
    /// Called on the background thread at the first heartbeat after each
    /// full reconciliation (at start, after every outage or reopened file,
    /// and periodically), which reads and drops a copy of the whole
    /// registry while a reopened pool and a replayed spool come and go.
    /// glibc keeps what was freed unless asked: the soak's live heap stayed
    /// at 6.5 MB while the memory malloc held grew from 17 to 26 MB, and
    /// `malloc_trim` gave 38 MiB of resident memory back down to 21.
    /// Adapters that may call C pass glibc's `malloc_trim` here (this crate
    /// forbids unsafe code); `None`: nothing.
    pub release_memory: Option<fn()>,
    /// This broker's name as a node, for people (`device show` says which
    /// node a device is on): `plugin_opt_node_name`; default `HOST/PID`.
    pub node_name: Option<String>,
    /// How long after its last heartbeat a node counts as gone, its devices
    /// offline (issue 11 item 5). Nodes heartbeat six times per expiry and
    /// sweep expired ones as often: a killed broker's devices are offline
    /// within the expiry plus a sixth of it.
    pub node_expiry: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            poll_interval: Duration::from_millis(500),
            write_interval: Duration::from_millis(50),
            write_batch: 500,
            reconcile_interval: Duration::from_secs(300),
            event_retention: Duration::from_secs(30 * 24 * 3600),
            spool_dir: None,
            watch_interval: Duration::from_secs(1),
            wait_for_begin: false,
            secret_keys: None,
            release_memory: None,
            node_name: None,
            node_expiry: Duration::from_secs(30),
        }
    }
}

/// What the background task last saw of the database, for metrics.
#[derive(Debug, Default)]
struct SyncStatus {
    /// 1 after a successful read of the database, 0 after a failed one.
    up: std::sync::atomic::AtomicBool,
    /// When the change feed was last read successfully, ms.
    synced_at_ms: std::sync::atomic::AtomicU64,
    /// The last change row applied.
    last_change: std::sync::atomic::AtomicI64,
}

impl SyncStatus {
    fn read(&self, result: Result<i64, &StoreError>) {
        use std::sync::atomic::Ordering::Relaxed;
        match result {
            Ok(last) => {
                self.up.store(true, Relaxed);
                self.synced_at_ms.store(now_ms(), Relaxed);
                self.last_change.store(last, Relaxed);
            }
            Err(_) => self.up.store(false, Relaxed),
        }
    }

    fn render(&self, out: &mut crate::metrics::Exposition, now: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        out.family(
            "devicegate_database_up",
            "gauge",
            "1 if the last read of the database succeeded.",
        );
        out.sample("devicegate_database_up", &[], u8::from(self.up.load(Relaxed)));
        let synced = self.synced_at_ms.load(Relaxed);
        out.family(
            "devicegate_change_feed_lag_seconds",
            "gauge",
            "Seconds since the change feed was last read: how stale the registry may be.",
        );
        let lag = if synced == 0 {
            -1.0
        } else {
            now.saturating_sub(synced) as f64 / 1000.0
        };
        out.sample("devicegate_change_feed_lag_seconds", &[], lag);
        out.family(
            "devicegate_change_feed_applied_id",
            "gauge",
            "The last change row applied.",
        );
        out.sample("devicegate_change_feed_applied_id", &[], self.last_change.load(Relaxed));
    }
}

/// The engine plus the background task that feeds it: what a broker
/// adapter constructs. Implements [`Hooks`] by delegating to the engine.
#[derive(Debug)]
pub struct Authenticator {
    engine: Arc<Engine>,
    status: Arc<SyncStatus>,
    stop: Arc<Notify>,
    begin: Arc<Notify>,
    begun: std::sync::atomic::AtomicBool,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Authenticator {
    /// Starts the engine on `database_url`. Returns at once: the database is
    /// opened in the background, retried while unreachable, and logins get
    /// `UNAVAILABLE` until the registry is loaded. Fails only for a URL that
    /// names no supported database, or if the thread cannot start.
    pub fn start(engine: EngineConfig, sync: SyncConfig, database_url: &str) -> Result<Self, StoreError> {
        Backend::of(database_url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(database_url)))?;
        let engine = Arc::new(Engine::new(Arc::new(Registry::new()), engine));
        let (stop, begin) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let (task_engine, task_stop, task_begin) = (Arc::clone(&engine), Arc::clone(&stop), Arc::clone(&begin));
        let status = Arc::new(SyncStatus::default());
        let task_status = Arc::clone(&status);
        let url = database_url.to_owned();
        let thread = std::thread::Builder::new()
            .name("devicegate-sync".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                match runtime {
                    Ok(rt) => rt.block_on(async move {
                        if sync.wait_for_begin {
                            tokio::select! {
                                _ = task_begin.notified() => {}
                                _ = task_stop.notified() => return,
                            }
                        }
                        run(task_engine, sync, url, task_stop, task_status).await
                    }),
                    Err(e) => {
                        tracing::error!("cannot start the devicegate background runtime: {e}")
                    }
                }
            })
            .map_err(|e| StoreError::Invalid(format!("cannot start the devicegate background thread: {e}")))?;
        Ok(Authenticator {
            engine,
            status,
            stop,
            begin,
            begun: std::sync::atomic::AtomicBool::new(false),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Lets a task started with [`SyncConfig::wait_for_begin`] open the
    /// database. Cheap and idempotent: call it from every callback.
    pub fn begin(&self) {
        if !self.begun.swap(true, std::sync::atomic::Ordering::Relaxed) {
            self.begin.notify_one();
        }
    }

    /// The engine, for adapters that need more than the hooks.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Whether the registry has been loaded (logins are served).
    pub fn is_ready(&self) -> bool {
        self.engine.registry().is_loaded()
    }

    /// Stops the background task: flushes queued writes (for up to a few
    /// seconds if the database answers) and joins the thread. Idempotent.
    /// A broker plugin must call this before its library is unloaded.
    pub fn shutdown(&self) {
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            self.stop.notify_one();
            if handle.join().is_err() {
                tracing::error!("the devicegate background thread panicked");
            }
        }
    }
}

impl Drop for Authenticator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Hooks for Authenticator {
    fn handle_connect(&self, connection: ConnectionId, request: &ConnectRequest<'_>, now_ms: u64) -> ConnectDecision {
        self.engine.handle_connect(connection, request, now_ms)
    }
    fn authorize_publish(&self, connection: ConnectionId, topic: &str, retain: bool, now_ms: u64) -> AccessDecision {
        self.engine.authorize_publish(connection, topic, retain, now_ms)
    }
    fn handle_message(&self, connection: ConnectionId, topic: &str, payload: &[u8], now_ms: u64) -> MessageDecision {
        self.engine.handle_message(connection, topic, payload, now_ms)
    }
    fn authorize_subscribe(&self, connection: ConnectionId, filter: &str, now_ms: u64) -> AccessDecision {
        self.engine.authorize_subscribe(connection, filter, now_ms)
    }
    fn handle_unsubscribe(&self, connection: ConnectionId, filter: &str) {
        self.engine.handle_unsubscribe(connection, filter);
    }
    fn authorize_delivery(&self, connection: ConnectionId, topic: &str) -> AccessDecision {
        self.engine.authorize_delivery(connection, topic)
    }
    fn handle_disconnect(&self, connection: ConnectionId, now_ms: u64) {
        self.engine.handle_disconnect(connection, now_ms);
    }
    fn handle_tick(&self, now_ms: u64) {
        self.engine.handle_tick(now_ms);
    }
    fn poll_effect(&self) -> Option<Effect> {
        self.engine.poll_effect()
    }
    fn server_reference(&self, request: &ConnectRequest<'_>) -> Option<Box<str>> {
        self.engine.server_reference(request)
    }
    fn metrics_text(&self) -> String {
        let mut out = crate::metrics::Exposition::new();
        let now = now_ms();
        self.engine.render_metrics(&mut out, now);
        self.status.render(&mut out, now);
        out.finish()
    }
}

/// Sleeps for `delay`; false if asked to stop meanwhile.
async fn pause(stop: &Notify, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.notified() => false,
    }
}

/// Opens the spool for `url`; without one, pending writes stay in memory.
fn open_spool(url: &str, config: &SyncConfig) -> Option<Spool> {
    let path = spool_path(url, config.spool_dir.as_deref());
    Spool::open(&path)
        .map_err(|e| {
            tracing::error!(
                "devicegate cannot open its spool file {}: {e}; while the database refuses writes they wait in \
                 memory only (set plugin_opt_spool_dir to a directory this user may write)",
                path.display()
            )
        })
        .ok()
}

async fn run(engine: Arc<Engine>, config: SyncConfig, url: String, stop: Arc<Notify>, status: Arc<SyncStatus>) {
    let mut writer = Writer::new(open_spool(&url, &config));
    let mut node = Node::new(config.node_name.clone(), config.node_expiry);
    let mut backoff = Duration::from_millis(500);
    let (mut store, mut last_change) = loop {
        let attempt = async {
            let store = Store::connect(&url)
                .await?
                .with_secret_keys(config.secret_keys.clone())
                .with_node(Some(node.id.clone()));
            let last = reconcile(&store, &engine).await?;
            Ok::<_, StoreError>((store, last))
        };
        let attempt = attempt.await;
        status.read(attempt.as_ref().map(|(_, cursor)| cursor.last));
        match attempt {
            Ok(ready) => break ready,
            Err(e) => {
                tracing::warn!("devicegate cannot load its registry, retrying in {backoff:?}: {e}");
                writer.spill(&engine);
                if !pause(&stop, backoff).await {
                    writer.keep_for_next_start(&engine);
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    };
    engine.registry().mark_loaded();
    tracing::info!(
        devices = engine.registry().device_count(),
        "devicegate registry loaded from {}",
        redact_url(&url)
    );
    // The node's row before any presence write names it: writes are
    // flushed in the loop below, logins are served from now on.
    node.beat(&store, &engine).await;
    let mut file = FileWatch::new(&url);
    let mut listener = listen(&store).await;
    // Change rows this broker's own writes added: nothing to reload for them.
    let mut own_changes = std::collections::HashSet::new();
    let mut feed_failing = LogGate::default();
    // Memory to hand back to the system (`SyncConfig::release_memory`).
    let mut release_due = true;
    let mut poll = tokio::time::interval(config.poll_interval);
    let mut writes = tokio::time::interval(config.write_interval);
    let mut reconcile_tick = tokio::time::interval(config.reconcile_interval);
    let mut watch_tick = tokio::time::interval(config.watch_interval);
    let mut prune = tokio::time::interval(Duration::from_secs(3600));
    let mut heartbeat = tokio::time::interval(node.interval());
    reconcile_tick.reset();
    for timer in [
        &mut poll,
        &mut writes,
        &mut reconcile_tick,
        &mut watch_tick,
        &mut prune,
        &mut heartbeat,
    ] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = stop.notified() => break,
            _ = writes.tick() => {
                writer.flush(&mut store, &engine, config.write_batch, &mut own_changes).await;
                if writer.take_reopened() {
                    tracing::info!("devicegate reopened {}; reloading the registry from it", redact_url(&url));
                    match reconcile(&store, &engine).await {
                        Ok(last) => last_change = last,
                        Err(e) => tracing::warn!("devicegate reconciliation failed: {e}"),
                    }
                    release_due = true;
                    listener = listen(&store).await;
                    file.rebase();
                }
            }
            _ = poll.tick(), if !store.is_closed() => {
                let read = follow(&store, &engine, &mut last_change, &mut listener, &mut own_changes, &mut feed_failing).await;
                status.read(read.as_ref().map(|()| last_change.last));
            }
            notified = notification(&mut listener) => {
                if !notified {
                    listener = None;
                }
                if !store.is_closed() {
                    let read = follow(&store, &engine, &mut last_change, &mut listener, &mut own_changes, &mut feed_failing).await;
                    status.read(read.as_ref().map(|()| last_change.last));
                }
            }
            _ = watch_tick.tick() => {
                if file.check() == FileState::Changed {
                    writer.reopen_next(file.companions());
                }
            }
            _ = reconcile_tick.tick(), if !store.is_closed() => {
                if let Err(e) = reconcile(&store, &engine).await {
                    tracing::warn!("devicegate reconciliation failed: {e}");
                }
                release_due = true;
            }
            _ = heartbeat.tick(), if !store.is_closed() => {
                node.beat(&store, &engine).await;
                // A heartbeat after a reconciliation, once what came with it
                // (a reopened pool, a replayed spool, a burst of changes) is
                // done with too: trimming right after the reconciliation
                // left the soak's resident memory stepping up.
                if std::mem::take(&mut release_due)
                    && let Some(release) = config.release_memory
                {
                    release();
                }
            }
            _ = prune.tick(), if !store.is_closed() => {
                let cutoff = now_ms().saturating_sub(config.event_retention.as_millis() as u64);
                if let Err(e) = store.prune_events(cutoff).await {
                    tracing::warn!("devicegate cannot prune old events: {e}");
                }
                writer.prune(&store).await;
            }
        }
    }
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::select! {
        _ = async {
            while engine.pending_store_writes() > 0
                && writer.flush(&mut store, &engine, config.write_batch, &mut own_changes).await == writer::Flushed::All {}
        } => {}
        _ = deadline => {}
    }
    writer.keep_for_next_start(&engine);
    if !store.is_closed() {
        node.leave(&store).await;
    }
    store.close().await;
}

/// Subscribes to `NOTIFY devicegate_changes` on Postgres.
async fn listen(store: &Store) -> Option<sqlx::postgres::PgListener> {
    if store.backend() != Backend::Postgres {
        return None;
    }
    let attempt = async {
        let mut listener = sqlx::postgres::PgListener::connect(store.url()).await?;
        listener.listen("devicegate_changes").await?;
        Ok::<_, sqlx::Error>(listener)
    };
    attempt
        .await
        .map_err(|e| tracing::warn!("devicegate cannot LISTEN for changes, polling only: {e}"))
        .ok()
}

/// Waits for a notification; pends forever without a listener. False if
/// the listener failed.
async fn notification(listener: &mut Option<sqlx::postgres::PgListener>) -> bool {
    match listener {
        Some(l) => l.recv().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// Applies the change feed after `last`. A failure is logged through
/// `failing` (at growing gaps while it lasts), and its end once.
async fn follow(
    store: &Store,
    engine: &Engine,
    last: &mut Cursor,
    listener: &mut Option<sqlx::postgres::PgListener>,
    own_changes: &mut std::collections::HashSet<i64>,
    failing: &mut LogGate,
) -> Result<(), StoreError> {
    if listener.is_none() && store.backend() == Backend::Postgres {
        *listener = listen(store).await;
    }
    let applied = apply_changes(store, engine, last, own_changes).await;
    match &applied {
        Err(e) if failing.due(std::time::Instant::now()) => {
            tracing::warn!("devicegate cannot read the change feed: {e}");
        }
        Ok(()) if failing.reset() => tracing::info!("devicegate reads the change feed again"),
        _ => {}
    }
    applied
}

async fn apply_changes(
    store: &Store,
    engine: &Engine,
    cursor: &mut Cursor,
    own_changes: &mut std::collections::HashSet<i64>,
) -> Result<(), StoreError> {
    // Ids below the cursor that were not visible when it passed them.
    if let Some((low, high)) = cursor.gaps_to_read(now_ms()) {
        for change in store.changes_since(low - 1, high - low + 1).await? {
            if change.id <= high && cursor.fill(change.id) && !own_changes.remove(&change.id) {
                apply_change(store, engine, &change).await?;
            }
        }
    }
    loop {
        let changes = store.changes_since(cursor.last, 1000).await?;
        if changes.is_empty() {
            own_changes.retain(|id| *id > cursor.last);
            return Ok(());
        }
        for change in changes {
            if !own_changes.remove(&change.id) {
                apply_change(store, engine, &change).await?;
            }
            cursor.advance(change.id, now_ms());
        }
    }
}

/// Reloads what `change` names and hands it to the engine.
async fn apply_change(store: &Store, engine: &Engine, change: &Change) -> Result<(), StoreError> {
    let now = now_ms();
    match &change.entity {
        Entity::Product(pk) => engine.apply_product_change(pk, store.product(pk).await?, now),
        Entity::Device(key) => engine.apply_device_change(key, store.device_record(key).await?, now),
        Entity::Principal(name) => engine.apply_principal_change(name, store.principal(name).await?),
        Entity::TokenKey(kid) => engine.apply_token_key_change(kid, store.token_key(kid).await?, now),
        // A bulk import batch: just its devices, never a full reload.
        Entity::Devices {
            product_key,
            device_keys,
        } => {
            for (key, record) in store.device_records(product_key, device_keys).await? {
                engine.apply_device_change(&key, record, now);
            }
        }
    }
    Ok(())
}

/// Makes the registry equal to the database; returns the change id it
/// reflects. The id is read first, so no change between the two is missed.
async fn reconcile(store: &Store, engine: &Engine) -> Result<Cursor, StoreError> {
    let last = store.latest_change().await?;
    // The ids present just below `last` now, before loading: one missing
    // here may commit later and must still be read.
    let window = 1000;
    let present: Vec<i64> = store
        .changes_since(last.saturating_sub(window), window)
        .await?
        .iter()
        .map(|c| c.id)
        .filter(|id| *id <= last)
        .collect();
    let cursor = Cursor::after_load(last, &present, now_ms());
    let now = now_ms();
    let registry = engine.registry();
    let products = store.load_products().await?;
    let mut known: std::collections::HashSet<Box<str>> = registry.product_keys().into_iter().collect();
    for product in products {
        known.remove(&product.key);
        if registry.product(&product.key).as_deref() != Some(&product) {
            let key = product.key.clone();
            engine.apply_product_change(&key, Some(product), now);
        }
    }
    for gone in known {
        engine.apply_product_change(&gone, None, now);
    }
    let mut known: std::collections::HashSet<Box<str>> = registry.device_keys().into_iter().collect();
    for (key, record) in store.load_devices().await? {
        known.remove(key.as_str());
        if registry.device(&key).as_ref() != Some(&record) {
            engine.apply_device_change(&key, Some(record), now);
        }
    }
    for gone in known {
        engine.apply_device_change(&gone, None, now);
    }
    let mut known: std::collections::HashSet<Box<str>> = registry.principal_names().into_iter().collect();
    for principal in store.load_principals().await? {
        known.remove(&principal.name);
        let same = registry
            .principal(&principal.name)
            .is_some_and(|p| p.same_definition(&principal));
        if !same {
            let name = principal.name.clone();
            engine.apply_principal_change(&name, Some(principal));
        }
    }
    for gone in known {
        engine.apply_principal_change(&gone, None);
    }
    let mut known: std::collections::HashSet<Box<str>> = registry.token_key_ids().into_iter().collect();
    for (kid, key) in store.load_token_keys().await? {
        known.remove(kid.as_str());
        if registry.token_key(&kid) != Some(key) {
            engine.apply_token_key_change(&kid, Some(key), now);
        }
    }
    for gone in known {
        engine.apply_token_key_change(&gone, None, now);
    }
    Ok(cursor)
}
