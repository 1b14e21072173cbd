//! The C example (`examples/c/devicegate_check.c`) built with the system C
//! compiler against the checked-in header and this crate's
//! `libdevicegate.so`, then run on a real SQLite database prepared with the
//! CLI, under AddressSanitizer (leak checking on).

use std::path::{Path, PathBuf};
use std::process::Command;

use devicegate_test_support::{self as db, cli, sign};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The directory holding the `libdevicegate.so` this `cargo test` built.
fn library_dir() -> PathBuf {
    let dir = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    assert!(
        dir.join("libdevicegate.so").exists(),
        "libdevicegate.so is missing beside the test: `cargo build -p devicegate-ffi`"
    );
    dir
}

/// Compiles `source` (relative to the root) into `output` with `flags`.
fn compile(source: &str, output: &Path, flags: &[&str]) {
    let lib = library_dir();
    let status = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-g", "-I"])
        .arg(root().join("include"))
        .args(flags)
        .arg(root().join(source))
        .arg("-L")
        .arg(&lib)
        .args(["-ldevicegate", "-o"])
        .arg(output)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .status()
        .expect("a C compiler: `apt-get install build-essential` (scripts/test.sh does)");
    assert!(status.success(), "cc failed on {source}");
}

/// A database with one EnOS device, and the credentials it signs in with.
fn device_database() -> (db::TestDb, [String; 3]) {
    let db = db::sqlite();
    cli(&db.url, &["product", "create", "Ab3dEf9h", "--dialect", "enos"]);
    cli(
        &db.url,
        &[
            "device",
            "create",
            "Ab3dEf9h",
            "dev_0001",
            "--secret",
            "0123456789abcdef0123456789abcdef",
        ],
    );
    let (client_id, username, password) = sign("Ab3dEf9h", "dev_0001", "0123456789abcdef0123456789abcdef", &[]);
    (db, [client_id, username, password])
}

#[test]
fn the_c_example_runs_clean_under_address_sanitizer() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("devicegate_check");
    compile(
        "examples/c/devicegate_check.c",
        &exe,
        &["-fsanitize=address,undefined", "-fno-omit-frame-pointer"],
    );
    let (db, [client_id, username, password]) = device_database();
    let out = Command::new(&exe)
        .args([&db.url, &client_id, &username, &password])
        .env("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=99")
        .env("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for line in [
        "login: accepted as dev_0001&Ab3dEf9h",
        "publish /sys/Ab3dEf9h/dev_0001/thing/measurepoint/post: allowed",
        "publish to a foreign topic refused: -2 (publish to `/sys/Ab3dEf9h/not-dev_0001/thing/measurepoint/post` not allowed)",
        "subscribe /sys/Ab3dEf9h/dev_0001/thing/service/+: granted qos 1",
        "subscribe #: refused",
        "offline: ok",
        "a NULL topic: -100 (topic is NULL)",
        "a call after free: -100 (the engine handle was freed)",
        "all checks passed",
    ] {
        assert!(
            stdout.contains(line),
            "missing `{line}` in:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    assert!(!stderr.contains("Sanitizer"), "{stderr}");
    assert!(
        !stderr.contains("0123456789abcdef"),
        "the secret reached a log: {stderr}"
    );
}

#[test]
fn the_c_example_logs_in_with_a_device_token() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("devicegate_check");
    compile("examples/c/devicegate_check.c", &exe, &[]);
    let (db, _) = device_database();
    let key = dir.path().join("token.key");
    cli(&db.url, &["token", "keygen", "--out", key.to_str().unwrap()]);
    let token = cli(
        &db.url,
        &["token", "issue", "Ab3dEf9h", "dev_0001", "--key", key.to_str().unwrap()],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = Command::new(&exe)
        .args([&db.url, "dev_0001", "dev_0001&Ab3dEf9h", &token])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    for line in [
        "login: accepted as dev_0001&Ab3dEf9h",
        "publish /sys/Ab3dEf9h/dev_0001/thing/measurepoint/post: allowed",
        "all checks passed",
    ] {
        assert!(
            stdout.contains(line),
            "missing `{line}` in:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    assert!(!stderr.contains(&token), "the token reached a log: {stderr}");
}

#[test]
fn the_library_needs_no_broker_symbols() {
    let library = library_dir().join("libdevicegate.so");
    let out = Command::new("nm")
        .args(["-D", "--undefined-only"])
        .arg(&library)
        .output()
        .expect("nm (binutils) is installed with the C compiler");
    assert!(out.status.success());
    let undefined = String::from_utf8_lossy(&out.stdout);
    assert!(
        undefined.contains("malloc"),
        "nm listed the undefined symbols: {undefined}"
    );
    for line in undefined.lines() {
        assert!(
            !line.contains("mosquitto"),
            "libdevicegate.so needs a broker symbol: {line}"
        );
    }
}
