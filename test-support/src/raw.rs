//! Hand-built MQTT 3.1.1 CONNECTs over a socket bound to a chosen loopback
//! source address: what an attacker sends, and how tests get logins from
//! several addresses (127.0.0.2, 127.0.0.3, ...) on one machine.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An MQTT 3.1.1 CONNECT packet with the given fields (clean session,
/// 30 s keep-alive).
pub fn connect_packet(client_id: &[u8], username: Option<&[u8]>, password: Option<&[u8]>) -> Vec<u8> {
    let field = |out: &mut Vec<u8>, bytes: &[u8]| {
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.push(4);
    let flags = 0x02 | username.map_or(0, |_| 0x80) | password.map_or(0, |_| 0x40);
    body.push(flags);
    body.extend_from_slice(&30u16.to_be_bytes());
    field(&mut body, client_id);
    if let Some(u) = username {
        field(&mut body, u);
    }
    if let Some(p) = password {
        field(&mut body, p);
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend(body);
    packet
}

/// Opens a connection to `127.0.0.1:port` from `source` (a loopback address).
pub async fn open_from(source: &str, port: u16) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{source}:0").parse().expect("a loopback IPv4 address"))?;
    socket
        .connect(format!("127.0.0.1:{port}").parse().expect("socket address"))
        .await
}

/// Sends `packet` on a new connection from `source` and returns the
/// CONNACK return code, or `None` if the broker closed the connection
/// without one. The connection is kept open (for accepted logins) in the
/// returned stream.
pub async fn connack_from(source: &str, port: u16, packet: &[u8]) -> (Option<u8>, Option<TcpStream>) {
    let Ok(mut stream) = open_from(source, port).await else {
        return (None, None);
    };
    if stream.write_all(packet).await.is_err() {
        return (None, None);
    }
    let mut ack = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut ack)).await {
        Ok(Ok(_)) if ack[0] == 0x20 => (Some(ack[3]), Some(stream)),
        _ => (None, None),
    }
}

/// A signed device login's CONNECT, from `(client id, username, password)`.
pub fn login_packet((client_id, username, password): &(String, String, String)) -> Vec<u8> {
    connect_packet(
        client_id.as_bytes(),
        Some(username.as_bytes()),
        Some(password.as_bytes()),
    )
}

/// Sends `packet` from `source` and ends the sending side, so a broker
/// waiting for the rest of a truncated packet sees the end at once.
/// Returns the CONNACK return code, or `None` if the connection closed
/// without one (within 5 s).
pub async fn send_once(source: &str, port: u16, packet: &[u8]) -> Option<u8> {
    let mut stream = open_from(source, port).await.ok()?;
    stream.write_all(packet).await.ok()?;
    stream.shutdown().await.ok()?;
    let mut ack = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut ack)).await {
        Ok(Ok(_)) if ack[0] == 0x20 => Some(ack[3]),
        _ => None,
    }
}
