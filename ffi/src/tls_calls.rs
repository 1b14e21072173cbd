//! The TLS-PSK calls of ABI version 2 on a real SQLite database prepared
//! with the CLI: the handshake's key, and the CONNECT bound to it.

use devicegate_test_support::{self as db, cli};

use crate::abi::{DG_PSK_KEY_MAX, DG_TLS_CERTIFICATE, DG_TLS_NONE, DG_TLS_PSK, dg_out_buf, dg_result, dg_tls_identity};
use crate::engine::{dg_engine_free, dg_engine_new};
use crate::psk::dg_psk_key;
use crate::register::dg_auth_on_register_tls;
use crate::test_calls::{ABSENT, last_error, s};

fn tls(kind: u32, identity: &[u8]) -> dg_tls_identity {
    dg_tls_identity {
        struct_size: std::mem::size_of::<dg_tls_identity>(),
        kind,
        psk_identity: s(identity),
        certificate_der: ABSENT,
    }
}

/// `dg_auth_on_register_tls` with client id `dev_0001`; the canonical id
/// written, if any.
fn register(
    engine: *const crate::handle::dg_engine,
    username: Option<&[u8]>,
    tls: *const dg_tls_identity,
) -> (dg_result, String) {
    register_as(engine, b"dev_0001", username, tls)
}

/// [`register`] with another client id.
fn register_as(
    engine: *const crate::handle::dg_engine,
    client_id: &[u8],
    username: Option<&[u8]>,
    tls: *const dg_tls_identity,
) -> (dg_result, String) {
    let mut buf = [0u8; 129];
    let mut out = dg_out_buf {
        ptr: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let username = username.map_or(ABSENT, s);
    // SAFETY: every pointer is valid for the call; the handle is live.
    let rc = unsafe {
        dg_auth_on_register_tls(
            engine,
            s(b"127.0.0.1"),
            0,
            ABSENT,
            s(client_id),
            username,
            ABSENT,
            true,
            tls,
            &mut out,
        )
    };
    (rc, String::from_utf8_lossy(&buf[..out.len.min(buf.len())]).into_owned())
}

#[test]
fn a_psk_handshake_and_its_connect_through_the_c_abi() {
    let db = db::sqlite();
    cli(&db.url, &["product", "create", "Ab3dEf9h"]);
    cli(&db.url, &["device", "create", "Ab3dEf9h", "dev_0001"]);
    cli(&db.url, &["device", "create", "Ab3dEf9h", "dev_0002"]);
    let psk = cli(
        &db.url,
        &["device", "psk", "Ab3dEf9h", "dev_0001", "--identity", "dev-0001-psk"],
    );
    let key = psk["key"].as_str().unwrap().to_owned();
    let config = format!(r#"{{"database_url":"{}","log_level":"error"}}"#, db.url);
    // SAFETY: the string outlives the call.
    let engine = unsafe { dg_engine_new(s(config.as_bytes())) };
    assert!(!engine.is_null(), "{}", last_error());

    let psk_key = |identity: &[u8], cap: usize| {
        let mut buf = vec![0u8; cap];
        let mut out = dg_out_buf {
            ptr: buf.as_mut_ptr(),
            cap,
            len: 0,
        };
        // SAFETY: every pointer is valid for the call; the handle is live.
        let rc = unsafe { dg_psk_key(engine, s(identity), s(b"127.0.0.1"), &mut out) };
        (rc, String::from_utf8_lossy(&buf[..out.len.min(cap)]).into_owned())
    };
    let start = std::time::Instant::now();
    while psk_key(b"dev-0001-psk", DG_PSK_KEY_MAX).0 != dg_result::DG_OK {
        assert!(start.elapsed().as_secs() < 10, "registry not loaded: {}", last_error());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        psk_key(b"dev-0001-psk", DG_PSK_KEY_MAX),
        (dg_result::DG_OK, key.clone())
    );
    assert_eq!(psk_key(b"dev-0001-psk", 10).0, dg_result::DG_ERR_BUFFER_TOO_SMALL);
    assert_eq!(
        psk_key(b"no-such-identity", DG_PSK_KEY_MAX).0,
        dg_result::DG_ERR_NOT_AUTHORIZED
    );
    assert!(!last_error().contains(&key), "no key in errors");

    let psk = tls(DG_TLS_PSK, b"dev-0001-psk");
    assert_eq!(
        register(engine, None, &psk),
        (dg_result::DG_OK, "dev_0001&Ab3dEf9h".to_owned())
    );
    assert_eq!(register(engine, Some(b"dev_0001&Ab3dEf9h"), &psk).0, dg_result::DG_OK);
    assert_eq!(
        register(engine, Some(b"dev_0002&Ab3dEf9h"), &psk).0,
        dg_result::DG_ERR_INVALID_CREDENTIALS
    );
    assert!(last_error().contains("another device"), "{}", last_error());
    let unknown = tls(DG_TLS_PSK, b"no-such-identity");
    assert_eq!(
        register(engine, None, &unknown).0,
        dg_result::DG_ERR_INVALID_CREDENTIALS
    );

    // No TLS identity is the version-1 call: no username, not ours.
    assert_eq!(
        register_as(engine, b"other", None, std::ptr::null()).0,
        dg_result::DG_NEXT
    );
    assert_eq!(
        register_as(engine, b"other", None, &tls(DG_TLS_NONE, b"")).0,
        dg_result::DG_NEXT
    );
    let mut small = psk;
    small.struct_size = 8;
    assert_eq!(register(engine, None, &small).0, dg_result::DG_ERR_BAD_ARGUMENT);
    assert!(last_error().contains("struct_size"), "{}", last_error());
    assert_eq!(register(engine, None, &tls(7, b"x")).0, dg_result::DG_ERR_BAD_ARGUMENT);
    let mut absent = psk;
    absent.psk_identity = ABSENT;
    assert_eq!(register(engine, None, &absent).0, dg_result::DG_ERR_BAD_ARGUMENT);
    // A certificate registered with the CLI logs its device in; another is refused.
    let ca = tempfile::tempdir().unwrap();
    let ca_dir = ca.path().join("ca");
    cli(&db.url, &["ca", "init", "--dir", ca_dir.to_str().unwrap()]);
    let out = ca.path().join("dev2");
    cli(
        &db.url,
        &[
            "device",
            "cert",
            "issue",
            "Ab3dEf9h",
            "dev_0002",
            "--ca-dir",
            ca_dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let pem = std::fs::read_to_string(ca.path().join("dev2.pem")).unwrap();
    let der = pem_body(&pem);
    let certificate = dg_tls_identity {
        kind: DG_TLS_CERTIFICATE,
        certificate_der: s(&der),
        ..tls(DG_TLS_NONE, b"")
    };
    let start = std::time::Instant::now();
    while register_as(engine, b"dev_0002", None, &certificate).0 != dg_result::DG_OK {
        assert!(
            start.elapsed().as_secs() < 10,
            "certificate not loaded: {}",
            last_error()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut other = der.clone();
    other[10] ^= 1;
    let unknown = dg_tls_identity {
        certificate_der: s(&other),
        ..certificate
    };
    assert_eq!(
        register_as(engine, b"x", None, &unknown).0,
        dg_result::DG_ERR_INVALID_CREDENTIALS
    );
    // SAFETY: the live handle, freed once.
    assert_eq!(unsafe { dg_engine_free(engine) }, dg_result::DG_OK);
}

/// The DER inside a PEM certificate (the `openssl` command decodes it).
fn pem_body(pem: &str) -> Vec<u8> {
    use std::io::Write;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut child = std::process::Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the openssl command (apt-get install openssl)");
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    child.wait_with_output().unwrap().stdout
}
