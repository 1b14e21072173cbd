//! `devicegate serve` as a process on a free port, and an HTTP client
//! (reqwest) for it: what the service's own tests and the broker tests of
//! the provisioning flows (IDENTITIES.md §4–§7) drive.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use reqwest::Method;
use serde_json::Value;

use crate::cli_binary;

/// How long the service may take to answer `/healthz` after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `devicegate serve`.
pub struct Service {
    child: Option<Child>,
    /// The service's log (its stderr), shown when a test fails.
    log: tempfile::NamedTempFile,
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub base: String,
    client: reqwest::Client,
}

/// An answer: status, JSON body (`Null` when empty or not JSON), headers.
#[derive(Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body as JSON; `Null` when empty or not JSON.
    pub body: Value,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Asserts the status and the error shape; returns the detail.
    #[track_caller]
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        let detail = self.body["errors"]["detail"]
            .as_str()
            .unwrap_or_else(|| panic!("no {{\"errors\":{{\"detail\"}}}} in {self:?}"));
        assert!(!detail.is_empty());
        detail.to_owned()
    }

    /// Asserts the status; returns the body.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        &self.body
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Service {
    /// Starts `devicegate serve` on `database_url` with `extra` arguments,
    /// over plain HTTP.
    pub async fn start(database_url: &str, extra: &[&str]) -> Service {
        Service::start_with(database_url, extra, "http", reqwest::Client::new()).await
    }

    /// Starts it over HTTPS (`extra` names the TLS files); `client` trusts
    /// its certificate.
    pub async fn start_tls(database_url: &str, extra: &[&str], client: reqwest::Client) -> Service {
        Service::start_with(database_url, extra, "https", client).await
    }

    async fn start_with(database_url: &str, extra: &[&str], scheme: &str, client: reqwest::Client) -> Service {
        // A port found free may be taken before serve binds it: try again.
        for _ in 0..3 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let log = tempfile::NamedTempFile::new().expect("a log file");
            let child = Command::new(cli_binary())
                .args(["--database-url", database_url, "serve", "--listen", &listen])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(log.reopen().expect("the log file")))
                .spawn()
                .expect("devicegate serve starts");
            let mut service = Service {
                child: Some(child),
                log,
                base: format!("{scheme}://127.0.0.1:{port}"),
                client: client.clone(),
            };
            if service.wait_ready().await {
                return service;
            }
        }
        panic!("devicegate serve did not start (its log is above)");
    }

    /// Polls `/healthz` until it answers 200; false if the process exited.
    async fn wait_ready(&mut self) -> bool {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
                eprintln!("devicegate serve exited with {status}:\n{log}");
                self.child = None;
                return false;
            }
            if let Ok(r) = self.client.get(format!("{}/healthz", self.base)).send().await
                && r.status().as_u16() == 200
            {
                return true;
            }
            assert!(started.elapsed() < START_TIMEOUT, "/healthz did not answer in time");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends a request; `body` is sent as is (JSON content type).
    pub async fn send(&self, method: Method, path: &str, bearer: Option<&str>, body: Option<Vec<u8>>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("the service answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        Reply {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        }
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, bearer: Option<&str>, body: &Value) -> Reply {
        self.send(Method::POST, path, bearer, Some(body.to_string().into_bytes()))
            .await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.send(Method::GET, path, bearer, None).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str, bearer: Option<&str>) -> Reply {
        self.send(Method::DELETE, path, bearer, None).await
    }

    /// Sends SIGTERM and checks that the service exits 0.
    pub fn stop(self) {
        self.terminate();
        self.wait_exit();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("the service runs");
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
    }

    /// Waits for the service to exit; checks that it exits 0.
    pub fn wait_exit(mut self) {
        let mut child = self.child.take().expect("the service runs");
        let status = child.wait().expect("the service exits");
        assert!(status.success(), "devicegate serve exited with {status}");
    }

    /// Sends the next requests with `client` (another client identity).
    pub fn use_client(&mut self, client: reqwest::Client) {
        self.client = client;
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> &str {
        self.base.split_once("://").map_or(&self.base, |(_, a)| a)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
            eprintln!("--- devicegate serve log ---\n{log}--- end of log ---");
        }
    }
}
