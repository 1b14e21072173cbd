//! A TLS client for MQTT clients built without one (rumqttc here; rustls
//! has no PSK at all): a local TCP port whose every connection is carried
//! to the broker's TLS listener by a real `openssl s_client` process, with
//! a pre-shared key or a client certificate, so the shared scenarios run
//! unchanged over either handshake.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running relay; stops accepting when dropped.
#[derive(Debug)]
pub struct TlsRelay {
    /// The local port to connect to with plain MQTT.
    pub port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for TlsRelay {
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

impl TlsRelay {
    /// Relays to `127.0.0.1:broker_port` with the PSK `identity` and `key`
    /// (hex), TLS 1.3.
    pub fn psk(broker_port: u16, identity: &str, key: &str) -> TlsRelay {
        TlsRelay::start(
            broker_port,
            vec!["-psk".into(), key.into(), "-psk_identity".into(), identity.into()],
        )
    }

    /// Relays to `127.0.0.1:broker_port` presenting the certificate `cert`
    /// with its key `key` (PEM files), checking the broker's certificate
    /// against `ca`.
    pub fn certificate(
        broker_port: u16,
        ca: &std::path::Path,
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> TlsRelay {
        let path = |p: &std::path::Path| p.display().to_string();
        TlsRelay::start(
            broker_port,
            vec![
                "-CAfile".into(),
                path(ca),
                "-verify_return_error".into(),
                "-cert".into(),
                path(cert),
                "-key".into(),
                path(key),
            ],
        )
    }

    fn start(broker_port: u16, tls_args: Vec<String>) -> TlsRelay {
        require_openssl();
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port for the PSK relay");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("the relay's address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => carry(stream, broker_port, &tls_args),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TlsRelay { port, stop }
    }
}

/// Carries one connection through its own `openssl s_client`.
fn carry(stream: TcpStream, broker_port: u16, tls_args: &[String]) {
    let _ = stream.set_nonblocking(false);
    let child = Command::new("openssl")
        .args(["s_client", "-quiet", "-nocommands", "-tls1_3", "-connect"])
        .arg(format!("127.0.0.1:{broker_port}"))
        .args(tls_args)
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
