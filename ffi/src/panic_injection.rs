//! A panic injected into each `extern "C"` entry point (test builds with
//! `--features panic-injection`) is caught at the boundary: the call
//! answers `DG_ERR_INTERNAL` (a NULL engine from `dg_engine_new`), says so
//! in `dg_last_error`, and the process and the engine go on.
//! `dg_abi_version` returns a constant and has nothing that could panic.

use crate::abi::{dg_out_buf, dg_result, dg_topic_qos};
use crate::effects::{dg_effect, dg_poll_effect};
use crate::engine::{dg_engine_free, dg_engine_new, dg_last_error};
use crate::guard::INJECT_PANIC;
use crate::handle::dg_engine;
use crate::presence::{dg_on_client_gone, dg_on_client_offline, dg_on_register};
use crate::publish::dg_auth_on_publish;
use crate::register::dg_auth_on_register;
use crate::subscribe::dg_auth_on_subscribe;
use crate::test_calls::{ABSENT, last_error, s};

fn arm(name: Option<&'static str>) {
    *INJECT_PANIC.lock().unwrap() = name;
}

/// Calls entry point `name` on `engine` with harmless arguments.
fn call(name: &str, engine: *mut dg_engine) -> dg_result {
    let mut buf = [0u8; 256];
    let mut out = dg_out_buf {
        ptr: buf.as_mut_ptr(),
        cap: buf.len(),
        len: 0,
    };
    let topic = [dg_topic_qos {
        topic: s(b"a/b"),
        qos: 0,
    }];
    let mut qos = [0u8; 1];
    // SAFETY: every pointer is valid for the call; the handle is live.
    unsafe {
        match name {
            "dg_auth_on_register" => {
                dg_auth_on_register(engine, ABSENT, 0, ABSENT, s(b"c"), s(b"d&p"), s(b"x"), true, &mut out)
            }
            "dg_auth_on_register_tls" => {
                let tls = crate::abi::dg_tls_identity {
                    struct_size: std::mem::size_of::<crate::abi::dg_tls_identity>(),
                    kind: crate::abi::DG_TLS_PSK,
                    psk_identity: s(b"id"),
                    certificate_der: ABSENT,
                };
                crate::register::dg_auth_on_register_tls(
                    engine,
                    ABSENT,
                    0,
                    ABSENT,
                    s(b"c"),
                    ABSENT,
                    ABSENT,
                    true,
                    &tls,
                    &mut out,
                )
            }
            "dg_psk_key" => crate::psk::dg_psk_key(engine, s(b"id"), ABSENT, &mut out),
            "dg_auth_on_publish" => dg_auth_on_publish(engine, ABSENT, s(b""), s(b"c"), 0, s(b"a/b"), s(b""), false),
            "dg_auth_on_subscribe" => {
                dg_auth_on_subscribe(engine, ABSENT, ABSENT, s(b"c"), topic.as_ptr(), 1, qos.as_mut_ptr())
            }
            "dg_on_register" => dg_on_register(engine, ABSENT, 0, ABSENT, s(b"c"), ABSENT),
            "dg_on_client_offline" => dg_on_client_offline(engine, ABSENT, s(b"c")),
            "dg_on_client_gone" => dg_on_client_gone(engine, ABSENT, s(b"c")),
            "dg_poll_effect" => {
                let empty = || dg_out_buf {
                    ptr: std::ptr::null_mut(),
                    cap: 0,
                    len: 0,
                };
                let mut effect = dg_effect {
                    kind: 0,
                    qos: 0,
                    mountpoint: empty(),
                    client_id: empty(),
                    topic: empty(),
                    payload: empty(),
                };
                dg_poll_effect(engine, &mut effect)
            }
            other => unreachable!("{other}"),
        }
    }
}

#[test]
fn a_panic_in_any_entry_point_is_refused_not_propagated() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"{{"database_url":"sqlite://{}","log_level":"error"}}"#,
        dir.path().join("panics.db").display()
    );
    arm(Some("dg_engine_new"));
    // SAFETY: the string outlives the call.
    let engine = unsafe { dg_engine_new(s(config.as_bytes())) };
    assert!(engine.is_null());
    assert!(
        last_error().contains("internal error in dg_engine_new"),
        "{}",
        last_error()
    );
    arm(None);
    // SAFETY: as above.
    let engine = unsafe { dg_engine_new(s(config.as_bytes())) };
    assert!(!engine.is_null(), "{}", last_error());
    for name in [
        "dg_auth_on_register",
        "dg_auth_on_register_tls",
        "dg_psk_key",
        "dg_auth_on_publish",
        "dg_auth_on_subscribe",
        "dg_on_register",
        "dg_on_client_offline",
        "dg_on_client_gone",
        "dg_poll_effect",
    ] {
        arm(Some(name));
        assert_eq!(call(name, engine), dg_result::DG_ERR_INTERNAL, "{name}");
        arm(None);
        assert!(
            last_error().contains(&format!("internal error in {name}")),
            "{name}: {}",
            last_error()
        );
        assert_ne!(call(name, engine), dg_result::DG_ERR_INTERNAL, "{name} works again");
    }
    arm(Some("dg_last_error"));
    let mut text = [0u8; 8];
    let mut out = dg_out_buf {
        ptr: text.as_mut_ptr(),
        cap: text.len(),
        len: 0,
    };
    // SAFETY: `out` describes `text`.
    assert_eq!(unsafe { dg_last_error(&mut out) }, dg_result::DG_ERR_INTERNAL);
    arm(Some("dg_engine_free"));
    // SAFETY: the live handle; the injected panic comes before anything is freed.
    assert_eq!(unsafe { dg_engine_free(engine) }, dg_result::DG_ERR_INTERNAL);
    arm(None);
    // SAFETY: still live: the panicking call freed nothing.
    assert_eq!(unsafe { dg_engine_free(engine) }, dg_result::DG_OK);
}
