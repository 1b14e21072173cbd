//! The `Protocol` wrapper: rumqttd has no ACL hook, so devicegate reads
//! every packet as rumqttd's codec decodes it and refuses what a device may
//! not do by failing the read, which closes the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use devicegate::clock::now_ms;
use devicegate::decision::AccessDecision;
use devicegate::engine::{ConnectionId, MessageDecision};
use rumqttd::protocol::{Error, Packet, Protocol, Publish};

use crate::gate::{Gate, Slot};

/// rumqttd's codec `P` with devicegate's checks; one clone per connection.
pub struct GatedProtocol<P> {
    gate: Arc<Gate>,
    inner: P,
    slot: Arc<Slot>,
}

impl<P> GatedProtocol<P> {
    pub(crate) fn new(gate: Arc<Gate>, inner: P) -> Self {
        GatedProtocol {
            gate,
            inner,
            slot: Arc::default(),
        }
    }

    fn connection(&self) -> Option<ConnectionId> {
        self.slot.connection.get().copied()
    }
}

/// A new connection gets a fresh slot: rumqttd clones the wrapper it was
/// given once per accepted connection.
impl<P: Clone> Clone for GatedProtocol<P> {
    fn clone(&self) -> Self {
        GatedProtocol::new(Arc::clone(&self.gate), self.inner.clone())
    }
}

/// The error a refusal closes the connection with (rumqttd has none that
/// means "not authorized"; the reason is in devicegate's log line).
fn refused() -> Error {
    Error::InvalidProtocol
}

impl<P: Protocol> Protocol for GatedProtocol<P> {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        if self.slot.kicked.load(Ordering::Acquire) {
            tracing::info!("devicegate: closing a kicked connection");
            return Err(refused());
        }
        let packet = self.inner.read_mut(stream, max_size)?;
        let Some(connection) = self.connection() else {
            if let Packet::Connect(connect, ..) = &packet {
                self.gate.awaiting_decision(&connect.client_id, &self.slot);
            }
            return Ok(packet);
        };
        let hooks = &self.gate.hooks;
        let now = now_ms();
        match &packet {
            Packet::Publish(publish, _) => {
                let topic = std::str::from_utf8(&publish.topic).map_err(|_| Error::TopicNotUtf8)?;
                if hooks.authorize_publish(connection, topic, publish.retain, now) != AccessDecision::Allow {
                    tracing::info!(connection = connection.0, topic, "devicegate denied a publish; closing");
                    return Err(refused());
                }
                // A consumed message (activation reply, gateway request) is
                // still routed: rumqttd cannot drop it here without leaving
                // the client's packet id unacknowledged.
                let _routed =
                    hooks.handle_message(connection, topic, &publish.payload, now) == MessageDecision::Forward;
                self.gate.dispatch();
            }
            Packet::Subscribe(subscribe, _) => {
                for filter in &subscribe.filters {
                    if hooks.authorize_subscribe(connection, &filter.path, now) != AccessDecision::Allow {
                        tracing::info!(
                            connection = connection.0,
                            filter = filter.path,
                            "devicegate denied a subscription; closing"
                        );
                        return Err(refused());
                    }
                }
            }
            Packet::Unsubscribe(unsubscribe, _) => {
                for filter in &unsubscribe.filters {
                    hooks.handle_unsubscribe(connection, filter);
                }
            }
            _ => {}
        }
        Ok(packet)
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        let mut written = self.inner.write(packet, write)?;
        // Effects ride on the next packet rumqttd sends this client (at the
        // latest the PINGRESP of its keep-alive): QoS 0, no subscription.
        let pushes: Vec<_> = self
            .slot
            .pushes
            .lock()
            .map(|mut p| p.drain(..).collect())
            .unwrap_or_default();
        for (topic, payload) in pushes {
            written += self.inner.write(
                Packet::Publish(Publish::new(topic.into_bytes(), payload, false), None),
                write,
            )?;
        }
        Ok(written)
    }
}

impl<P> Drop for GatedProtocol<P> {
    fn drop(&mut self) {
        if let Some(connection) = self.connection() {
            self.gate.disconnected(connection);
        }
    }
}
