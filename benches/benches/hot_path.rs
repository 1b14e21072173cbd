//! The hot path: login verification per dialect and method, publish and
//! delivery checks, subscription containment; one raw SHA-256 over the
//! same sign string for scale. Run: `cargo bench -p devicegate-benches`.
#![allow(missing_docs)] // criterion_group! generates an undocumented public function.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use devicegate::credentials::{Binding, Dialect, Fingerprint, Username, parse_device_login, parse_username};
use devicegate::engine::{ConnectRequest, ConnectionId, Engine, EngineConfig, Hooks, TlsIdentity};
use devicegate::registry::{Credential, CredentialKind, DeviceRecord, Product, Registry};
use devicegate::secret::Secret;
use devicegate::sign::{AlgSet, HashAlg, verify};
use sha2::Digest as _;

const NOW: u64 = 1_795_320_550_000;
const PSK_IDENTITY: &str = "PwjWTw_TyUaVEEGHgtnzJA";
/// A certificate's size: the engine only fingerprints the DER.
const CERTIFICATE_DER: &[u8] = &[0x30; 512];

struct Case {
    name: &'static str,
    client_id: &'static str,
    username: &'static str,
    password: &'static str,
    dialect: Dialect,
}

const CASES: [Case; 5] = [
    Case {
        name: "enos_sha256",
        client_id: "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|",
        username: "dev_0001&Ab3dEf9h",
        password: "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec",
        dialect: Dialect::Enos,
    },
    Case {
        name: "enos_sha1",
        client_id: "dev_0001|securemode=2,signmethod=hmacsha1,timestamp=1795320550912.803|",
        username: "dev_0001&Ab3dEf9h",
        password: "A7EFB031613B9C77F55B63C3330BAB1543FCD839",
        dialect: Dialect::Enos,
    },
    Case {
        name: "enos_md5",
        client_id: "dev_0001|securemode=2,signmethod=hmacmd5,timestamp=1700000000000|",
        username: "dev_0001&Ab3dEf9h",
        password: "dd34e79f4477f8743fdf29b488f382ca",
        dialect: Dialect::Enos,
    },
    Case {
        name: "aliyun_hmacsha256",
        client_id: "a1B2c3D4e5F.dev01|securemode=2,signmethod=hmacsha256,timestamp=1700000000000|",
        username: "dev01&a1B2c3D4e5F",
        password: "97480593f09d3319e87f67de94f87a811c7d2033fb3640bae69db782d79ae346",
        dialect: Dialect::Aliyun,
    },
    Case {
        name: "aliyun_hmacsha1",
        client_id: "a1B2c3D4e5F&dev01|securemode=3,signmethod=hmacsha1,ext=1,_ss=1,lan=Python,_v=1.2.13,timestamp=1700000000|",
        username: "dev01&a1B2c3D4e5F",
        password: "6050c72c4903195add9f0a6103a0af069b171707",
        dialect: Dialect::Aliyun,
    },
];

const PRODUCT_GUID: uuid::Uuid = uuid::Uuid::from_u128(1);
const DEVICE_GUID: uuid::Uuid = uuid::Uuid::from_u128(2);

/// The device-token key `k1` of the benchmarks (vector T1's seed).
fn token_key() -> devicegate::access_token::SigningKey {
    devicegate::access_token::SigningKey::from_seed("k1", &std::array::from_fn(|i| i as u8)).unwrap()
}

fn registry() -> Arc<Registry> {
    let registry = Arc::new(Registry::new());
    for (pk, dialect) in [("Ab3dEf9h", Dialect::Enos), ("a1B2c3D4e5F", Dialect::Aliyun)] {
        let mut p = Product::new(pk, dialect);
        p.sign_methods = AlgSet::of(&HashAlg::ALL);
        p.guid = Some(PRODUCT_GUID);
        registry.put_product(p);
    }
    registry.put_device("dev01&a1B2c3D4e5F", DeviceRecord::new(Some(Secret::new(*b"secret123"))));
    // dev_0001 also holds a PSK and a certificate.
    let mut dev_0001 = DeviceRecord::new(Some(Secret::new(*b"S3cretDevice0001")));
    dev_0001.credentials = vec![
        Credential {
            kind: CredentialKind::Psk,
            identity: PSK_IDENTITY.into(),
            material: Secret::new(*b"3ACF33D72D32629BED85F383D7D8F82C48CD33819E0D114C3BC27439761920DB"),
            not_after_ms: None,
            used: true,
        },
        Credential {
            kind: CredentialKind::Certificate,
            identity: Fingerprint::of(CERTIFICATE_DER).as_str().into(),
            material: Secret::new(Vec::new()),
            not_after_ms: Some(u64::MAX),
            used: true,
        },
    ];
    dev_0001.guid = Some(DEVICE_GUID);
    registry.put_device("dev_0001&Ab3dEf9h", dev_0001);
    registry.put_token_key("k1", Some(token_key().public_key()));
    for i in 0..100_000 {
        registry.put_device(
            &format!("filler{i}&Ab3dEf9h"),
            DeviceRecord::new(Some(Secret::new(*b"x"))),
        );
    }
    registry.mark_loaded();
    registry
}

fn login(c: &mut Criterion) {
    let registry = registry();
    let mut group = c.benchmark_group("login");
    group.bench_function("sha256_of_sign_string", |b| {
        let text = b"clientIddev_0001deviceKeydev_0001productKeyAb3dEf9htimestamp1795320550912.803S3cretDevice0001";
        b.iter(|| sha2::Sha256::digest(black_box(text)))
    });
    for case in &CASES {
        // What a login costs in the engine's verification: parse, look up, verify.
        group.bench_function(format!("verify/{}", case.name), |b| {
            b.iter(|| {
                let Ok(Username::Device(id)) = parse_username(Some(black_box(case.username).as_bytes())) else {
                    panic!()
                };
                let login = parse_device_login(
                    case.dialect,
                    Binding::Strict,
                    id,
                    case.client_id.as_bytes(),
                    Some(case.password.as_bytes()),
                )
                .unwrap();
                let devicegate::credentials::Presented::DeviceSecret(s) = login else {
                    panic!()
                };
                let ok = registry
                    .with_device(case.username, |d| {
                        verify(s.method, &s.content, d.secret.as_ref().unwrap().expose(), &s.signature)
                    })
                    .unwrap();
                assert!(ok);
            })
        });
    }
    // The parts of enos_sha256, to see where the time goes.
    let case = &CASES[0];
    group.bench_function("parts/parse", |b| {
        b.iter(|| {
            let Ok(Username::Device(id)) = parse_username(Some(black_box(case.username).as_bytes())) else {
                panic!()
            };
            parse_device_login(
                case.dialect,
                Binding::Strict,
                id,
                case.client_id.as_bytes(),
                Some(case.password.as_bytes()),
            )
            .unwrap()
        })
    });
    group.bench_function("parts/client_id", |b| {
        b.iter(|| devicegate::credentials::ClientId::parse(black_box(case.client_id).as_bytes()).unwrap())
    });
    group.bench_function("parts/username", |b| {
        b.iter(|| parse_username(Some(black_box(case.username).as_bytes())))
    });
    group.bench_function("parts/hex", |b| {
        b.iter(|| devicegate::sign::Digest::from_hex(HashAlg::Sha256, black_box(case.password).as_bytes()).unwrap())
    });
    group.bench_function("parts/lookup", |b| {
        b.iter(|| registry.with_device(black_box(case.username), |d| d.enabled).unwrap())
    });
    // The whole hook: connection state, single-session check, queued writes.
    let engine = Engine::new(Arc::clone(&registry), EngineConfig::default());
    let case = &CASES[0];
    group.bench_function("handle_connect_and_disconnect/enos_sha256", |b| {
        let request = ConnectRequest::new(
            case.client_id.as_bytes(),
            Some(case.username.as_bytes()),
            Some(case.password.as_bytes()),
            Some("10.0.0.1"),
        );
        b.iter(|| {
            assert!(
                engine.handle_connect(ConnectionId(1), &request, NOW) == devicegate::engine::ConnectDecision::Accept
            );
            engine.handle_disconnect(ConnectionId(1), NOW);
            let written = engine.take_store_writes(usize::MAX).len();
            engine.store_writes_committed(written);
        })
    });
    // The same hook for the TLS identities: the handshake proved the key
    // or the chain; the engine maps the PSK identity or the certificate's
    // fingerprint (one SHA-256 of a ~500-byte DER) to its device.
    let tls_request = |tls| ConnectRequest::new(b"dev_0001", None, None, Some("10.0.0.1")).with_tls(tls);
    for (name, tls) in [
        ("psk", TlsIdentity::Psk(PSK_IDENTITY.as_bytes())),
        ("certificate", TlsIdentity::Certificate(CERTIFICATE_DER)),
    ] {
        let request = tls_request(tls);
        group.bench_function(format!("handle_connect_and_disconnect/{name}"), |b| {
            b.iter(|| {
                assert!(
                    engine.handle_connect(ConnectionId(1), &request, NOW)
                        == devicegate::engine::ConnectDecision::Accept
                );
                engine.handle_disconnect(ConnectionId(1), NOW);
                let written = engine.take_store_writes(usize::MAX).len();
                engine.store_writes_committed(written);
            })
        });
    }
    // A device token (IDENTITIES.md §4): parse the JWT, check its Ed25519
    // signature, match the claims to the device found by GUID.
    let token = token_key().issue(&devicegate::access_token::Claims::new(
        &PRODUCT_GUID.to_string(),
        &DEVICE_GUID.to_string(),
        NOW / 1000,
        3600,
    ));
    let unlimited = EngineConfig {
        token_checks_per_sec: u32::MAX,
        ..EngineConfig::default()
    };
    let token_engine = Engine::new(Arc::clone(&registry), unlimited);
    let request = ConnectRequest::new(
        b"dev_0001",
        Some(b"dev_0001&Ab3dEf9h"),
        Some(token.as_bytes()),
        Some("10.0.0.1"),
    );
    // A reconnect with a token whose signature this engine checked
    // before: one SHA-256 instead of an Ed25519 verification.
    group.bench_function("handle_connect_and_disconnect/token_reconnect", |b| {
        b.iter(|| {
            assert!(
                token_engine.handle_connect(ConnectionId(1), &request, NOW)
                    == devicegate::engine::ConnectDecision::Accept
            );
            token_engine.handle_disconnect(ConnectionId(1), NOW);
            let written = token_engine.take_store_writes(usize::MAX).len();
            token_engine.store_writes_committed(written);
        })
    });
    // A first login with a token: a fresh token each time, so the
    // signature is always checked.
    let mut iat = NOW / 1000;
    group.bench_function("handle_connect_and_disconnect/token_first_login", |b| {
        b.iter_batched(
            || {
                iat += 1;
                token_key().issue(&devicegate::access_token::Claims::new(
                    &PRODUCT_GUID.to_string(),
                    &DEVICE_GUID.to_string(),
                    iat.min(NOW / 1000 + 20),
                    3600,
                ))
            },
            |token| {
                let request = ConnectRequest::new(
                    b"dev_0001",
                    Some(b"dev_0001&Ab3dEf9h"),
                    Some(token.as_bytes()),
                    Some("10.0.0.1"),
                );
                assert!(
                    token_engine.handle_connect(ConnectionId(1), &request, NOW)
                        == devicegate::engine::ConnectDecision::Accept
                );
                token_engine.handle_disconnect(ConnectionId(1), NOW);
                let written = token_engine.take_store_writes(usize::MAX).len();
                token_engine.store_writes_committed(written);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("parts/token_signature", |b| {
        let parsed = devicegate::access_token::ParsedToken::parse(token.as_bytes()).unwrap();
        let key = token_key().public_key();
        b.iter(|| assert!(parsed.signature_valid(black_box(&key))))
    });
    group.bench_function("psk_key", |b| {
        b.iter(|| engine.psk_key(black_box(PSK_IDENTITY).as_bytes(), None).unwrap())
    });
    group.finish();
}

fn acl(c: &mut Criterion) {
    let engine = Engine::new(registry(), EngineConfig::default());
    for (conn, case) in [(1, &CASES[0]), (2, &CASES[3])] {
        let request = ConnectRequest::new(
            case.client_id.as_bytes(),
            Some(case.username.as_bytes()),
            Some(case.password.as_bytes()),
            None,
        );
        assert_eq!(
            engine.handle_connect(ConnectionId(conn), &request, NOW),
            devicegate::engine::ConnectDecision::Accept
        );
    }
    let mut group = c.benchmark_group("acl");
    let checks: [(&str, u64, &str); 4] = [
        ("enos_allowed", 1, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
        ("enos_denied", 1, "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
        ("aliyun_allowed", 2, "/a1B2c3D4e5F/dev01/user/update"),
        ("aliyun_denied", 2, "/a1B2c3D4e5F/dev02/user/update"),
    ];
    for (name, conn, topic) in checks {
        group.bench_function(format!("publish/{name}"), |b| {
            b.iter(|| engine.authorize_publish(ConnectionId(conn), black_box(topic), false, NOW))
        });
        group.bench_function(format!("delivery/{name}"), |b| {
            b.iter(|| engine.authorize_delivery(ConnectionId(conn), black_box(topic)))
        });
    }
    for (name, filter) in [
        ("own_wildcard", "/sys/Ab3dEf9h/dev_0001/thing/service/+"),
        ("escape_attempt", "/sys/+/+/#"),
        ("shared_denied", "$share/g//sys/Ab3dEf9h/dev_0001/#"),
    ] {
        group.bench_function(format!("subscribe/{name}"), |b| {
            b.iter(|| engine.authorize_subscribe(ConnectionId(1), black_box(filter), NOW))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default();
    targets = login, acl
}
criterion_main!(benches);
