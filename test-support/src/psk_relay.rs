//! A TLS-PSK client for MQTT clients that have none (rumqttc: rustls has
//! no PSK): a local TCP port whose every connection is carried to the
//! broker's PSK listener by a real `openssl s_client -psk` process, so the
//! shared scenarios run unchanged over a PSK handshake.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running relay; stops accepting when dropped.
#[derive(Debug)]
pub struct PskRelay {
    /// The local port to connect to with plain MQTT.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for PskRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether `openssl` can run; fails the test with an install hint if not.
fn require_openssl() {
    let found = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(found, "the openssl command is missing: `apt-get install openssl`");
}

impl PskRelay {
    /// Relays to `127.0.0.1:broker_port` with the PSK `identity` and `key`
    /// (hex), TLS 1.3.
    pub fn start(broker_port: u16, identity: &str, key: &str) -> PskRelay {
        require_openssl();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port for the PSK relay");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("the relay's address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (identity, key, halt) = (identity.to_owned(), key.to_owned(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => carry(stream, broker_port, &identity, &key),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        PskRelay { port, stop }
    }
}

/// Carries one connection through its own `openssl s_client`.
fn carry(stream: TcpStream, broker_port: u16, identity: &str, key: &str) {
    let _ = stream.set_nonblocking(false);
    let child = Command::new("openssl")
        .args(["s_client", "-quiet", "-nocommands", "-tls1_3", "-connect"])
        .arg(format!("127.0.0.1:{broker_port}"))
        .args(["-psk", key, "-psk_identity", identity])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    };
    let (Some(mut to_broker), Some(mut from_broker)) = (child.stdin.take(), child.stdout.take()) else {
        let _ = child.kill();
        return;
    };
    let (Ok(mut from_client), Ok(mut to_client)) = (stream.try_clone(), stream.try_clone()) else {
        let _ = child.kill();
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_client.read(&mut buf) {
            if to_broker.write_all(&buf[..n]).and_then(|()| to_broker.flush()).is_err() {
                break;
            }
        }
        // The MQTT client went away: end the TLS connection too.
        let _ = child.kill();
        let _ = child.wait();
    });
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n @ 1..) = from_broker.read(&mut buf) {
            if to_client.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        // The broker closed the TLS connection (or the handshake failed).
        let _ = to_client.shutdown(Shutdown::Both);
    });
}
