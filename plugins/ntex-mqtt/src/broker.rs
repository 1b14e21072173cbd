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
use ntex_mqtt::{Control, MqttServer, v3 as mqtt3, v5 as mqtt5};
use ntex_service::cfg::SharedCfg;

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

impl From<()> for BrokerError {
    fn from(_: ()) -> Self {
        BrokerError::Payload
    }
}

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

/// The sessions of the worker, for routing.
#[derive(Default)]
struct Routes {
    peers: RefCell<HashMap<ConnectionId, Rc<Peer>>>,
}

impl Routes {
    fn join(&self, peer: &Rc<Peer>) {
        self.peers.borrow_mut().insert(peer.login.connection(), Rc::clone(peer));
    }

    fn leave(&self, peer: &Peer) {
        peer.login.end();
        self.peers.borrow_mut().remove(&peer.login.connection());
    }

    /// Sends a routed message to every session with a matching filter that
    /// may receive it.
    fn route(&self, topic: &str, payload: Bytes, qos: u8) {
        let targets: Vec<Rc<Peer>> = self
            .peers
            .borrow()
            .values()
            .filter(|p| p.filters.borrow().iter().any(|f| filter_matches(f, topic)) && p.login.may_receive(topic))
            .cloned()
            .collect();
        for peer in targets {
            let (topic, payload) = (topic.to_owned(), payload.clone());
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

/// Serves MQTT on `addr` until the process ends, with devicegate deciding
/// every login, publish and subscription. Runs its own ntex system on the
/// calling thread, with one worker (routing is per worker).
pub fn serve(addr: SocketAddr, gate: Arc<Gate>) -> std::io::Result<()> {
    ntex_rt::System::new("devicegate-ntex", ntex_net::DefaultRuntime).block_on(async move {
        ntex_server::net::build()
            .bind("mqtt", addr, SharedCfg::default(), async move |_| {
                let routes = Rc::new(Routes::default());
                let (gate3, gate5) = (Arc::clone(&gate), Arc::clone(&gate));
                let (publish_routes, control_routes, protocol_routes) =
                    (Rc::clone(&routes), Rc::clone(&routes), Rc::clone(&routes));
                let v3 = mqtt3::MqttServer::new(
                    async move |session: &mqtt3::Session<Rc<Peer>>, publish: mqtt3::Publish| {
                        let payload = publish.read_all().await.map_err(|_| BrokerError::Payload)?;
                        let topic = publish.packet().topic.to_string();
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
                                session.filters.borrow_mut().extend(granted.into_iter().map(|(f, _)| f));
                                protocol_routes.join(session);
                                subscribe.ack()
                            }
                            mqtt3::ProtocolMessage::Unsubscribe(unsubscribe) => {
                                let mut filters = session.filters.borrow_mut();
                                for topic in unsubscribe.iter() {
                                    session.login.unsubscribe(topic);
                                    filters.retain(|f| f != topic.as_str());
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
                let (publish_routes, control_routes, protocol_routes) =
                    (Rc::clone(&routes), Rc::clone(&routes), routes);
                let v5 = mqtt5::MqttServer::new(
                    async move |session: &mqtt5::Session<Rc<Peer>>, publish: mqtt5::Publish| {
                        let payload = publish.read_all().await.map_err(|_| BrokerError::Payload)?;
                        let topic = publish.packet().topic.to_string();
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
                                session.filters.borrow_mut().extend(granted.into_iter().map(|(f, _)| f));
                                protocol_routes.join(session);
                                subscribe.ack()
                            }
                            mqtt5::ProtocolMessage::Unsubscribe(mut unsubscribe) => {
                                let mut filters = session.filters.borrow_mut();
                                for entry in unsubscribe.iter_mut() {
                                    let topic = entry.topic().to_string();
                                    session.login.unsubscribe(&topic);
                                    filters.retain(|f| *f != topic);
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
            })?
            .workers(1)
            .run()
            .await
    })
}
