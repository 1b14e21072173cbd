//! The VerneMQ shim (`plugins/vernemq/`): the NIF is built with the system
//! C compiler against the checked-in header and this crate's library, the
//! Erlang modules with `erlc`, and a real `erl` calls the hooks the way
//! VerneMQ would, on an SQLite database prepared with the CLI. The database
//! is then checked for what the hooks reported.

use std::path::{Path, PathBuf};
use std::process::Command;

use devicegate_test_support::{self as db, cli, cli_binary, sign};

const ERLANG_HINT: &str = "Erlang is needed: `apt-get install erlang-base erlang-dev` (scripts/test.sh does)";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn erlang_include() -> PathBuf {
    let dir = PathBuf::from("/usr/lib/erlang/usr/include");
    assert!(dir.join("erl_nif.h").exists(), "erl_nif.h is missing. {ERLANG_HINT}");
    dir
}

fn run(command: &mut Command, what: &str) -> std::process::Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start ({e}). {ERLANG_HINT}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Builds the NIF and the Erlang modules into `dir/priv` and `dir/ebin`.
fn build_shim(dir: &Path) {
    let lib = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let shim = root().join("plugins/vernemq");
    std::fs::create_dir_all(dir.join("priv")).unwrap();
    std::fs::create_dir_all(dir.join("ebin")).unwrap();
    run(
        Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-I"])
            .arg(erlang_include())
            .arg("-I")
            .arg(root().join("include"))
            .arg("-o")
            .arg(dir.join("priv/devicegate_nif.so"))
            .arg(shim.join("c_src/devicegate_nif.c"))
            .arg("-L")
            .arg(&lib)
            .arg("-ldevicegate")
            .arg(format!("-Wl,-rpath,{}", lib.display())),
        "cc (the NIF)",
    );
    run(
        Command::new("erlc")
            .args(["-Werror", "-o"])
            .arg(dir.join("ebin"))
            .arg(shim.join("src/devicegate_nif.erl"))
            .arg(shim.join("src/devicegate_vmq.erl"))
            .arg(shim.join("test/devicegate_vmq_tests.erl")),
        "erlc",
    );
}

#[test]
fn erlang_calls_the_hooks_as_vernemq_does() {
    let dir = tempfile::tempdir().unwrap();
    build_shim(dir.path());
    let db = db::sqlite();
    let secret = "0123456789abcdef0123456789abcdef";
    cli(&db.url, &["product", "create", "Ab3dEf9h", "--dialect", "enos"]);
    for dk in ["dev_0001", "dev_0002"] {
        cli(&db.url, &["device", "create", "Ab3dEf9h", dk, "--secret", secret]);
    }
    let (id1, user1, pass1) = sign("Ab3dEf9h", "dev_0001", secret, &[]);
    let (id2, user2, pass2) = sign("Ab3dEf9h", "dev_0002", secret, &[]);
    let config = format!(
        r#"{{"database_url":"{}","refresh_interval_ms":50,"log_level":"info"}}"#,
        db.url
    );
    let out = Command::new("erl")
        .args(["-noshell", "-pa"])
        .arg(dir.path().join("ebin"))
        .args(["-run", "devicegate_vmq_tests", "main", &config])
        .arg(cli_binary())
        .args([&db.url, &id1, &user1, &pass1, &id2, &user2, &pass2])
        .output()
        .unwrap_or_else(|e| panic!("erl did not start ({e}). {ERLANG_HINT}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "erl failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all hooks behaved"), "{stdout}");
    assert!(stdout.matches("ok: ").count() >= 20, "{stdout}");
    assert!(
        !stderr.contains(secret) && !stdout.contains(secret),
        "a secret reached a log"
    );
    // What the hooks reported reached the database (stop() wrote it).
    for dk in ["dev_0001", "dev_0002"] {
        let device = cli(&db.url, &["device", "show", "Ab3dEf9h", dk]);
        assert_eq!(device["online"], false, "{dk}: {device}");
        assert!(!device["activated_at"].is_null(), "{dk}: {device}");
    }
    assert_eq!(
        cli(&db.url, &["device", "show", "Ab3dEf9h", "dev_0001"])["enabled"],
        false
    );
}
