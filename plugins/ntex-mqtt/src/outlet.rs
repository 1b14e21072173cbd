//! Carrying out effects on a session: the per-connection task that reads
//! the session's mailbox and publishes to, or closes, its sink.

use ntex_bytes::Bytes;
use ntex_mqtt::{v3, v5};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::gate::Delivery;

/// A session's sink, v3 or v5.
pub trait Outlet {
    /// Sends `payload` on `topic` with QoS 0 or 1; false if the session is gone.
    fn send(&self, topic: String, payload: Bytes, qos: u8) -> impl Future<Output = bool>;
    /// Closes the connection.
    fn close(&self);
}

impl Outlet for v3::MqttSink {
    async fn send(&self, topic: String, payload: Bytes, qos: u8) -> bool {
        let message = self.publish(topic);
        if qos == 0 {
            message.send_at_most_once(payload).is_ok()
        } else {
            message.send_at_least_once(payload).await.is_ok()
        }
    }

    fn close(&self) {
        v3::MqttSink::close(self);
    }
}

impl Outlet for v5::MqttSink {
    async fn send(&self, topic: String, payload: Bytes, qos: u8) -> bool {
        let message = self.publish(topic);
        if qos == 0 {
            message.send_at_most_once(payload).is_ok()
        } else {
            message.send_at_least_once(payload).await.is_ok()
        }
    }

    fn close(&self) {
        v5::MqttSink::close(self);
    }
}

/// Carries out the session's deliveries until its mailbox closes (the
/// login ended) or the session is gone. Spawn it on the connection's worker
/// (`ntex_rt::spawn`) right after the CONNECT is accepted.
pub async fn deliver(mut mailbox: UnboundedReceiver<Delivery>, outlet: impl Outlet) {
    while let Some(delivery) = mailbox.recv().await {
        match delivery {
            Delivery::Publish { topic, payload, qos } => {
                if !outlet.send(topic, Bytes::from(payload), qos).await {
                    break;
                }
            }
            Delivery::Kick => {
                outlet.close();
                break;
            }
        }
    }
}
