//! `devicegate doctor` against mosquitto.conf files made in the test: a
//! good one (the plugin built by this workspace, an SQLite database the
//! CLI made, an include_dir) passes; a broken one names each problem and
//! its fix, and exits 1.

use std::process::Command;

use devicegate_test_support::{build_dir, cli, sqlite};
use serde_json::Value;

/// `devicegate doctor --config CONFIG --json`: (exit success, report).
fn doctor(config: &std::path::Path) -> (bool, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_devicegate"))
        .args(["doctor", "--json", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.success(), report)
}

fn messages(report: &Value, level: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] == level)
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect()
}

/// The user this test runs as, for the `user` line.
fn me() -> String {
    devicegate::store::process_user()
}

#[test]
fn a_good_configuration_passes_and_notes_what_is_worth_knowing() {
    let db = sqlite();
    cli(&db.url, &["product", "create", "Ab3dEf9h"]);
    cli(&db.url, &["device", "create", "Ab3dEf9h", "dev_0001"]);
    cli(&db.url, &["product", "create", "Empty001"]);
    let plugin = build_dir().join("libdevicegate_mosquitto.so");
    assert!(plugin.exists(), "build it: cargo build -p devicegate-mosquitto");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("conf.d/devicegate.conf"),
        format!("plugin {}\nplugin_opt_database_url {}\n", plugin.display(), db.url),
    )
    .unwrap();
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "user {}\nper_listener_settings false\nlistener 1883 127.0.0.1\ninclude_dir {}\n",
            me(),
            dir.path().join("conf.d").display()
        ),
    )
    .unwrap();
    let (ok, report) = doctor(&config);
    assert!(ok, "{report:#}");
    assert_eq!(report["healthy"], true);
    let good = messages(&report, "ok").join("\n");
    assert!(
        good.contains(&format!("is devicegate {}", env!("CARGO_PKG_VERSION"))),
        "{good}"
    );
    assert!(good.contains("schema up to date"), "{good}");
    assert!(
        messages(&report, "note")
            .iter()
            .any(|m| m.contains("product Empty001 has no devices"))
    );
}

#[test]
fn a_broken_configuration_names_each_problem_and_exits_1() {
    let db = sqlite();
    cli(&db.url, &["product", "create", "Ab3dEf9h"]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "user nosuchuser0\nper_listener_settings true\nplugin /nowhere/libdevicegate_mosquitto.so\n\
             plugin_opt_database_url {}\nlistener 8883\ncafile /nowhere/ca.pem\nrequire_certificate true\n\
             use_identity_as_username true\nlistener 8884\npsk_hint devicegate\npsk_file /etc/psk\n",
            db.url
        ),
    )
    .unwrap();
    let (ok, report) = doctor(&config);
    assert!(!ok, "{report:#}");
    let problems = messages(&report, "problem").join("\n");
    for expected in [
        "/nowhere/libdevicegate_mosquitto.so does not exist",
        "set per_listener_settings false",
        "cafile /nowhere/ca.pem does not exist",
        "use_identity_as_username/use_subject_as_username skip the plugin's login check",
        "remove psk_file",
        "`nosuchuser0` does not exist",
    ] {
        assert!(problems.contains(expected), "missing `{expected}` in:\n{problems}");
    }
    let missing = dir.path().join("absent.conf");
    let (ok, report) = doctor(&missing);
    assert!(!ok);
    assert!(messages(&report, "problem")[0].contains("cannot read"), "{report:#}");
}
