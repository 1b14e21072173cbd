//! `plugin_opt_metrics_listen ADDRESS:PORT` (issue 12 item 2): a small
//! HTTP endpoint on its own thread serving the Prometheus text format at
//! `/metrics`. The broker thread only counts (atomics); rendering and the
//! socket are this thread's.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use devicegate::engine::Hooks;
use devicegate::sync::Authenticator;

/// The running endpoint; stopped and joined by [`MetricsEndpoint::stop`].
#[derive(Debug)]
pub struct MetricsEndpoint {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsEndpoint {
    /// Listens on `address` and serves `auth`'s metrics and the callback
    /// times. Fails (init fails, naming the option) if it cannot bind.
    pub fn start(address: SocketAddr, auth: Arc<Authenticator>) -> Result<Self, String> {
        let listener = TcpListener::bind(address)
            .map_err(|e| format!("plugin_opt_metrics_listen: cannot listen on {address}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("plugin_opt_metrics_listen: {e}"))?;
        crate::stats::enable_for_metrics();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("devicegate-metrics".to_owned())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &auth),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => {
                            tracing::warn!("metrics endpoint: {e}");
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
            })
            .map_err(|e| format!("plugin_opt_metrics_listen: cannot start its thread: {e}"))?;
        tracing::info!("metrics at http://{address}/metrics");
        Ok(MetricsEndpoint {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request: `GET /metrics` gets the exposition, anything else
/// 404. Reads at most 8 KiB of request, waiting at most 2 s.
fn serve(mut stream: TcpStream, auth: &Authenticator) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    let (status, body) = if request.starts_with(b"GET /metrics ") || request.starts_with(b"GET /metrics?") {
        let mut text = auth.metrics_text();
        let mut callbacks = devicegate::metrics::Exposition::new();
        crate::stats::render(&mut callbacks);
        text.push_str(&callbacks.finish());
        ("200 OK", text)
    } else {
        ("404 Not Found", "only GET /metrics is served here\n".to_owned())
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
