//! What the C ABI costs: `dg_auth_on_publish` through libdevicegate against
//! the same decision through the Rust trait (`authorize_publish` then
//! `handle_message`, which is what the C call does after finding the
//! session), both on an engine loaded from a real SQLite file.
//! Run: `cargo bench -p devicegate-benches --bench c_abi`.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use devicegate::clock::now_ms;
use devicegate::credentials::Dialect;
use devicegate::engine::{ConnectDecision, ConnectRequest, ConnectionId, EngineConfig, Hooks};
use devicegate::store::{DeviceSpec, ProductSpec, Store};
use devicegate::sync::{Authenticator, SyncConfig};
use ffi::{dg_result, dg_str};

const CLIENT_ID: &str = "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|";
const USERNAME: &str = "dev_0001&Ab3dEf9h";
const PASSWORD: &str = "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec";
const TOPICS: [(&str, &str); 2] = [
    ("allowed", "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
    ("denied", "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
];
const PAYLOAD: &[u8] = br#"{"id":"1","params":{"measurepoints":{"temp":21.5}}}"#;

fn s(text: &str) -> dg_str {
    dg_str {
        ptr: text.as_ptr(),
        len: text.len(),
    }
}

/// An SQLite database with the PROTOCOL.md E3 device.
fn database(dir: &std::path::Path) -> String {
    let url = format!("sqlite://{}", dir.join("bench.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store
            .create_product(ProductSpec::new("Ab3dEf9h", Dialect::Enos))
            .await
            .unwrap();
        let device = DeviceSpec {
            secret: Some("S3cretDevice0001".to_owned()),
            ..DeviceSpec::default()
        };
        store.create_device("Ab3dEf9h", "dev_0001", device).await.unwrap();
        store.close().await;
    });
    url
}

fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what} timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn publish(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let url = database(dir.path());
    let mut group = c.benchmark_group("c_abi");

    let auth = Authenticator::start(EngineConfig::default(), SyncConfig::default(), &url).unwrap();
    until("the Rust engine's registry", || auth.is_ready());
    let request = ConnectRequest::new(
        CLIENT_ID.as_bytes(),
        Some(USERNAME.as_bytes()),
        Some(PASSWORD.as_bytes()),
        Some("127.0.0.1"),
    );
    assert_eq!(
        auth.handle_connect(ConnectionId(1), &request, now_ms()),
        ConnectDecision::Accept
    );
    for (name, topic) in TOPICS {
        group.bench_function(format!("rust/auth_on_publish/{name}"), |b| {
            b.iter(|| {
                let now = now_ms();
                let decision = auth.authorize_publish(ConnectionId(1), black_box(topic), false, now);
                if decision == devicegate::decision::AccessDecision::Allow {
                    let _routed = black_box(auth.handle_message(ConnectionId(1), topic, black_box(PAYLOAD), now));
                }
                decision
            })
        });
    }
    auth.shutdown();

    let config = format!(r#"{{"database_url":"{url}","log_level":"error"}}"#);
    // SAFETY: the configuration string outlives the call.
    let engine = unsafe { ffi::dg_engine_new(s(&config)) };
    assert!(!engine.is_null());
    let mut id = [0u8; ffi::DG_CLIENT_ID_MAX];
    let mut canonical = ffi::dg_out_buf {
        ptr: id.as_mut_ptr(),
        cap: id.len(),
        len: 0,
    };
    until("the C engine's registry", || {
        // SAFETY: every string and the buffer outlive the call; the engine is live.
        let rc = unsafe {
            ffi::dg_auth_on_register(
                engine,
                s("127.0.0.1"),
                50000,
                s(""),
                s(CLIENT_ID),
                s(USERNAME),
                s(PASSWORD),
                true,
                &mut canonical,
            )
        };
        assert!(matches!(rc, dg_result::DG_OK | dg_result::DG_ERR_UNAVAILABLE), "{rc:?}");
        rc == dg_result::DG_OK
    });
    let session = dg_str {
        ptr: id.as_ptr(),
        len: canonical.len,
    };
    for (name, topic) in TOPICS {
        group.bench_function(format!("c/auth_on_publish/{name}"), |b| {
            b.iter(|| {
                // SAFETY: every string outlives the call; the engine is live.
                unsafe {
                    ffi::dg_auth_on_publish(
                        engine,
                        s(USERNAME),
                        s(""),
                        session,
                        1,
                        black_box(s(topic)),
                        s(std::str::from_utf8(PAYLOAD).unwrap()),
                        false,
                    )
                }
            })
        });
    }
    // SAFETY: no call is running; the engine is not used again.
    unsafe { ffi::dg_engine_free(engine) };
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = publish
}
criterion_main!(benches);
