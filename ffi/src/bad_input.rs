//! Every kind of bad input the C ABI documents, each answered with its
//! code and a message, none taking the process down.

use crate::abi::{DG_STRING_MAX, dg_out_buf, dg_result, dg_str, dg_topic_qos};
use crate::effects::{dg_effect, dg_poll_effect};
use crate::engine::{dg_engine_free, dg_engine_new, dg_last_error};
use crate::handle::dg_engine;
use crate::presence::dg_on_client_gone;
use crate::publish::dg_auth_on_publish;
use crate::register::dg_auth_on_register;
use crate::subscribe::dg_auth_on_subscribe;
use crate::test_calls::{ABSENT, last_error, s};

/// An engine on a fresh SQLite file (its registry may not be loaded yet:
/// these checks come first).
fn engine(dir: &tempfile::TempDir) -> *mut dg_engine {
    let config = format!(
        r#"{{"database_url":"sqlite://{}","log_level":"error"}}"#,
        dir.path().join("bad_input.db").display()
    );
    // SAFETY: the string outlives the call.
    let engine = unsafe { dg_engine_new(s(config.as_bytes())) };
    assert!(!engine.is_null(), "{}", last_error());
    engine
}

fn publish(engine: *const dg_engine, client_id: dg_str, topic: dg_str) -> dg_result {
    // SAFETY: every string outlives the call; the handle is checked by the callee.
    unsafe { dg_auth_on_publish(engine, ABSENT, s(b""), client_id, 0, topic, s(b""), false) }
}

#[test]
fn configurations_that_do_not_parse_are_refused_with_a_message() {
    for (config, message) in [
        (&b"{\"database_url\":"[..], "configuration:"),
        (b"{\"database_url\":\"mysql://db\"}", "mysql"),
        (b"{\"database_url\":\"x\",\"logins\":1}", "unknown field `logins`"),
        (b"\xff\xfe", "config_json is not UTF-8"),
    ] {
        // SAFETY: the string outlives the call.
        assert!(unsafe { dg_engine_new(s(config)) }.is_null());
        assert!(last_error().contains(message), "{} for {config:?}", last_error());
    }
    // SAFETY: an absent string is allowed.
    assert!(unsafe { dg_engine_new(ABSENT) }.is_null());
    assert_eq!(last_error(), "config_json is NULL");
}

#[test]
fn null_invalid_and_overlong_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(&dir);
    let topic = s(b"/sys/pk/dk/thing/measurepoint/post");
    assert_eq!(
        publish(std::ptr::null(), s(b"c"), topic),
        dg_result::DG_ERR_BAD_ARGUMENT
    );
    assert_eq!(last_error(), "the engine handle is NULL");
    assert_eq!(publish(engine, ABSENT, topic), dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), "client_id is NULL");
    assert_eq!(publish(engine, s(b"c\xff"), topic), dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), "client_id is not UTF-8");
    let long = vec![b'a'; DG_STRING_MAX + 1];
    assert_eq!(publish(engine, s(b"c"), s(&long)), dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), format!("topic is longer than {DG_STRING_MAX} bytes"));
    // A session devicegate never accepted is not ours; the error is cleared.
    assert_eq!(publish(engine, s(b"c"), topic), dg_result::DG_NEXT);
    assert_eq!(last_error(), "");

    let mut granted = [0u8; 1];
    // SAFETY: NULL topics with n > 0 is the bad input under test.
    let rc = unsafe {
        dg_auth_on_subscribe(
            engine,
            ABSENT,
            ABSENT,
            s(b"c"),
            std::ptr::null(),
            1,
            granted.as_mut_ptr(),
        )
    };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
    let filters = [dg_topic_qos {
        topic: s(b"a/\xc3"),
        qos: 0,
    }];
    // SAFETY: one valid entry and one writable byte.
    let rc = unsafe {
        dg_auth_on_subscribe(
            engine,
            ABSENT,
            ABSENT,
            s(b"c"),
            filters.as_ptr(),
            1,
            granted.as_mut_ptr(),
        )
    };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), "topics[0] is not UTF-8");

    // An output buffer too small says what it needs and writes nothing.
    let mut small = [0u8; 4];
    let mut out = dg_out_buf {
        ptr: small.as_mut_ptr(),
        cap: small.len(),
        len: 0,
    };
    // SAFETY: every string and the buffer outlive the call.
    let rc = unsafe { dg_auth_on_register(engine, ABSENT, 0, ABSENT, s(b"c"), s(b"u&p"), s(b"x"), true, &mut out) };
    assert_eq!(rc, dg_result::DG_ERR_BUFFER_TOO_SMALL);
    assert_eq!(out.len, crate::abi::DG_CLIENT_ID_MAX);
    assert_eq!(small, [0; 4]);
    out.ptr = std::ptr::null_mut();
    // SAFETY: a NULL `ptr` with a non-zero `cap` is the bad input under test.
    let rc = unsafe { dg_auth_on_register(engine, ABSENT, 0, ABSENT, s(b"c"), s(b"u&p"), s(b"x"), true, &mut out) };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
    // SAFETY: NULL `out` is the bad input under test.
    let rc = unsafe { dg_poll_effect(engine, std::ptr::null_mut()) };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
    // SAFETY: NULL `message` is the bad input under test.
    let rc = unsafe { dg_last_error(std::ptr::null_mut()) };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);

    // SAFETY: the engine came from dg_engine_new and nothing else uses it.
    assert_eq!(unsafe { dg_engine_free(engine) }, dg_result::DG_OK);
    assert_eq!(publish(engine, s(b"c"), topic), dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), "the engine handle was freed");
    // SAFETY: freeing twice is the bad input under test; the handle stays readable.
    assert_eq!(unsafe { dg_engine_free(engine) }, dg_result::DG_ERR_BAD_ARGUMENT);
    // SAFETY: the tombstone stays readable.
    let rc = unsafe { dg_on_client_gone(engine, ABSENT, s(b"c")) };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
}

#[test]
fn a_foreign_handle_is_recognised() {
    // Memory that is readable but not an engine.
    let foreign = [0x55u64; 64];
    let handle = foreign.as_ptr().cast::<dg_engine>();
    assert_eq!(publish(handle, s(b"c"), s(b"t")), dg_result::DG_ERR_BAD_ARGUMENT);
    assert_eq!(last_error(), "the engine handle is not a devicegate engine");
    let mut effect = dg_effect {
        kind: 0,
        qos: 0,
        mountpoint: dg_out_buf {
            ptr: std::ptr::null_mut(),
            cap: 0,
            len: 0,
        },
        client_id: dg_out_buf {
            ptr: std::ptr::null_mut(),
            cap: 0,
            len: 0,
        },
        topic: dg_out_buf {
            ptr: std::ptr::null_mut(),
            cap: 0,
            len: 0,
        },
        payload: dg_out_buf {
            ptr: std::ptr::null_mut(),
            cap: 0,
            len: 0,
        },
    };
    // SAFETY: a readable, aligned foreign pointer is the bad input under test.
    let rc = unsafe { dg_poll_effect(handle, &mut effect) };
    assert_eq!(rc, dg_result::DG_ERR_BAD_ARGUMENT);
}
