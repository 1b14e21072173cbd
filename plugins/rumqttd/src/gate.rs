//! The gate shared by every rumqttd connection: the engine, the handshake
//! between the `Protocol` wrapper (which sees CONNECT first) and the auth
//! handler (which decides it), and each logged-in connection's slot for
//! effects.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use dashmap::DashMap;
use devicegate::clock::now_ms;
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Effect, Hooks};

use crate::protocol::GatedProtocol;

/// One network connection's share of the gate, owned by its protocol
/// wrapper: the engine's connection once the login is accepted, and what
/// the engine asked for it.
#[derive(Debug, Default)]
pub(crate) struct Slot {
    pub connection: OnceLock<ConnectionId>,
    pub kicked: AtomicBool,
    /// Messages to write to the client with its next outgoing packet.
    pub pushes: Mutex<VecDeque<(String, Vec<u8>)>>,
}

/// devicegate for an embedded rumqttd: one per broker.
pub struct Gate {
    pub(crate) hooks: Arc<dyn Hooks>,
    /// CONNECTs read by a wrapper and not yet decided, by client id.
    awaiting: Mutex<HashMap<String, Weak<Slot>>>,
    slots: DashMap<ConnectionId, Weak<Slot>>,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("connections", &self.slots.len()).finish()
    }
}

impl Gate {
    /// A gate over `hooks` (usually a `devicegate::sync::Authenticator`, of
    /// the `store` feature; an `Engine` over a registry you fill needs none).
    pub fn new(hooks: Arc<dyn Hooks>) -> Arc<Gate> {
        Arc::new(Gate {
            hooks,
            awaiting: Mutex::new(HashMap::new()),
            slots: DashMap::new(),
            next_connection: AtomicU64::new(1),
        })
    }

    /// The wrapper for rumqttd's codec (`V4` or `V5`) to give `Server::new`:
    /// rumqttd clones it for every connection.
    pub fn protocol<P>(self: &Arc<Self>, inner: P) -> GatedProtocol<P> {
        GatedProtocol::new(Arc::clone(self), inner)
    }

    /// The function for `ConnectionSettings::set_auth_handler`: decides the
    /// login of the connection whose CONNECT the wrapper just read.
    pub fn auth_handler(
        self: &Arc<Self>,
    ) -> impl Fn(String, String, String) -> std::future::Ready<bool> + Send + Sync + 'static {
        let gate = Arc::clone(self);
        move |client_id, username, password| std::future::ready(gate.decide(&client_id, &username, &password))
    }

    /// Starts a thread that advances the engine's timers and hands effects
    /// to their connections every `every`; it ends when the gate is dropped.
    pub fn spawn_ticker(self: &Arc<Self>, every: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
        devicegate::clock::spawn_ticker(self, every, |gate| {
            gate.hooks.handle_tick(now_ms());
            gate.dispatch();
        })
    }

    /// A wrapper read CONNECT from `client_id`.
    pub(crate) fn awaiting_decision(&self, client_id: &str, slot: &Arc<Slot>) {
        if let Ok(mut awaiting) = self.awaiting.lock() {
            awaiting.retain(|_, slot| slot.strong_count() > 0);
            awaiting.insert(client_id.to_owned(), Arc::downgrade(slot));
        }
    }

    fn decide(&self, client_id: &str, username: &str, password: &str) -> bool {
        let slot = self
            .awaiting
            .lock()
            .ok()
            .and_then(|mut a| a.remove(client_id))
            .and_then(|s| s.upgrade());
        let Some(slot) = slot else {
            tracing::warn!(client_id, "devicegate: a login without its CONNECT; refused");
            return false;
        };
        let connection = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let request = ConnectRequest::new(
            client_id.as_bytes(),
            Some(username.as_bytes()),
            Some(password.as_bytes()),
            None,
        );
        let decision = self.hooks.handle_connect(connection, &request, now_ms());
        if let ConnectDecision::Refuse(reason) = decision {
            tracing::info!(client_id, "devicegate refused a login: {reason}");
        }
        let mut accepted = decision == ConnectDecision::Accept;
        if accepted && slot.connection.set(connection).is_err() {
            // A second CONNECT on one connection: MQTT forbids it.
            self.hooks.handle_disconnect(connection, now_ms());
            accepted = false;
        }
        if accepted {
            self.slots.insert(connection, Arc::downgrade(&slot));
        }
        self.dispatch();
        accepted
    }

    /// The connection ended.
    pub(crate) fn disconnected(&self, connection: ConnectionId) {
        self.slots.remove(&connection);
        self.hooks.handle_disconnect(connection, now_ms());
        self.dispatch();
    }

    /// Hands the engine's effects to their connections' slots.
    pub(crate) fn dispatch(&self) {
        while let Some(effect) = self.hooks.poll_effect() {
            let connection = match &effect {
                Effect::Publish { connection, .. } | Effect::Kick { connection, .. } => *connection,
            };
            let Some(slot) = self.slots.get(&connection).and_then(|s| s.upgrade()) else {
                continue;
            };
            match effect {
                Effect::Publish { topic, payload, .. } => {
                    if let Ok(mut pushes) = slot.pushes.lock() {
                        pushes.push_back((topic, payload));
                    }
                }
                Effect::Kick { .. } => slot.kicked.store(true, Ordering::Release),
            }
        }
    }
}
