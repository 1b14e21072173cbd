//! A device, as firmware would be: logs in with its signed triple, or first
//! activates dynamically with the product secret (EnOS securemode 3), then
//! publishes a measurement and prints what the broker sends it.
//!
//! ```sh
//! # a device with its secret
//! cargo run -p devicegate-ntex --example device_client -- 127.0.0.1:1883 Ab3dEf9h dev_0001 --secret S3cretDevice0001
//! # a device created with --no-secret on a product with dynamic activation
//! cargo run -p devicegate-ntex --example device_client -- 127.0.0.1:1883 Ab3dEf9h dev_0002 --product-secret ProdSecret
//! ```
//!
//! Works against any broker with devicegate: the examples `ntex_broker` and
//! `rumqttd_broker`, or Mosquitto with the plugin. The 5 s keep-alive also
//! bounds how long rumqttd holds back the activation push (it rides on the
//! next packet rumqttd sends, at the latest the PINGRESP).

use std::time::Duration;

use devicegate::credentials::{Dialect, LoginSpec, sign_device_login};
use devicegate::sign::HashAlg;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};

type Error = Box<dyn std::error::Error>;

/// Connects with a signed login; `secure_mode` 3 signs with the product secret.
async fn login(
    host: &str,
    port: u16,
    pk: &str,
    dk: &str,
    secret: &str,
    secure_mode: u8,
) -> Result<(AsyncClient, EventLoop), Error> {
    let timestamp = devicegate::clock::now_ms().to_string();
    let signed = sign_device_login(&LoginSpec {
        dialect: Dialect::Enos,
        product_key: pk,
        device_key: dk,
        secret,
        alg: HashAlg::Sha256,
        timestamp: &timestamp,
        secure_mode,
    })?;
    let mut options = MqttOptions::new(signed.client_id, host, port);
    options
        .set_credentials(signed.username, signed.password)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(options, 16);
    loop {
        match events.poll().await? {
            Event::Incoming(Packet::ConnAck(ack)) if ack.code == rumqttc::ConnectReturnCode::Success => {
                println!("connected as {dk}");
                return Ok((client, events));
            }
            Event::Incoming(Packet::ConnAck(ack)) => return Err(format!("login refused: {:?}", ack.code).into()),
            _ => continue,
        }
    }
}

/// Waits for the activation push, answers it, and returns the device secret.
async fn activate(client: &AsyncClient, events: &mut EventLoop, pk: &str, dk: &str) -> Result<String, Error> {
    let info = format!("/ext/session/{pk}/{dk}/thing/activate/info");
    loop {
        let Event::Incoming(Packet::Publish(push)) =
            tokio::time::timeout(Duration::from_secs(30), events.poll()).await??
        else {
            continue;
        };
        if push.topic != info {
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(&push.payload)?;
        let secret = body["params"]["deviceSecret"]
            .as_str()
            .ok_or("the push carries no deviceSecret")?
            .to_owned();
        let reply = serde_json::json!({"id": body["id"], "code": 200, "data": null}).to_string();
        client
            .publish(format!("{info}_reply"), QoS::AtLeastOnce, false, reply)
            .await?;
        // Drive the event loop until the reply is acknowledged.
        while !matches!(events.poll().await?, Event::Incoming(Packet::PubAck(_))) {}
        println!("activated: keep the device secret in the device's storage");
        return Ok(secret);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [address, pk, dk, kind, secret] = args.as_slice() else {
        eprintln!("usage: device_client HOST:PORT PRODUCT_KEY DEVICE_KEY (--secret S | --product-secret S)");
        std::process::exit(2);
    };
    let (host, port) = address.rsplit_once(':').ok_or("HOST:PORT")?;
    let port: u16 = port.parse()?;
    let device_secret = match kind.as_str() {
        "--secret" => secret.clone(),
        "--product-secret" => {
            let (client, mut events) = login(host, port, pk, dk, secret, 3).await?;
            let secret = activate(&client, &mut events, pk, dk).await?;
            client.disconnect().await?;
            secret
        }
        other => return Err(format!("unknown option {other}").into()),
    };
    let (client, mut events) = login(host, port, pk, dk, &device_secret, 2).await?;
    let topic = format!("/sys/{pk}/{dk}/thing/measurepoint/post");
    let body = serde_json::json!({"id": "1", "params": {"measurepoints": {"temperature": 21.5}}}).to_string();
    client.publish(&topic, QoS::AtLeastOnce, false, body).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                println!("published to {topic}");
                return Ok(());
            }
            Ok(Ok(_)) => continue,
            Ok(Err(e)) => return Err(format!("the broker closed the connection: {e}").into()),
            Err(_) => return Err("no PUBACK within 5 s".into()),
        }
    }
}
