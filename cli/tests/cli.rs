//! The `devicegate` binary, run as a user would, against a real SQLite
//! file and a real Postgres database: each case in a fresh database.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use devicegate_test_support as db;
use serde_json::Value;

struct Cli {
    url: String,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with_stdin(args, None)
    }

    fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_devicegate"))
            .args(["--database-url", &self.url])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("devicegate runs");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs with --json, expects success, parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    fn fails(&self, args: &[&str], code: i32, message: &str) {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: expected `{message}` in: {stderr}");
    }
}

async fn both() -> Vec<(db::TestDb, Cli)> {
    db::both()
        .await
        .into_iter()
        .map(|d| {
            let url = d.url.clone();
            (d, Cli { url })
        })
        .collect()
}

#[tokio::test]
async fn product_and_device_lifecycle() {
    for (_db, cli) in both().await {
        let created = cli.json(&[
            "product",
            "create",
            "Ab3dEf9h",
            "--dynamic-activation",
            "--sign-methods",
            "sha256,sha1",
        ]);
        assert_eq!(created["product_secret"].as_str().map(str::len), Some(32));
        cli.fails(&["product", "create", "Ab3dEf9h"], 1, "already exists");
        cli.fails(&["product", "create", "a&b"], 1, "product key contains");
        cli.fails(
            &["product", "create", "pk2", "--sign-methods", "sha512"],
            1,
            "unknown sign method",
        );
        cli.fails(
            &["product", "create", "pk2", "--topic", "pub:/a/#/b"],
            1,
            "misplaced wildcard",
        );
        let device = cli.json(&["device", "create", "Ab3dEf9h", "dev_0001"]);
        assert_eq!(device["device_secret"].as_str().map(str::len), Some(32));
        cli.json(&["device", "create", "Ab3dEf9h", "dyn", "--no-secret"]);
        cli.fails(
            &["device", "create", "Ab3dEf9h", "sub", "--secret", "s"],
            1,
            "a secret of 1 bytes is too short",
        );
        cli.json(&[
            "device",
            "create",
            "Ab3dEf9h",
            "sub",
            "--secret",
            "s",
            "--allow-weak-secret",
            "--gateway",
            "Ab3dEf9h/dev_0001",
        ]);
        cli.fails(
            &["device", "create", "Ab3dEf9h", "x", "--gateway", "nope"],
            1,
            "PRODUCT_KEY/DEVICE_KEY",
        );
        cli.fails(&["device", "create", "Nope", "x"], 1, "product `Nope` does not exist");
        let list = cli.json(&["device", "list", "Ab3dEf9h"]);
        assert_eq!(list.as_array().map(Vec::len), Some(3));
        assert!(
            !list.to_string().contains("device_secret"),
            "secrets are never listed: {list}"
        );
        cli.json(&["device", "disable", "Ab3dEf9h", "dev_0001"]);
        assert_eq!(cli.json(&["device", "show", "Ab3dEf9h", "dev_0001"])["enabled"], false);
        let status = cli.json(&["status"]);
        assert_eq!(status[0]["total"], 3);
        assert_eq!(status[0]["disabled"], 1);
        cli.json(&[
            "product",
            "update",
            "Ab3dEf9h",
            "--offline-after",
            "120",
            "--topic",
            "pub:/{productKey}/{deviceKey}/x",
        ]);
        let shown = cli.json(&["product", "show", "Ab3dEf9h"]);
        assert_eq!(shown["offline_after_secs"], 120);
        assert_eq!(shown["extra_topics"][0], "pub:/{productKey}/{deviceKey}/x");
        assert!(shown.get("secret").is_none() && shown["has_secret"] == true);
        cli.fails(&["device", "show", "Ab3dEf9h", "nope"], 1, "does not exist");
        cli.json(&["device", "delete", "Ab3dEf9h", "sub"]);
        assert_eq!(cli.json(&["product", "delete", "Ab3dEf9h"])["devices_deleted"], 2);
    }
}

#[tokio::test]
async fn register_issues_fresh_secrets() {
    for (_db, cli) in both().await {
        cli.json(&["product", "create", "pk"]);
        let first = cli.json(&["device", "register", "pk", "d"])["device_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let second = cli.json(&["device", "register", "pk", "d"])["device_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(first, second, "the last registration wins");
        cli.json(&["device", "reset-activation", "pk", "d"]);
    }
}

#[tokio::test]
async fn import_reports_rows_by_line() {
    for (_db, cli) in both().await {
        cli.json(&["product", "create", "pk"]);
        cli.json(&["device", "create", "pk", "gw"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("devices.csv");
        std::fs::write(
            &file,
            "device_key,secret,gateway\nd1,S3cretDevice00d1,\nd 2,,\nd3,,pk/gw\nd1,,\nd4,,pk\nd5,s5\n",
        )
        .unwrap();
        let out = cli.run(&["device", "import", "pk", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("devices.csv:3:") && stderr.contains("whitespace"),
            "{stderr}"
        );
        assert!(
            stderr.contains("devices.csv:5:") && stderr.contains("already exists"),
            "{stderr}"
        );
        assert!(
            stderr.contains("devices.csv:6:") && stderr.contains("PRODUCT_KEY/DEVICE_KEY"),
            "{stderr}"
        );
        assert!(
            stderr.contains(
                "devices.csv:7: the row has 2 fields, the header 3; under the header \
                             `device_key,secret,gateway` a good row is `dev_0001,S3cretDevice0001,GWPK/GWDK`"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("imported 2 devices"), "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("device_key,secret\nd3,"),
            "generated secrets are printed once: {stdout}"
        );
        assert_eq!(cli.json(&["device", "show", "pk", "d3"])["gateway"], "pk/gw");
        std::fs::write(&file, "name\nx\n").unwrap();
        cli.fails(
            &["device", "import", "pk", file.to_str().unwrap()],
            1,
            "`device_key` column",
        );
        cli.fails(
            &["device", "import", "pk", "/nonexistent.csv"],
            1,
            "cannot read /nonexistent.csv",
        );
    }
}

#[tokio::test]
async fn an_import_of_100000_rows_commits_the_good_ones_and_names_the_bad() {
    for (_db, cli) in both().await {
        cli.json(&["product", "create", "pk"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fleet.csv");
        // Every 10,000th row has a device key with a space; the last row
        // repeats the first device.
        let mut csv = String::from("device_key,secret\n");
        for i in 0..100_000 {
            if i % 10_000 == 9_999 {
                csv.push_str(&format!("bad {i},\n"));
            } else {
                csv.push_str(&format!("dev_{i},S3cretDevice{i:06}\n"));
            }
        }
        csv.push_str("dev_0,S3cretDevice000000\n");
        std::fs::write(&file, csv).unwrap();
        let out = cli.run(&["device", "import", "pk", file.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        for i in (9_999..100_000).step_by(10_000) {
            let line = i + 2;
            assert!(
                stderr.contains(&format!("fleet.csv:{line}: `bad {i}`")),
                "line {line}: {stderr}"
            );
        }
        assert!(
            stderr.contains("fleet.csv:100002: device `dev_0` already exists"),
            "{stderr}"
        );
        assert!(stderr.contains("imported 99990 devices into pk"), "{stderr}");
        assert!(stderr.contains("refused 11 rows"), "{stderr}");
        assert_eq!(cli.json(&["status"])[0]["total"], 99_990);
    }
}

#[tokio::test]
async fn principals_take_the_password_from_stdin_or_get_a_generated_one() {
    for (_db, cli) in both().await {
        let out = cli.run_with_stdin(
            &[
                "principal",
                "create",
                "backend",
                "--password-stdin",
                "--allow",
                "sub:/sys/+/+/thing/#",
            ],
            Some("s3cret\n"),
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let list = cli.json(&["principal", "list"]);
        assert_eq!(list[0]["name"], "backend");
        assert!(!list.to_string().contains("s3cret"));
        let out = cli.run_with_stdin(
            &["principal", "create", "p2", "--password-stdin", "--allow", "sub:#"],
            Some(""),
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
        // Without --password-stdin a secret is generated and shown once.
        let created = cli.json(&["principal", "create", "p3", "--allow", "sub:#"]);
        let password = created["password"].as_str().expect("the generated password is printed");
        assert_eq!(password.len(), 32);
        assert!(!cli.json(&["principal", "list"]).to_string().contains(password));
        cli.json(&["principal", "delete", "backend"]);
    }
}

#[test]
fn sign_needs_no_database_and_bad_urls_exit_clearly() {
    let cli = Cli {
        url: "postgres://u:hunter2@127.0.0.1:1/none".into(),
    };
    let signed = cli.json(&[
        "sign",
        "Ab3dEf9h",
        "dev_0001",
        "S3cretDevice0001",
        "--method",
        "md5",
        "--timestamp",
        "1700000000000",
    ]);
    assert_eq!(signed["password"], "DD34E79F4477F8743FDF29B488F382CA");
    assert_eq!(
        signed["client_id"],
        "dev_0001|securemode=2,signmethod=md5,timestamp=1700000000000|"
    );
    let out = cli.run(&["status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("Connection refused") && !stderr.contains("hunter2"),
        "{stderr}"
    );
    Cli {
        url: "mysql://x".into(),
    }
    .fails(&["status"], 1, "not supported");
}

#[tokio::test]
async fn tls_credentials_refuse_bad_input_with_a_reason_and_keep_keys_private() {
    use std::os::unix::fs::PermissionsExt;
    for (_db, cli) in both().await {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        cli.json(&["product", "create", "Ab3dEf9h"]);
        cli.json(&["device", "create", "Ab3dEf9h", "dev_0001"]);

        // PSKs: shown once, identities checked and unique.
        let psk = cli.json(&[
            "device",
            "psk",
            "Ab3dEf9h",
            "dev_0001",
            "--identity",
            "-starts-with-dash",
        ]);
        assert_eq!(psk["key"].as_str().unwrap().len(), 64);
        cli.fails(
            &["device", "psk", "Ab3dEf9h", "dev_0001", "--identity", "a b"],
            1,
            "printable ASCII",
        );
        cli.fails(
            &[
                "device",
                "psk",
                "Ab3dEf9h",
                "dev_0001",
                "--identity",
                "-starts-with-dash",
            ],
            1,
            "is taken",
        );
        cli.fails(
            &["device", "psk", "Ab3dEf9h", "nope"],
            1,
            "does not exist in the database",
        );
        cli.json(&["device", "psk", "revoke", "Ab3dEf9h", "dev_0001", "-starts-with-dash"]);
        cli.fails(
            &["device", "psk", "revoke", "Ab3dEf9h", "dev_0001"],
            1,
            "no live psk credential",
        );

        // The CA: made once, its key and device keys 0600.
        cli.json(&["ca", "init", "--dir", &path("ca")]);
        cli.fails(&["ca", "init", "--dir", &path("ca")], 1, "exists");
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path("ca/ca.key")), 0o600);
        let issued = cli.json(&[
            "device",
            "cert",
            "issue",
            "Ab3dEf9h",
            "dev_0001",
            "--ca-dir",
            &path("ca"),
            "--out",
            &path("dev"),
        ]);
        assert_eq!(mode(&path("dev.key")), 0o600);
        let fingerprint = issued["fingerprint"].as_str().unwrap();
        cli.fails(
            &[
                "device",
                "cert",
                "issue",
                "Ab3dEf9h",
                "dev_0001",
                "--ca-dir",
                &path("ca"),
                "--out",
                &path("dev"),
            ],
            1,
            "exists",
        );
        let out = cli.run(&["device", "show", "Ab3dEf9h", "dev_0001"]);
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(shown.contains(fingerprint), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"));

        // Bad files are refused with what to do.
        std::fs::write(path("junk.pem"), "hello").unwrap();
        cli.fails(
            &["device", "cert", "add", "Ab3dEf9h", "dev_0001", &path("junk.pem")],
            1,
            "not a PEM certificate",
        );
        cli.fails(
            &["device", "cert", "add", "Ab3dEf9h", "dev_0001", &path("dev.pem")],
            1,
            "registered already",
        );
        cli.fails(
            &["device", "cert", "add", "Ab3dEf9h", "dev_0001", &path("missing.pem")],
            1,
            "cannot read",
        );
        cli.fails(
            &[
                "device",
                "cert",
                "issue",
                "Ab3dEf9h",
                "dev_0001",
                "--ca-dir",
                &path("ca"),
                "--out",
                &path("x"),
                "--csr",
                &path("junk.pem"),
            ],
            1,
            "not a PEM CSR",
        );
        let weak = Command::new("openssl")
            .args([
                "req", "-new", "-nodes", "-subj", "/CN=x", "-newkey", "rsa:1024", "-keyout",
            ])
            .arg(path("weak.key"))
            .arg("-out")
            .arg(path("weak.csr"))
            .output()
            .expect("the openssl command (apt-get install openssl)");
        assert!(weak.status.success());
        cli.fails(
            &[
                "device",
                "cert",
                "issue",
                "Ab3dEf9h",
                "dev_0001",
                "--ca-dir",
                &path("ca"),
                "--out",
                &path("w"),
                "--csr",
                &path("weak.csr"),
            ],
            1,
            "at least 2048",
        );
        cli.fails(
            &["product", "trust-ca", "Ab3dEf9h", &path("dev.pem")],
            1,
            "not a CA certificate",
        );
        cli.json(&["product", "trust-ca", "Ab3dEf9h", &path("ca/ca.pem")]);

        // Revocation, and a CRL that lists it.
        cli.json(&[
            "device",
            "cert",
            "revoke",
            "Ab3dEf9h",
            "dev_0001",
            &fingerprint.to_uppercase(),
        ]);
        let crl = cli.json(&["ca", "crl", "--dir", &path("ca")]);
        assert_eq!(crl["revoked"], 1);
        cli.json(&[
            "ca",
            "server-cert",
            "--dir",
            &path("ca"),
            "--ip",
            "127.0.0.1",
            "--out",
            &path("server"),
        ]);
        assert_eq!(mode(&path("server.key")), 0o600);
        cli.fails(
            &["ca", "server-cert", "--dir", &path("ca"), "--out", &path("server2")],
            1,
            "at least one --dns",
        );
    }
}
