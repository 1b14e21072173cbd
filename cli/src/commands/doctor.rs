//! `devicegate doctor [--config FILE]` (issue 12 item 4): reads a
//! mosquitto.conf (following `include_dir`) and checks, one line each with
//! the fix, what stops devicegate from working there: the plugin file and
//! its version, `per_listener_settings`, the database (reachable, migrated,
//! writable by the broker's user), the TLS listeners, the data, the clock.
//! Exit code 0 when nothing is wrong, 1 otherwise.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::mosquitto_conf::{self, Line};
use crate::output::Output;
use devicegate::store::{SecretKeys, Store, sqlite_files};

/// `doctor` found problems (already reported): exit code 1.
#[derive(Debug, thiserror::Error)]
#[error("devicegate doctor found problems")]
pub struct ProblemsFound;

/// How a finding counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    /// Checked and fine.
    Ok,
    /// Worth knowing; does not fail the run.
    Note,
    /// Stops devicegate from working as configured.
    Problem,
}

#[derive(Debug, Serialize)]
struct Finding {
    level: Level,
    check: &'static str,
    message: String,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, level: Level, check: &'static str, message: impl Into<String>) {
        self.findings.push(Finding {
            level,
            check,
            message: message.into(),
        });
    }
}

/// The version marker the plugin carries in its file.
const MARKER: &[u8] = b"devicegate-mosquitto-version=";

fn plugin_version(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let at = bytes.windows(MARKER.len()).position(|w| w == MARKER)? + MARKER.len();
    let rest = bytes.get(at..)?;
    let end = rest.iter().position(|&b| b == 0)?;
    String::from_utf8(rest.get(..end)?.to_vec()).ok()
}

/// uid, gid and supplementary groups of `user`, from /etc/passwd and /etc/group.
fn user_ids(user: &str) -> Option<(u32, u32, Vec<u32>)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    let (uid, gid) = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user)).then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })?;
    let groups = std::fs::read_to_string("/etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let members = f.get(3)?;
            members.split(',').any(|m| m == user).then(|| f.get(2)?.parse().ok())?
        })
        .collect();
    Some((uid, gid, groups))
}

/// Whether `user` may write `path` by its owner, group and mode.
fn writable_by(path: &Path, (uid, gid, groups): &(u32, u32, Vec<u32>)) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return true;
    };
    let mode = meta.mode();
    *uid == 0
        || (meta.uid() == *uid && mode & 0o200 != 0)
        || ((meta.gid() == *gid || groups.contains(&meta.gid())) && mode & 0o020 != 0)
        || mode & 0o002 != 0
}

fn value<'a>(lines: &'a [Line], key: &str) -> Option<&'a str> {
    mosquitto_conf::last(lines, key).map(|l| l.value.as_str())
}

pub async fn run(out: &Output, config: &Path) -> anyhow::Result<bool> {
    let mut report = Report::default();
    let lines = match mosquitto_conf::read(config) {
        Ok(lines) => {
            report.add(Level::Ok, "config", format!("read {}", config.display()));
            lines
        }
        Err(e) => {
            report.add(Level::Problem, "config", format!("{e} (pass --config FILE)"));
            return finish(out, report);
        }
    };
    check_plugin(&lines, &mut report);
    if value(&lines, "per_listener_settings") == Some("true") {
        report.add(
            Level::Problem,
            "per_listener_settings",
            "per_listener_settings true: the plugin refuses to start (Mosquitto sends a plugin loaded per listener \
             no TICK); set per_listener_settings false",
        );
    } else {
        report.add(Level::Ok, "per_listener_settings", "false (the default)");
    }
    check_listeners(&lines, &mut report);
    let user = value(&lines, "user").unwrap_or("mosquitto").to_owned();
    match value(&lines, "plugin_opt_database_url") {
        None => report.add(
            Level::Problem,
            "database",
            "no plugin_opt_database_url: add e.g. plugin_opt_database_url sqlite:///var/lib/devicegate/devicegate.db",
        ),
        Some(url) => check_database(url, &lines, &user, &mut report).await,
    }
    finish(out, report)
}

fn check_plugin(lines: &[Line], report: &mut Report) {
    let plugin = lines
        .iter()
        .rev()
        .find(|l| (l.key == "plugin" || l.key == "auth_plugin") && l.value.contains("devicegate"));
    let Some(line) = plugin else {
        report.add(
            Level::Problem,
            "plugin",
            "no `plugin …libdevicegate_mosquitto.so` line: add `plugin /usr/lib/x86_64-linux-gnu/mosquitto/libdevicegate_mosquitto.so` (or where the package put it)",
        );
        return;
    };
    let path = PathBuf::from(&line.value);
    if !path.exists() {
        report.add(
            Level::Problem,
            "plugin",
            format!(
                "{}: {} does not exist: install the plugin there or fix the path",
                line.at,
                path.display()
            ),
        );
        return;
    }
    let ours = env!("CARGO_PKG_VERSION");
    match plugin_version(&path) {
        Some(version) if version == ours => report.add(
            Level::Ok,
            "plugin",
            format!("{} is devicegate {version}", path.display()),
        ),
        Some(version) => report.add(
            Level::Problem,
            "plugin",
            format!(
                "{} is devicegate {version}, this CLI is {ours}: install the same version of both",
                path.display()
            ),
        ),
        None => report.add(
            Level::Problem,
            "plugin",
            format!(
                "{} is not a devicegate plugin (no version marker) or is older than 0.1.0",
                path.display()
            ),
        ),
    }
}

fn check_listeners(lines: &[Line], report: &mut Report) {
    for (listener, block) in mosquitto_conf::listeners(lines) {
        let has = |key: &str| block.iter().any(|l| l.key == key);
        let is_true = |key: &str| block.iter().any(|l| l.key == key && l.value == "true");
        let name = format!("listener {} ({})", listener.value, listener.at);
        for file_key in ["cafile", "certfile", "keyfile", "crlfile"] {
            if let Some(line) = block.iter().find(|l| l.key == file_key)
                && !Path::new(&line.value).exists()
            {
                report.add(
                    Level::Problem,
                    "listener",
                    format!("{name}: {file_key} {} does not exist ({})", line.value, line.at),
                );
            }
        }
        if has("psk_hint") {
            if has("psk_file") {
                report.add(
                    Level::Problem,
                    "listener",
                    format!("{name}: psk_file makes Mosquitto use its own keys, not devicegate's: remove psk_file"),
                );
            } else {
                report.add(
                    Level::Ok,
                    "listener",
                    format!("{name}: PSK listener answered by devicegate (TLS 1.2; OpenSSL offers TLS 1.3 PSK too)"),
                );
            }
        }
        if is_true("require_certificate") {
            if is_true("use_identity_as_username") || is_true("use_subject_as_username") {
                report.add(
                    Level::Problem,
                    "listener",
                    format!(
                        "{name}: use_identity_as_username/use_subject_as_username skip the plugin's login check: \
                         remove them"
                    ),
                );
            } else if !has("cafile") && !has("capath") {
                report.add(
                    Level::Problem,
                    "listener",
                    format!("{name}: require_certificate without cafile"),
                );
            } else {
                report.add(
                    Level::Ok,
                    "listener",
                    format!("{name}: devices log in with their certificate"),
                );
            }
        }
    }
}

async fn check_database(url: &str, lines: &[Line], user: &str, report: &mut Report) {
    if let Some((db, files)) = sqlite_files(url) {
        match user_ids(user) {
            None => report.add(
                Level::Problem,
                "database",
                format!("the broker's user `{user}` does not exist (the `user` line, default mosquitto)"),
            ),
            Some(ids) => {
                let dir = db
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let blocked: Vec<String> = files
                    .iter()
                    .map(PathBuf::as_path)
                    .chain([dir])
                    .filter(|p| !writable_by(p, &ids))
                    .map(|p| p.display().to_string())
                    .collect();
                if blocked.is_empty() {
                    report.add(
                        Level::Ok,
                        "database",
                        format!("{} and its folder are writable by {user}", db.display()),
                    );
                } else {
                    report.add(
                        Level::Problem,
                        "database",
                        format!(
                            "{user} (the broker's user) cannot write {}: run `chown {user}:{user} {} {}*`",
                            blocked.join(", "),
                            dir.display(),
                            db.display()
                        ),
                    );
                }
            }
        }
    }
    let keys = match value(lines, "plugin_opt_secret_key_file") {
        Some(path) => match SecretKeys::load(Path::new(path)) {
            Ok(keys) => Some(std::sync::Arc::new(keys)),
            Err(e) => {
                report.add(Level::Problem, "secrets", e.to_string());
                None
            }
        },
        None => None,
    };
    let store = match Store::reopen(url).await {
        Ok(store) => store.with_secret_keys(keys),
        Err(e) => {
            report.add(Level::Problem, "database", format!("{e}"));
            return;
        }
    };
    report.add(
        Level::Ok,
        "database",
        format!("{} answers, schema up to date", devicegate::store::redact_url(url)),
    );
    match store.inventory().await {
        Ok(found) => {
            for pk in &found.empty_products {
                report.add(Level::Note, "data", format!("product {pk} has no devices"));
            }
            if found.devices_without_credentials_total > 0 {
                let some: Vec<String> = found
                    .devices_without_credentials
                    .iter()
                    .map(|(pk, dk)| format!("{pk}/{dk}"))
                    .collect();
                report.add(
                    Level::Note,
                    "data",
                    format!(
                        "{} device(s) have no secret, credential or pending activation, so nothing logs them in \
                         (e.g. {}): `devicegate device register PK DK` or `device psk …`",
                        found.devices_without_credentials_total,
                        some.join(", ")
                    ),
                );
            }
            let now = i64::try_from(devicegate::clock::now_ms()).unwrap_or(i64::MAX);
            if found.newest_record_ms > now + 60_000 {
                report.add(
                    Level::Problem,
                    "clock",
                    format!(
                        "this machine's clock is {} s behind the newest record in the database: fix the clock (NTP), \
                         or timestamps and token expiry go wrong",
                        (found.newest_record_ms - now) / 1000
                    ),
                );
            } else {
                report.add(Level::Ok, "clock", "not behind the database's newest record");
            }
        }
        Err(e) => report.add(Level::Problem, "database", format!("cannot read the data: {e}")),
    }
    store.close().await;
}

fn finish(out: &Output, report: Report) -> anyhow::Result<bool> {
    let healthy = !report.findings.iter().any(|f| f.level == Level::Problem);
    let text: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            let tag = match f.level {
                Level::Ok => "ok     ",
                Level::Note => "note   ",
                Level::Problem => "PROBLEM",
            };
            format!("{tag} {:<22} {}", f.check, f.message)
        })
        .collect();
    out.done(
        json!({"healthy": healthy, "findings": report.findings}),
        &format!(
            "{}\n{}",
            text.join("\n"),
            if healthy {
                "no problem found"
            } else {
                "problems found: fix the lines marked PROBLEM"
            }
        ),
    );
    Ok(healthy)
}
