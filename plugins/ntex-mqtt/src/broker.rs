//! A small, complete MQTT broker on ntex-mqtt with devicegate in front:
//! v3.1.1 and v5 on one listener, subscriptions and routing in memory on
//! one worker, QoS 0 and 1, no retained messages and no persistent
//! sessions. It is the example `ntex_broker` and what the tests run; a real
//! server keeps its own routing and calls this crate the same way.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use devicegate::acl::filter_matches;
use devicegate::engine::ConnectionId;
use ntex_bytes::Bytes;
use ntex_mqtt::{Control, MqttConnectError, MqttError, MqttServer, v3 as mqtt3, v5 as mqtt5};
use ntex_service::cfg::SharedCfg;
use ntex_tls::rustls::TlsAcceptor;

use crate::gate::{Gate, Login, Verdict};
use crate::outlet::Outlet;

/// Why the broker closes a connection.
#[derive(Debug)]
pub enum BrokerError {
    /// A v3 client published where it may not (3.1.1 has no negative PUBACK).
    Denied,
    /// The payload could not be read.
    Payload,
}

/// ntex-mqtt asks whether a v5 publish error can be answered with a
/// PUBACK: a `BrokerError` cannot (denials are answered as PUBACK 0x87
/// before they become errors), so the connection closes.
impl TryFrom<BrokerError> for mqtt5::PublishAck {
    type Error = BrokerError;

    fn try_from(err: BrokerError) -> Result<Self, Self::Error> {
        Err(err)
    }
}

/// A session's way back to its client.
#[derive(Clone)]
enum Sink {
    V3(mqtt3::MqttSink),
    V5(mqtt5::MqttSink),
}

/// One connected client: its login, its sink, its granted filters.
pub struct Peer {
    login: Login,
    sink: Sink,
    filters: RefCell<Vec<String>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("connection", &self.login.connection())
            .finish()
    }
}

/// The sessions of the worker and their subscriptions, for routing:
/// filters without wildcards are looked up by topic, the others scanned.
#[derive(Default)]
struct Routes {
    peers: RefCell<HashMap<ConnectionId, Rc<Peer>>>,
    exact: RefCell<HashMap<String, Vec<ConnectionId>>>,
    wildcard: RefCell<Vec<(String, ConnectionId)>>,
}

fn has_wildcard(filter: &str) -> bool {
    filter.contains(['+', '#']) || filter.starts_with('$')
}

impl Routes {
    /// `peer` was granted `filters`.
    fn subscribe(&self, peer: &Rc<Peer>, filters: Vec<String>) {
        let connection = peer.login.connection();
        self.peers.borrow_mut().insert(connection, Rc::clone(peer));
        for filter in filters {
            if peer.filters.borrow().contains(&filter) {
                continue;
            }
            if has_wildcard(&filter) {
                self.wildcard.borrow_mut().push((filter.clone(), connection));
            } else {
                self.exact
                    .borrow_mut()
                    .entry(filter.clone())
                    .or_default()
                    .push(connection);
            }
            peer.filters.borrow_mut().push(filter);
        }
    }

    /// `peer` unsubscribed from `filter`.
    fn unsubscribe(&self, peer: &Peer, filter: &str) {
        let connection = peer.login.connection();
        peer.login.unsubscribe(filter);
        peer.filters.borrow_mut().retain(|f| f != filter);
        if has_wildcard(filter) {
            self.wildcard
                .borrow_mut()
                .retain(|(f, c)| !(f == filter && *c == connection));
        } else if let Some(subscribers) = self.exact.borrow_mut().get_mut(filter) {
            subscribers.retain(|c| *c != connection);
        }
    }

    /// The connection ended: it goes offline and its subscriptions go.
    fn leave(&self, peer: &Peer) {
        peer.login.end();
        let filters = peer.filters.borrow().clone();
        for filter in filters {
            self.unsubscribe(peer, &filter);
        }
        self.peers.borrow_mut().remove(&peer.login.connection());
    }

    /// Sends a routed message to every session with a matching filter that
    /// may receive it (once, however many of its filters match).
    fn route(&self, topic: &str, payload: Bytes, qos: u8) {
        let mut connections: Vec<ConnectionId> = self.exact.borrow().get(topic).cloned().unwrap_or_default();
        connections.extend(
            self.wildcard
                .borrow()
                .iter()
                .filter(|(filter, _)| filter_matches(filter, topic))
                .map(|(_, c)| *c),
        );
        connections.sort_unstable();
        connections.dedup();
        let peers = self.peers.borrow();
        for peer in connections.iter().filter_map(|c| peers.get(c)) {
            if !peer.login.may_receive(topic) {
                continue;
            }
            if qos == 0 {
                let _sent = match &peer.sink {
                    Sink::V3(sink) => sink
                        .publish(topic.to_owned())
                        .send_at_most_once(payload.clone())
                        .is_ok(),
                    Sink::V5(sink) => sink
                        .publish(topic.to_owned())
                        .send_at_most_once(payload.clone())
                        .is_ok(),
                };
                continue;
            }
            let (peer, topic, payload) = (Rc::clone(peer), topic.to_owned(), payload.clone());
            ntex_rt::spawn(async move {
                match &peer.sink {
                    Sink::V3(sink) => sink.send(topic, payload, qos).await,
                    Sink::V5(sink) => sink.send(topic, payload, qos).await,
                };
            });
        }
    }
}

fn qos_number(qos: mqtt3::QoS) -> u8 {
    match qos {
        mqtt3::QoS::AtMostOnce => 0,
        _ => 1,
    }
}

/// Where [`serve_listeners`] listens.
#[derive(Debug, Clone, Default)]
pub struct Listeners {
    /// Plain MQTT.
    pub plain: Option<SocketAddr>,
    /// MQTT over TLS, with the server configuration (see
    /// [`crate::tls::server_config`]: client certificates required).
    pub tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
}

/// Serves plain MQTT on `addr` until the process ends, with devicegate
/// deciding every login, publish and subscription. Runs its own ntex
/// system on the calling thread, with one worker (routing is per worker).
pub fn serve(addr: SocketAddr, gate: Arc<Gate>) -> std::io::Result<()> {
    serve_listeners(
        Listeners {
            plain: Some(addr),
            tls: None,
        },
        gate,
    )
}

/// [`serve`] on a plain listener, a TLS listener, or both; devices on the
/// TLS listener may log in with their client certificate alone.
pub fn serve_listeners(listeners: Listeners, gate: Arc<Gate>) -> std::io::Result<()> {
    ntex_rt::System::new("devicegate-ntex", ntex_net::DefaultRuntime).block_on(async move {
        let mut server = ntex_server::net::build();
        if let Some(addr) = listeners.plain {
            let gate = Arc::clone(&gate);
            server = server.bind("mqtt", addr, SharedCfg::default(), async move |_| {
                app(Arc::clone(&gate))
            })?;
        }
        if let Some((addr, config)) = listeners.tls {
            server = server.bind("mqtts", addr, SharedCfg::new("mqtts"), async move |_| {
                ntex_service::service(TlsAcceptor::new(Arc::clone(&config)))
                    .map_err(|err: std::io::Error| {
                        tracing::info!("TLS handshake refused: {err}");
                        MqttError::<BrokerError>::Connect(MqttConnectError::Disconnected(Some(err)))
                    })
                    .and_then(app(Arc::clone(&gate)))
            })?;
        }
        server.workers(1).run().await
    })
}

thread_local! {
    /// The one worker's sessions and subscriptions, shared by its listeners.
    static ROUTES: Rc<Routes> = Rc::new(Routes::default());
}

/// The MQTT service of one connection, for a plain or a TLS listener.
fn app<Req>(gate: Arc<Gate>) -> impl ntex_service::Service<(), Req, Res = (), Error = MqttError<BrokerError>>
where
    Req: ntex_service::RequestState<ntex_io::IoBoxed, State = ()>,
{
    let routes = ROUTES.with(Rc::clone);
    let (gate3, gate5) = (Arc::clone(&gate), Arc::clone(&gate));
    let (publish_routes, control_routes, protocol_routes) =
        (Rc::clone(&routes), Rc::clone(&routes), Rc::clone(&routes));
    let v3 = mqtt3::MqttServer::new(
        async move |session: &mqtt3::Session<Rc<Peer>>, publish: mqtt3::Publish| {
            let payload = publish.read_all().await.map_err(|_| BrokerError::Payload)?;
            let topic = publish.packet().topic.clone();
            match session.login.publish(&topic, &payload, publish.retain()) {
                Verdict::Denied => Err(BrokerError::Denied),
                Verdict::Consumed => Ok(()),
                Verdict::Route => {
                    publish_routes.route(&topic, payload, qos_number(publish.qos()));
                    Ok(())
                }
            }
        },
    )
    .protocol(
        async move |session: &mqtt3::Session<Rc<Peer>>, message: mqtt3::ProtocolMessage| {
            Ok::<_, BrokerError>(match message {
                mqtt3::ProtocolMessage::Subscribe(mut subscribe) => {
                    let granted = crate::v3::subscribe(&session.login, &mut subscribe);
                    protocol_routes.subscribe(session, granted.into_iter().map(|(f, _)| f).collect());
                    subscribe.ack()
                }
                mqtt3::ProtocolMessage::Unsubscribe(unsubscribe) => {
                    for topic in unsubscribe.iter() {
                        protocol_routes.unsubscribe(session, topic);
                    }
                    unsubscribe.ack()
                }
                other => other.ack(),
            })
        },
    )
    .control(
        async move |session: &mqtt3::Session<Rc<Peer>>, control: Control<BrokerError>| {
            if let Control::Stop(_) = &control {
                control_routes.leave(session);
            }
            Ok::<_, BrokerError>(None)
        },
    )
    .build(async move |connect: mqtt3::Connect| {
        Ok::<_, BrokerError>(crate::v3::connect(&gate3, connect, |login, sink| {
            Rc::new(Peer {
                login,
                sink: Sink::V3(sink),
                filters: RefCell::new(Vec::new()),
            })
        }))
    });
    let (publish_routes, control_routes, protocol_routes) = (Rc::clone(&routes), Rc::clone(&routes), routes);
    let v5 = mqtt5::MqttServer::new(
        async move |session: &mqtt5::Session<Rc<Peer>>, publish: mqtt5::Publish| {
            let payload = publish.read_all().await.map_err(|_| BrokerError::Payload)?;
            let topic = publish.packet().topic.clone();
            match session.login.publish(&topic, &payload, publish.packet().retain) {
                Verdict::Denied => Ok::<_, BrokerError>(crate::v5::denied(publish)),
                Verdict::Consumed => Ok(publish.ack()),
                Verdict::Route => {
                    publish_routes.route(&topic, payload, qos_number(publish.packet().qos));
                    Ok(publish.ack())
                }
            }
        },
    )
    .protocol(
        async move |session: &mqtt5::Session<Rc<Peer>>, message: mqtt5::ProtocolMessage| {
            Ok::<_, BrokerError>(match message {
                mqtt5::ProtocolMessage::Subscribe(mut subscribe) => {
                    let granted = crate::v5::subscribe(&session.login, &mut subscribe);
                    protocol_routes.subscribe(session, granted.into_iter().map(|(f, _)| f).collect());
                    subscribe.ack()
                }
                mqtt5::ProtocolMessage::Unsubscribe(mut unsubscribe) => {
                    for entry in unsubscribe.iter_mut() {
                        protocol_routes.unsubscribe(session, entry.topic());
                    }
                    unsubscribe.ack()
                }
                other => other.ack(),
            })
        },
    )
    .control(
        async move |session: &mqtt5::Session<Rc<Peer>>, control: Control<BrokerError>| {
            if let Control::Stop(_) = &control {
                control_routes.leave(session);
            }
            Ok::<_, BrokerError>(None)
        },
    )
    .build(async move |connect: mqtt5::Connect| {
        Ok::<_, BrokerError>(crate::v5::connect(&gate5, connect, |login, sink| {
            Rc::new(Peer {
                login,
                sink: Sink::V5(sink),
                filters: RefCell::new(Vec::new()),
            })
        }))
    });
    MqttServer::new().v3(v3).v5(v5)
}
