//! The gate shared by every worker: the engine, and a mailbox per logged-in
//! connection through which effects reach the worker that owns the
//! connection (ntex sessions are `!Send`; the engine is shared).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use devicegate::clock::now_ms;
use devicegate::decision::{AccessDecision, Refusal};
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, Effect, Hooks, MessageDecision};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// What the engine asks of one session.
#[derive(Debug)]
pub enum Delivery {
    /// Send this message to the session, without a subscription.
    Publish {
        /// The topic.
        topic: String,
        /// The payload (may hold a device secret: never log it).
        payload: Vec<u8>,
        /// 0 or 1.
        qos: u8,
    },
    /// Close the session.
    Kick,
}

/// devicegate for an ntex-mqtt server: one per server, shared by its
/// workers. Holds the engine ([`Hooks`]) and routes its effects.
pub struct Gate {
    hooks: Arc<dyn Hooks>,
    mailboxes: DashMap<ConnectionId, UnboundedSender<Delivery>>,
    next_connection: AtomicU64,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("sessions", &self.mailboxes.len()).finish()
    }
}

/// A refused CONNECT: the engine's decision, and for a device assigned to
/// another broker the URL an MQTT 5 CONNACK names as Server Reference.
#[derive(Debug)]
pub struct Refused {
    /// The decision; its outcome gives the CONNACK code.
    pub decision: ConnectDecision,
    /// Where the device belongs (IDENTITIES.md §5), if that is the reason.
    pub server_reference: Option<Box<str>>,
}

/// What to do with a PUBLISH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed: route it to subscribers.
    Route,
    /// Allowed, and the engine answered it itself (activation reply,
    /// gateway request): acknowledge it, route it nowhere.
    Consumed,
    /// Not allowed: v3 closes the connection, v5 answers PUBACK 0x87.
    Denied,
}

impl Gate {
    /// A gate over `hooks` (usually a `devicegate::sync::Authenticator`, of
    /// the `store` feature; an `Engine` over a registry you fill needs none).
    /// Call [`Gate::spawn_ticker`] once so timers run without traffic.
    pub fn new(hooks: Arc<dyn Hooks>) -> Arc<Gate> {
        Arc::new(Gate {
            hooks,
            mailboxes: DashMap::new(),
            next_connection: AtomicU64::new(1),
        })
    }

    /// Starts a thread that advances the engine's timers (activation
    /// retries, idle devices) and delivers effects every `every`; it ends
    /// when the gate is dropped.
    pub fn spawn_ticker(self: &Arc<Self>, every: Duration) -> std::io::Result<std::thread::JoinHandle<()>> {
        devicegate::clock::spawn_ticker(self, every, |gate| {
            gate.hooks.handle_tick(now_ms());
            gate.dispatch();
        })
    }

    /// Decides a CONNECT. On acceptance the returned [`Login`] must live in
    /// the session state, and the receiver be drained into the session
    /// (see [`crate::outlet::deliver`]).
    pub fn login(
        self: &Arc<Self>,
        request: &ConnectRequest<'_>,
    ) -> Result<(Login, UnboundedReceiver<Delivery>), Refused> {
        let connection = ConnectionId(self.next_connection.fetch_add(1, Ordering::Relaxed));
        let decision = self.hooks.handle_connect(connection, request, now_ms());
        if decision != ConnectDecision::Accept {
            let mut server_reference = None;
            if let ConnectDecision::Refuse(reason) = decision {
                tracing::info!(
                    client_id = %String::from_utf8_lossy(request.client_id),
                    address = request.address,
                    "devicegate refused a login: {reason}"
                );
                if reason == Refusal::AssignedElsewhere {
                    server_reference = self.hooks.server_reference(request);
                }
            }
            self.dispatch();
            return Err(Refused {
                decision,
                server_reference,
            });
        }
        let (tx, rx) = unbounded_channel();
        self.mailboxes.insert(connection, tx);
        self.dispatch();
        Ok((
            Login {
                gate: Arc::clone(self),
                connection,
                ended: AtomicBool::new(false),
            },
            rx,
        ))
    }

    /// Moves the engine's pending effects into the sessions' mailboxes.
    /// Effects for sessions already gone are dropped.
    pub fn dispatch(&self) {
        while let Some(effect) = self.hooks.poll_effect() {
            let (connection, delivery) = match effect {
                Effect::Publish {
                    connection,
                    topic,
                    payload,
                    qos,
                    ..
                } => (connection, Delivery::Publish { topic, payload, qos }),
                Effect::Kick { connection, .. } => (connection, Delivery::Kick),
            };
            if let Some(mailbox) = self.mailboxes.get(&connection) {
                let _ = mailbox.send(delivery);
            }
        }
    }
}

/// A logged-in connection's handle on the engine. Keep it in the session
/// state: the connection goes offline when [`Login::end`] is called (on
/// `Control::Stop`) or, at the latest, when the login is dropped.
#[derive(Debug)]
pub struct Login {
    gate: Arc<Gate>,
    connection: ConnectionId,
    ended: AtomicBool,
}

impl Login {
    /// The engine's name for this connection.
    pub fn connection(&self) -> ConnectionId {
        self.connection
    }

    /// May this session publish `payload` on `topic`, and should the broker
    /// route it?
    pub fn publish(&self, topic: &str, payload: &[u8], retain: bool) -> Verdict {
        let hooks = &self.gate.hooks;
        let now = now_ms();
        let verdict = match hooks.authorize_publish(self.connection, topic, retain, now) {
            AccessDecision::Allow => match hooks.handle_message(self.connection, topic, payload, now) {
                MessageDecision::Forward => Verdict::Route,
                MessageDecision::Consume => Verdict::Consumed,
            },
            AccessDecision::Deny | AccessDecision::Defer => {
                tracing::info!(connection = self.connection.0, topic, "devicegate denied a publish");
                Verdict::Denied
            }
        };
        self.gate.dispatch();
        verdict
    }

    /// May this session subscribe with `filter`? Allowed filters are
    /// remembered by the engine (commands are then not delivered twice).
    pub fn subscribe(&self, filter: &str) -> bool {
        let allowed = self.gate.hooks.authorize_subscribe(self.connection, filter, now_ms()) == AccessDecision::Allow;
        if !allowed {
            tracing::info!(
                connection = self.connection.0,
                filter,
                "devicegate denied a subscription"
            );
        }
        allowed
    }

    /// The session unsubscribed from `filter`.
    pub fn unsubscribe(&self, filter: &str) {
        self.gate.hooks.handle_unsubscribe(self.connection, filter);
    }

    /// May a message on `topic` be delivered to this session?
    pub fn may_receive(&self, topic: &str) -> bool {
        self.gate.hooks.authorize_delivery(self.connection, topic) == AccessDecision::Allow
    }

    /// The connection ended: it goes offline. Idempotent.
    pub fn end(&self) {
        if !self.ended.swap(true, Ordering::AcqRel) {
            self.gate.mailboxes.remove(&self.connection);
            self.gate.hooks.handle_disconnect(self.connection, now_ms());
            self.gate.dispatch();
        }
    }
}

impl Drop for Login {
    fn drop(&mut self) {
        self.end();
    }
}
