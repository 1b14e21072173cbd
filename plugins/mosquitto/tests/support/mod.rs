//! The harness of the Mosquitto tests: a real `mosquitto` process per
//! test, on a free port, with the plugin `cargo test` built loaded.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The plugin `cargo test` just built: in `deps/`, beside this test binary
/// (the copy in `target/debug/` is refreshed only by `cargo build`).
pub fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().join("libdevicegate_mosquitto.so");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p devicegate-mosquitto`",
        path.display()
    );
    path
}

pub fn mosquitto_binary() -> String {
    for candidate in ["/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"] {
        if Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!("mosquitto is not installed: `apt-get install mosquitto mosquitto-clients` (scripts/test.sh does this)");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Mosquitto process with the plugin, stopped (SIGTERM, so the plugin's
/// cleanup runs) when dropped.
pub struct Broker {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    log: PathBuf,
    /// The directory holding its configuration and log.
    pub dir: tempfile::TempDir,
}

impl Broker {
    pub fn start(database_url: &str) -> Broker {
        let broker = Broker::spawn(database_url, "");
        broker.wait_for_log("registry loaded", Duration::from_secs(15));
        broker
    }

    /// Starts mosquitto with `extra` configuration lines, without waiting.
    pub fn spawn(database_url: &str, extra: &str) -> Broker {
        Broker::spawn_with_env(database_url, extra, &[])
    }

    /// [`Broker::spawn`] with `env` added to the broker's environment.
    pub fn spawn_with_env(database_url: &str, extra: &str, env: &[(&str, &str)]) -> Broker {
        let port = free_port();
        Broker::spawn_config_env(
            &format!(
                "per_listener_settings false\nlistener {port} 127.0.0.1\nallow_anonymous false\n\
             plugin {}\nplugin_opt_database_url {database_url}\nplugin_opt_refresh_interval_ms 100\n\
             plugin_opt_log_level debug\n{extra}\n",
                plugin_path().display(),
            ),
            if unsafe_is_root() { "root" } else { "" },
            env,
        )
    }

    /// Starts mosquitto with `config` as the whole configuration (plus the
    /// log settings; as root, `user root`), without waiting. Before its log
    /// file is open (a failed plugin init), mosquitto logs to the console,
    /// which [`Broker::log`] reads too.
    pub fn spawn_config(config: &str) -> Broker {
        Broker::spawn_config_as(config, if unsafe_is_root() { "root" } else { "" })
    }

    /// [`Broker::spawn_config`], with mosquitto dropping to `user` when the
    /// tests run as root ("": the tests' own user). The broker's directory
    /// is handed to that user, so it can write its log there.
    pub fn spawn_config_as(config: &str, user: &str) -> Broker {
        Broker::spawn_config_env(config, user, &[])
    }

    /// [`Broker::spawn_config_as`] with `env` added to the broker's environment.
    pub fn spawn_config_env(config: &str, user: &str, env: &[(&str, &str)]) -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("mosquitto.log");
        let conf = dir.path().join("mosquitto.conf");
        let user = if unsafe_is_root() && !user.is_empty() {
            hand_over(dir.path(), user);
            format!("user {user}\n")
        } else {
            String::new()
        };
        std::fs::write(
            &conf,
            format!(
                "{user}{config}\nlog_dest file {}\nlog_type all\npersistence false\n",
                log.display()
            ),
        )
        .unwrap();
        let port = config
            .lines()
            .find_map(|l| l.strip_prefix("listener ")?.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let console = std::fs::File::create(dir.path().join("console.log")).unwrap();
        let child = Command::new(mosquitto_binary())
            .envs(env.iter().copied())
            .arg("-c")
            .arg(&conf)
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("mosquitto starts");
        Broker { child, port, log, dir }
    }

    /// Stops the broker with SIGTERM and returns its exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.exit_status()
    }

    /// Kills the broker with SIGKILL, as a crash or the OOM killer would:
    /// no plugin cleanup runs.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to 10 s) for the broker to exit and returns its status.
    pub fn exit_status(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mosquitto did not stop within 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The broker's log file and console output.
    pub fn log(&self) -> String {
        let console = self.log.with_file_name("console.log");
        std::fs::read_to_string(&self.log).unwrap_or_default() + &std::fs::read_to_string(console).unwrap_or_default()
    }

    pub fn wait_for_log(&self, needle: &str, limit: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < limit,
                "`{needle}` not in the broker log within {limit:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
    }
}

/// Makes `user` the owner of `path` and everything in it (tests run as root).
pub fn hand_over(path: &Path, user: &str) {
    let status = Command::new("chown")
        .args(["-R", &format!("{user}:"), &path.display().to_string()])
        .status()
        .expect("chown runs");
    assert!(
        status.success(),
        "cannot hand {} to user {user}: does the user exist? (`apt-get install mosquitto` creates `mosquitto`)",
        path.display()
    );
}

/// Whether the tests run as root (then the broker keeps root instead of
/// dropping to user `mosquitto`, which could not write the temp database).
pub fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// `mosquitto_sub` as the fleet's principal `backend` on the plain
/// listener `port`, subscribed to every device's data: it prints the first
/// message (`TOPIC PAYLOAD`) and exits, or gives up after 10 s.
pub async fn first_device_message(port: u16) -> Child {
    let sub = Command::new("mosquitto_sub")
        .args([
            "-p",
            &port.to_string(),
            "-i",
            "backend-1",
            "-u",
            "backend",
            "-P",
            "backend-pw",
        ])
        .args(["-t", "/sys/+/+/thing/#", "-v", "-C", "1", "-W", "10"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (apt-get install mosquitto-clients)");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sub
}
