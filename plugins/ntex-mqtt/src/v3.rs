//! MQTT 3.1.1 sessions: CONNECT return codes and SUBACK failures.

use std::sync::Arc;

use devicegate::decision::ConnectOutcome;
use ntex_mqtt::v3;

use crate::gate::{Gate, Login};
use crate::outlet::deliver;

/// Decides a v3 CONNECT: on acceptance, acks with the state `session`
/// builds from the [`Login`] and starts delivering effects to the session;
/// otherwise answers CONNACK 2 (bad client id), 3 (registry not loaded),
/// 4 (bad credentials) or 5 (not authorized, and clients without a
/// username, which devicegate does not own) and closes.
pub fn connect<St>(
    gate: &Arc<Gate>,
    connect: v3::Connect,
    session: impl FnOnce(Login, v3::MqttSink) -> St,
) -> v3::ConnectAck<St> {
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
            connect.ack(session(login, sink), false)
        }
        Err(refused) => match refused.decision.outcome() {
            ConnectOutcome::BadClientId => connect.identifier_rejected(),
            ConnectOutcome::BadCredentials => connect.bad_username_or_pwd(),
            ConnectOutcome::Unavailable => connect.service_unavailable(),
            // MQTT 3.1.1 has no "use another server": the device is refused.
            ConnectOutcome::NotAuthorized | ConnectOutcome::UseAnotherServer | ConnectOutcome::Ok => {
                connect.not_authorized()
            }
        },
    }
}

/// Decides each filter of a v3 SUBSCRIBE: granted at the requested QoS,
/// or SUBACK 0x80 for that filter only. Returns the granted filters.
pub fn subscribe(login: &Login, subscribe: &mut v3::control::Subscribe) -> Vec<(String, v3::QoS)> {
    let mut granted = Vec::new();
    for mut filter in subscribe.iter_mut() {
        let topic = filter.topic().to_string();
        if login.subscribe(&topic) {
            let qos = filter.qos();
            filter.confirm(qos);
            granted.push((topic, qos));
        } else {
            filter.fail();
        }
    }
    granted
}
