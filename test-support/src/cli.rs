//! The `devicegate` CLI as tests use it: to prepare databases the way an
//! operator would, and to sign device credentials.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// `target/debug`, where the CLI and the plugins are built (the calling
/// test binary lives in its `deps/`).
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("tests run from target/*/deps")
        .to_path_buf()
}

/// The `devicegate` CLI binary; fails with a hint if it is not built.
pub fn cli_binary() -> PathBuf {
    let exe = build_dir().join("devicegate");
    assert!(
        exe.exists(),
        "{} is missing: run `cargo build -p devicegate-cli` (scripts/test.sh does)",
        exe.display()
    );
    exe
}

/// Runs the CLI with `--json` on the database `url`; fails the test if it
/// fails. Returns its JSON output (`Null` when it printed none).
pub fn cli(url: &str, args: &[&str]) -> Value {
    let out = Command::new(cli_binary())
        .args(["--database-url", url, "--json"])
        .args(args)
        .output()
        .expect("the devicegate CLI runs");
    assert!(
        out.status.success(),
        "devicegate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The client id, username and password `devicegate sign` prints.
pub fn sign(pk: &str, dk: &str, secret: &str, extra: &[&str]) -> (String, String, String) {
    let mut args = vec!["sign", pk, dk, secret];
    args.extend_from_slice(extra);
    let v = cli("sqlite://unused.db", &args);
    let field = |k: &str| v[k].as_str().expect("sign prints every field").to_owned();
    (field("client_id"), field("username"), field("password"))
}
