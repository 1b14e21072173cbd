//! The Mosquitto plugin's `plugin_opt_*` lines: parsed once at init. An
//! unknown option or a bad value fails init with one message naming it (the
//! broker does not start).
//!
//! The key decision: **no C ABI here.** The plugin crate links against the
//! broker's symbols; this crate is plain Rust, so the fuzz crate builds the
//! same parser the plugin runs (`fuzz/fuzz_targets/plugin_options.rs`).
#![deny(missing_docs)]

use std::time::Duration;

use devicegate::engine::EngineConfig;
use devicegate::sync::SyncConfig;
use tracing::Level;

/// The plugin's configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// `plugin_opt_database_url` (required).
    pub database_url: String,
    /// `plugin_opt_create_database`: whether a missing SQLite file may be
    /// created (default false: a mistyped path must not start an empty
    /// fleet).
    pub create_database: bool,
    /// `plugin_opt_log_level`: error, warn, info (default) or debug.
    pub log_level: Level,
    /// Engine limits.
    pub engine: EngineConfig,
    /// Background task timings.
    pub sync: SyncConfig,
    /// `plugin_opt_stats_interval_secs`: log callback-time percentiles this
    /// often; 0 (the default) turns timing off.
    pub stats_interval_secs: u64,
    /// `plugin_opt_secret_key_file`: the key file secrets are sealed with
    /// at rest; the plugin reads it at init (parsing opens no file).
    pub secret_key_file: Option<std::path::PathBuf>,
    /// `plugin_opt_metrics_listen`: where to serve Prometheus metrics
    /// (`127.0.0.1:9363`); off when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// The known option closest to `key` by edit distance, if it is close
/// enough to be a typo (at most a third of its length apart). The distance
/// is at least the difference in length, so names too long or too short to
/// be close skip the quadratic comparison.
fn nearest(key: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .filter(|known| key.len().abs_diff(known.len()) <= known.len().div_ceil(3))
        .map(|known| (edit_distance(key, known), *known))
        .filter(|(distance, known)| *distance <= known.len().div_ceil(3))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Levenshtein distance between two option names (short ASCII strings).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let next = (diagonal + usize::from(ca != *cb)).min(above + 1).min(left + 1);
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = next;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// Every option name, for the error message of an unknown one.
const KNOWN: &[&str] = &[
    "database_url",
    "create_database",
    "log_level",
    "refresh_interval_ms",
    "reconcile_interval_secs",
    "failed_logins_per_device",
    "failed_logins_per_address",
    "failed_logins_device_ceiling",
    "failure_window_secs",
    "stats_interval_secs",
    "spool_dir",
    "node_name",
    "node_expiry_secs",
    "events",
    "event_retention_days",
    "server_url",
    "secret_key_file",
    "metrics_listen",
    "token_checks_per_sec",
];

fn number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("plugin_opt_{key}: `{value}` is not a valid number"))
}

impl Options {
    /// Parses `(key, value)` pairs as the broker hands them over.
    pub fn parse<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, String> {
        let mut database_url = None;
        let mut create_database = false;
        let mut log_level = Level::INFO;
        let mut engine = EngineConfig::default();
        // Mosquitto loads plugins as root and drops privileges afterwards:
        // the database is opened from the first TICK on (see `tick.rs`).
        let mut sync = SyncConfig {
            wait_for_begin: true,
            ..SyncConfig::default()
        };
        let mut stats_interval_secs = 0;
        let mut secret_key_file = None;
        let mut metrics_listen = None;
        for (key, value) in pairs {
            match key {
                "database_url" => database_url = Some(value.trim().to_owned()),
                "log_level" => {
                    log_level = match value.trim().to_ascii_lowercase().as_str() {
                        "error" => Level::ERROR,
                        "warn" | "warning" => Level::WARN,
                        "info" => Level::INFO,
                        "debug" => Level::DEBUG,
                        _ => {
                            return Err(format!(
                                "plugin_opt_log_level: `{value}` is not error, warn, info or debug"
                            ));
                        }
                    }
                }
                "refresh_interval_ms" => {
                    sync.poll_interval = Duration::from_millis(number::<u64>(key, value)?.max(10));
                }
                "reconcile_interval_secs" => {
                    sync.reconcile_interval = Duration::from_secs(number::<u64>(key, value)?.max(1));
                }
                "failed_logins_per_device" => engine.failed_logins_per_device = number(key, value)?,
                "failed_logins_per_address" => engine.failed_logins_per_address = number(key, value)?,
                "failed_logins_device_ceiling" => engine.failed_logins_device_ceiling = number(key, value)?,
                "failure_window_secs" => engine.failure_window_ms = number::<u64>(key, value)?.max(1) * 1000,
                "stats_interval_secs" => stats_interval_secs = number(key, value)?,
                "create_database" => {
                    create_database = match value.trim() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(format!("plugin_opt_create_database: `{value}` is not true or false")),
                    }
                }
                "server_url" => {
                    let url = value.trim();
                    devicegate::store::validate_server_url(url).map_err(|e| format!("plugin_opt_server_url: {e}"))?;
                    engine.server_url = Some(url.to_owned());
                }
                "token_checks_per_sec" => engine.token_checks_per_sec = number(key, value)?,
                "metrics_listen" => {
                    metrics_listen = Some(value.trim().parse().map_err(|_| {
                        format!("plugin_opt_metrics_listen: `{value}` is not ADDRESS:PORT, e.g. 127.0.0.1:9363")
                    })?);
                }
                "secret_key_file" => {
                    secret_key_file =
                        Some(value.trim().into()).filter(|p: &std::path::PathBuf| !p.as_os_str().is_empty());
                }
                "node_name" => {
                    let name = value.trim();
                    if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
                        return Err("plugin_opt_node_name must be 1 to 255 printable characters".to_owned());
                    }
                    sync.node_name = Some(name.to_owned());
                }
                "events" => {
                    engine.events = match value.trim() {
                        "all" => devicegate::engine::EventDetail::All,
                        "changes" => devicegate::engine::EventDetail::Changes,
                        _ => {
                            return Err(format!(
                                "plugin_opt_events: `{value}` is not `all` or `changes` (every event but accepted \
                                 logins)"
                            ));
                        }
                    }
                }
                "event_retention_days" => {
                    sync.event_retention = Duration::from_secs(number::<u64>(key, value)?.clamp(1, 36_500) * 86_400);
                }
                "node_expiry_secs" => {
                    sync.node_expiry = Duration::from_secs(number::<u64>(key, value)?.clamp(1, 86_400));
                }
                "spool_dir" => {
                    sync.spool_dir =
                        Some(value.trim().into()).filter(|d: &std::path::PathBuf| !d.as_os_str().is_empty())
                }
                _ => {
                    return Err(match nearest(key) {
                        Some(near) => format!(
                            "unknown option plugin_opt_{key}: did you mean plugin_opt_{near}? (known: {})",
                            KNOWN.join(", ")
                        ),
                        None => format!("unknown option plugin_opt_{key} (known: {})", KNOWN.join(", ")),
                    });
                }
            }
        }
        let database_url = database_url
            .filter(|u| !u.is_empty())
            .ok_or("plugin_opt_database_url is required, e.g. sqlite:///var/lib/devicegate/devicegate.db")?;
        Ok(Options {
            database_url,
            create_database,
            log_level,
            engine,
            sync,
            stats_interval_secs,
            secret_key_file,
            metrics_listen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `plugin_opt_*` line of the documented example, commented out or
    /// not, is an option this version accepts.
    #[test]
    fn the_example_configuration_parses() {
        let conf = include_str!("../../../../examples/mosquitto.conf");
        let pairs: Vec<(&str, &str)> = conf
            .lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .filter_map(|l| l.strip_prefix("plugin_opt_"))
            .filter_map(|l| l.split_once(' '))
            .filter(|(k, _)| *k != "database_url")
            .chain([("database_url", "sqlite:///tmp/x.db")])
            .collect();
        assert!(pairs.len() >= 7, "{pairs:?}");
        Options::parse(pairs).unwrap();
    }

    #[test]
    fn options() {
        let o = Options::parse([
            ("database_url", "sqlite:///tmp/x.db"),
            ("log_level", "debug"),
            ("failed_logins_per_device", "3"),
            ("refresh_interval_ms", "250"),
        ])
        .unwrap();
        assert_eq!(o.database_url, "sqlite:///tmp/x.db");
        assert_eq!(o.log_level, Level::DEBUG);
        assert_eq!(o.engine.failed_logins_per_device, 3);
        assert_eq!(o.sync.poll_interval, Duration::from_millis(250));
        let err = Options::parse([("database_url", "x"), ("databse_url", "y")]).unwrap_err();
        assert!(err.contains("plugin_opt_databse_url"), "{err}");
        assert!(err.contains("did you mean plugin_opt_database_url?"), "{err}");
        let assigned = Options::parse([("database_url", "x"), ("server_url", "mqtts://broker-a:8883")]).unwrap();
        assert_eq!(assigned.engine.server_url.as_deref(), Some("mqtts://broker-a:8883"));
        let bad = Options::parse([("database_url", "x"), ("server_url", "broker-a")]).unwrap_err();
        assert!(bad.contains("mqtt://HOST:PORT"), "{bad}");
        let far = Options::parse([("database_url", "sqlite://x.db"), ("colour", "blue")]).unwrap_err();
        assert!(!far.contains("did you mean"), "{far}");
        let near = Options::parse([("database_url", "sqlite://x.db"), ("failed_logins_per_devices", "3")]).unwrap_err();
        assert!(
            near.contains("did you mean plugin_opt_failed_logins_per_device?"),
            "{near}"
        );
        assert!(
            Options::parse([("database_url", "x"), ("failed_logins_per_device", "many")])
                .unwrap_err()
                .contains("not a valid number")
        );
        assert!(Options::parse([]).unwrap_err().contains("database_url is required"));
        assert!(Options::parse([("database_url", "x"), ("log_level", "loud")]).is_err());
        let quiet = Options::parse([
            ("database_url", "x"),
            ("events", "changes"),
            ("event_retention_days", "7"),
            ("node_name", "broker-1"),
            ("node_expiry_secs", "10"),
        ])
        .unwrap();
        assert_eq!(quiet.engine.events, devicegate::engine::EventDetail::Changes);
        assert_eq!(quiet.sync.event_retention, Duration::from_secs(7 * 86_400));
        assert_eq!(quiet.sync.node_name.as_deref(), Some("broker-1"));
        assert_eq!(quiet.sync.node_expiry, Duration::from_secs(10));
        let bad = Options::parse([("database_url", "x"), ("events", "some")]).unwrap_err();
        assert!(bad.contains("not `all` or `changes`"), "{bad}");
        assert!(Options::parse([("database_url", "x"), ("node_name", " ")]).is_err());
    }
}
