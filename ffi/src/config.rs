//! The engine's configuration: the JSON string given to `dg_engine_new`.
//! Unknown keys and bad values are refused with a message naming them.

use std::time::Duration;

use devicegate::engine::EngineConfig;
use devicegate::sync::SyncConfig;
use serde::Deserialize;
use tracing::Level;

/// `{"database_url": "sqlite:///var/lib/vernemq/devicegate.db", ...}`: only
/// `database_url` is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// Where products, devices and secrets live (`sqlite://…`, `postgres://…`).
    pub database_url: String,
    /// `error`, `warn`, `info` (default) or `debug`, written to stderr.
    #[serde(default)]
    log_level: Option<String>,
    /// Failed logins of one device from one address per window before
    /// that pair is blocked; 0 = no limit.
    #[serde(default)]
    failed_logins_per_device: Option<u32>,
    /// Failed logins per source address per window; 0 = no limit.
    #[serde(default)]
    failed_logins_per_address: Option<u32>,
    /// Failed logins of one device from all addresses per window before it
    /// is refused from the addresses that failed for it; 0 = no limit.
    #[serde(default)]
    failed_logins_device_ceiling: Option<u32>,
    /// The failed-login window, in seconds.
    #[serde(default)]
    failure_window_secs: Option<u64>,
    /// How often the database's change feed is polled, in milliseconds.
    #[serde(default)]
    refresh_interval_ms: Option<u64>,
    /// How often the whole registry is compared with the database, in seconds.
    #[serde(default)]
    reconcile_interval_secs: Option<u64>,
    /// Where state changes wait while the database refuses writes.
    #[serde(default)]
    spool_dir: Option<String>,
    /// This broker's own URL (`mqtt://` or `mqtts://HOST:PORT`): devices
    /// assigned to another server are refused (IDENTITIES.md §5).
    #[serde(default)]
    server_url: Option<String>,
    /// Device-token signature checks per second on the broker thread.
    #[serde(default)]
    token_checks_per_sec: Option<u32>,
    /// The key file secrets are sealed with at rest (mode 0600).
    #[serde(default)]
    secret_key_file: Option<String>,
    /// The keys of `secret_key_file`, read once at parse.
    #[serde(skip)]
    secret_keys: Option<std::sync::Arc<devicegate::store::SecretKeys>>,
}

impl Config {
    /// Parses the configuration; the error names what is wrong.
    pub fn parse(json: &str) -> Result<Self, String> {
        let config: Config = serde_json::from_str(json).map_err(|e| format!("configuration: {e}"))?;
        if config.database_url.trim().is_empty() {
            return Err("configuration: database_url is empty".to_owned());
        }
        config.log_level()?;
        let mut config = config;
        if let Some(path) = config.secret_key_file.as_deref().filter(|p| !p.is_empty()) {
            let keys = devicegate::store::SecretKeys::load(std::path::Path::new(path))
                .map_err(|e| format!("configuration: secret_key_file: {e}"))?;
            config.secret_keys = Some(std::sync::Arc::new(keys));
        }
        if let Some(url) = &config.server_url {
            devicegate::store::validate_server_url(url).map_err(|e| format!("configuration: server_url: {e}"))?;
        }
        Ok(config)
    }

    /// The log level.
    pub fn log_level(&self) -> Result<Level, String> {
        match self.log_level.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("info") => Ok(Level::INFO),
            Some("error") => Ok(Level::ERROR),
            Some("warn" | "warning") => Ok(Level::WARN),
            Some("debug") => Ok(Level::DEBUG),
            Some(other) => Err(format!(
                "configuration: log_level `{other}` is not error, warn, info or debug"
            )),
        }
    }

    /// The engine's limits.
    pub fn engine(&self) -> EngineConfig {
        let mut engine = EngineConfig::default();
        if let Some(n) = self.failed_logins_per_device {
            engine.failed_logins_per_device = n;
        }
        if let Some(n) = self.failed_logins_per_address {
            engine.failed_logins_per_address = n;
        }
        if let Some(n) = self.failed_logins_device_ceiling {
            engine.failed_logins_device_ceiling = n;
        }
        if let Some(secs) = self.failure_window_secs {
            engine.failure_window_ms = secs.max(1).saturating_mul(1000);
        }
        if let Some(n) = self.token_checks_per_sec {
            engine.token_checks_per_sec = n;
        }
        engine.server_url.clone_from(&self.server_url);
        engine
    }

    /// The background task's timings.
    pub fn sync(&self) -> SyncConfig {
        let mut sync = SyncConfig::default();
        if let Some(ms) = self.refresh_interval_ms {
            sync.poll_interval = Duration::from_millis(ms.max(10));
        }
        if let Some(secs) = self.reconcile_interval_secs {
            sync.reconcile_interval = Duration::from_secs(secs.max(1));
        }
        sync.spool_dir = self.spool_dir.as_deref().filter(|d| !d.is_empty()).map(Into::into);
        sync.secret_keys.clone_from(&self.secret_keys);
        sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations() {
        let c =
            Config::parse(r#"{"database_url":"sqlite:///x.db","failed_logins_per_device":3,"refresh_interval_ms":1}"#)
                .unwrap();
        assert_eq!(c.engine().failed_logins_per_device, 3);
        assert_eq!(c.sync().poll_interval, Duration::from_millis(10));
        assert_eq!(c.log_level(), Ok(Level::INFO));
        let assigned = Config::parse(r#"{"database_url":"x","server_url":"mqtt://b:1883"}"#).unwrap();
        assert_eq!(assigned.engine().server_url.as_deref(), Some("mqtt://b:1883"));
        assert!(
            Config::parse(r#"{"database_url":"x","server_url":"b"}"#)
                .unwrap_err()
                .contains("server_url")
        );
        let missing_key = Config::parse(r#"{"database_url":"x","secret_key_file":"/nonexistent/key"}"#).unwrap_err();
        assert!(missing_key.contains("secret_key_file"), "{missing_key}");
        let unknown = Config::parse(r#"{"database_url":"x","databse_url":"y"}"#).unwrap_err();
        assert!(unknown.contains("databse_url"), "{unknown}");
        assert!(Config::parse(r#"{}"#).unwrap_err().contains("database_url"));
        assert!(Config::parse(r#"{"database_url":" "}"#).unwrap_err().contains("empty"));
        assert!(
            Config::parse(r#"{"database_url":"x","log_level":"loud"}"#)
                .unwrap_err()
                .contains("loud")
        );
        assert!(Config::parse("not json").is_err());
        let typed = Config::parse(r#"{"database_url":"x","failure_window_secs":"soon"}"#).unwrap_err();
        assert!(typed.contains("invalid type"), "{typed}");
    }
}
