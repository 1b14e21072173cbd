//! MQTT 5 sessions: CONNACK reasons, SUBACK 0x87 per filter, PUBACK 0x87.

use std::sync::Arc;

use devicegate::decision::ConnectOutcome;
use ntex_mqtt::v5;
use ntex_mqtt::v5::codec::{ConnectAckReason, PublishAckReason, SubscribeAckReason};

use crate::gate::{Gate, Login};
use crate::outlet::deliver;

/// Decides a v5 CONNECT: on acceptance, acks with the state `session`
/// builds and starts delivering effects to the session; otherwise answers
/// 0x85 (client id), 0x86 (credentials), 0x87 (not authorized; also
/// clients without a username), 0x88 (registry not loaded) or 0x9C with
/// the Server Reference (a device assigned to another broker) and closes.
pub fn connect<St>(
    gate: &Arc<Gate>,
    connect: v5::Connect,
    session: impl FnOnce(Login, v5::MqttSink) -> St,
) -> v5::ConnectAck<St> {
    let packet = connect.packet();
    let decided = crate::login(
        gate,
        connect.io(),
        &packet.client_id,
        packet.username.as_ref(),
        packet.password.as_ref(),
    );
    match decided {
        Ok((login, mailbox)) => {
            let sink = connect.sink();
            ntex_rt::spawn(deliver(mailbox, sink.clone()));
            connect.ack(session(login, sink))
        }
        Err(refused) => connect
            .failed(match refused.decision.outcome() {
                ConnectOutcome::BadClientId => ConnectAckReason::ClientIdentifierNotValid,
                ConnectOutcome::BadCredentials => ConnectAckReason::BadUserNameOrPassword,
                ConnectOutcome::Unavailable => ConnectAckReason::ServerUnavailable,
                ConnectOutcome::UseAnotherServer => ConnectAckReason::UseAnotherServer,
                ConnectOutcome::NotAuthorized | ConnectOutcome::Ok => ConnectAckReason::NotAuthorized,
            })
            .with(|ack| ack.server_reference = refused.server_reference.map(|url| (&*url).into())),
    }
}

/// Decides each filter of a v5 SUBSCRIBE: granted at the requested QoS,
/// or SUBACK 0x87 (not authorized) for that filter only. Returns the
/// granted filters.
pub fn subscribe(login: &Login, subscribe: &mut v5::control::Subscribe) -> Vec<(String, v5::QoS)> {
    let mut granted = Vec::new();
    for mut filter in subscribe.iter_mut() {
        let topic = filter.topic().to_string();
        if login.subscribe(&topic) {
            let qos = filter.options().qos;
            filter.confirm(qos);
            granted.push((topic, qos));
        } else {
            filter.fail(SubscribeAckReason::NotAuthorized);
        }
    }
    granted
}

/// The PUBACK for a denied v5 publish: 0x87, the connection stays open.
pub fn denied(publish: v5::Publish) -> v5::PublishAck {
    publish.ack().reason_code(PublishAckReason::NotAuthorized)
}
