//! Engine tests with a manual clock and an in-memory registry: no broker,
//! no database. Each scenario follows PROTOCOL.md.

use std::sync::Arc;

use super::*;
use crate::credentials::Dialect;
use crate::registry::{CredentialKind, Product, TimestampPolicy};
use crate::sign::{AlgSet, HashAlg};

const NOW: u64 = 1_795_320_550_000;
const PK: &str = "Ab3dEf9h";
const E3_ID: &str = "dev_0001|securemode=2,signmethod=hmacsha256,timestamp=1795320550912.803|";
const E3_PW: &str = "ae6a61853dddd9fd18ae77965aa1547ac13ca12c3e5c32769c2a4f69512ee9ec";
const E9_ID: &str = "dev_0002|securemode=3,signmethod=hmacsha256,timestamp=1795320550912.803|";
const E9_PW: &str = "4f4edbc363554b3d3f96bc4466c7356e6ee142bda4d65d1b10e6e139228acde8";

/// An engine over a registry with the EnOS product `Ab3dEf9h` and device
/// `dev_0001` (secret `S3cretDevice0001`), loaded.
struct World {
    engine: Engine,
}

impl World {
    fn new() -> Self {
        Self::with(EngineConfig::default())
    }

    fn with(config: EngineConfig) -> Self {
        let registry = Arc::new(Registry::new());
        let mut product = Product::new(PK, Dialect::Enos);
        product.secret = Some(Secret::new(*b"ProdSecretXYZ123"));
        product.dynamic_activation = true;
        registry.put_product(product);
        registry.put_device(
            "dev_0001&Ab3dEf9h",
            DeviceRecord::new(Some(Secret::new(*b"S3cretDevice0001"))),
        );
        registry.put_device("dev_0002&Ab3dEf9h", DeviceRecord::new(None));
        registry.mark_loaded();
        World {
            engine: Engine::new(registry, config),
        }
    }

    fn product(&self, f: impl FnOnce(&mut Product)) {
        let mut p = (*self.engine.registry().product(PK).unwrap()).clone();
        f(&mut p);
        p.rebuild_rules();
        self.engine.apply_product_change(PK, Some(p), NOW);
    }

    fn connect(&self, conn: u64, client_id: &str, username: &str, password: &str) -> ConnectDecision {
        self.connect_from(conn, client_id, username, password, "10.0.0.1")
    }

    fn connect_from(
        &self,
        conn: u64,
        client_id: &str,
        username: &str,
        password: &str,
        address: &str,
    ) -> ConnectDecision {
        let request = ConnectRequest::new(
            client_id.as_bytes(),
            Some(username.as_bytes()),
            Some(password.as_bytes()),
            Some(address),
        );
        self.engine.handle_connect(ConnectionId(conn), &request, NOW)
    }

    fn effects(&self) -> Vec<Effect> {
        std::iter::from_fn(|| self.engine.poll_effect()).collect()
    }

    fn writes(&self) -> Vec<StoreWrite> {
        self.engine.take_store_writes(usize::MAX)
    }

    fn issue_commits(&self, now: u64) {
        for w in self.writes() {
            if let StoreWrite::Issue {
                device,
                kind,
                secret,
                connection,
            } = w
            {
                self.engine
                    .handle_issue_committed(Some(connection), &device, kind, secret, now);
            }
        }
    }

    fn publish(&self, conn: u64, topic: &str) -> AccessDecision {
        self.engine.authorize_publish(ConnectionId(conn), topic, false, NOW)
    }

    fn subscribe(&self, conn: u64, filter: &str) -> AccessDecision {
        self.engine.authorize_subscribe(ConnectionId(conn), filter, NOW)
    }
}

fn refused(d: ConnectDecision) -> Refusal {
    match d {
        ConnectDecision::Refuse(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn json(payload: &[u8]) -> serde_json::Value {
    serde_json::from_slice(payload).unwrap()
}

#[test]
fn static_login_activates_and_grants_own_topics() {
    let w = World::new();
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert!(w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap().activated);
    let writes = w.writes();
    assert!(
        writes
            .iter()
            .any(|x| matches!(x, StoreWrite::Activated { device, .. } if &**device == "dev_0001&Ab3dEf9h"))
    );
    assert!(
        writes
            .iter()
            .any(|x| matches!(x, StoreWrite::Presence { online: true, .. }))
    );
    assert!(w.engine.is_online("dev_0001&Ab3dEf9h"));
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
        AccessDecision::Allow
    );
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
        AccessDecision::Deny
    );
    assert_eq!(w.subscribe(1, "/sys/Ab3dEf9h/dev_0001/#"), AccessDecision::Allow);
    for f in [
        "#",
        "/sys/+/+/#",
        "+/sys/Ab3dEf9h/dev_0001/#",
        "$SYS/#",
        "$share/g/#",
        "$share/g//sys/Ab3dEf9h/dev_0001/#",
    ] {
        assert_eq!(w.subscribe(1, f), AccessDecision::Deny, "{f}");
    }
    assert_eq!(
        w.engine
            .authorize_publish(ConnectionId(1), "/sys/Ab3dEf9h/dev_0001/x", true, NOW),
        AccessDecision::Deny
    );
    assert_eq!(
        w.engine
            .authorize_delivery(ConnectionId(1), "/sys/Ab3dEf9h/dev_0001/thing/service/x"),
        AccessDecision::Allow
    );
    assert_eq!(
        w.engine
            .authorize_delivery(ConnectionId(1), "/sys/Ab3dEf9h/dev_0002/thing/service/x"),
        AccessDecision::Deny
    );
    assert_eq!(
        w.engine.authorize_delivery(ConnectionId(99), "/x"),
        AccessDecision::Defer
    );
}

#[test]
fn unknown_device_and_bad_signature_get_the_same_outcome() {
    let w = World::new();
    let unknown = refused(w.connect(1, &E3_ID.replace("dev_0001", "dev_0009"), "dev_0009&Ab3dEf9h", E3_PW));
    let bad = refused(w.connect(2, E3_ID, "dev_0001&Ab3dEf9h", &E3_PW.replace('e', "f")));
    let unknown_product = refused(w.connect(3, E3_ID, "dev_0001&Zz", E3_PW));
    assert_eq!(
        (unknown, bad, unknown_product),
        (Refusal::UnknownDevice, Refusal::BadSignature, Refusal::UnknownProduct)
    );
    assert!(
        [unknown, bad, unknown_product]
            .iter()
            .all(|r| r.outcome() == ConnectOutcome::BadCredentials)
    );
    assert_eq!(w.engine.connection_count(), 0);
}

#[test]
fn refusals_carry_their_outcomes() {
    let w = World::new();
    let e4 = "dev_0001|securemode=2,signmethod=hmacsha1,timestamp=1795320550912.803|";
    assert_eq!(
        refused(w.connect(1, e4, "dev_0001&Ab3dEf9h", "A7EFB031613B9C77F55B63C3330BAB1543FCD839")),
        Refusal::SignMethodNotAllowed
    );
    w.product(|p| p.sign_methods = AlgSet::of(&[HashAlg::Sha256, HashAlg::Sha1]));
    assert_eq!(
        w.connect(1, e4, "dev_0001&Ab3dEf9h", "A7EFB031613B9C77F55B63C3330BAB1543FCD839"),
        ConnectDecision::Accept
    );
    assert_eq!(
        refused(w.connect(2, &E3_ID.replace("dev_0001|", "dev_0009|"), "dev_0001&Ab3dEf9h", E3_PW)).outcome(),
        ConnectOutcome::BadClientId
    );
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.enabled = false;
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(
        refused(w.connect(3, E3_ID, "dev_0001&Ab3dEf9h", E3_PW)),
        Refusal::Disabled
    );
    assert_eq!(Refusal::Disabled.outcome(), ConnectOutcome::NotAuthorized);
}

#[test]
fn fail_closed_until_loaded_and_defer_without_username() {
    let engine = Engine::new(Arc::new(Registry::new()), EngineConfig::default());
    let request = ConnectRequest::new(
        E3_ID.as_bytes(),
        Some(b"dev_0001&Ab3dEf9h"),
        Some(E3_PW.as_bytes()),
        None,
    );
    assert_eq!(
        engine.handle_connect(ConnectionId(1), &request, NOW).outcome(),
        ConnectOutcome::Unavailable
    );
    let anonymous = ConnectRequest {
        username: None,
        password: None,
        ..request
    };
    assert_eq!(
        engine.handle_connect(ConnectionId(1), &anonymous, NOW),
        ConnectDecision::Defer
    );
}

#[test]
fn free_client_id_accepts_e1() {
    let w = World::new();
    let mut p = Product::new("654321", Dialect::Enos);
    p.free_client_id = true;
    w.engine.apply_product_change("654321", Some(p), NOW);
    w.engine.apply_device_change(
        "test&654321",
        Some(DeviceRecord::new(Some(Secret::new(*b"abcdefg")))),
        NOW,
    );
    let id = "123456|securemode=2, signmethod=sha256 , timestamp=1548753362502|";
    assert_eq!(
        w.connect(
            1,
            id,
            "test&654321",
            "B99032D49C706F7B27B22AB5CD2DD3C56A31E1BCBBC83BA0A2A6BB3272FBB166"
        ),
        ConnectDecision::Accept
    );
}

#[test]
fn timestamp_policy_is_applied_after_the_signature() {
    let w = World::new();
    w.product(|p| p.timestamp_policy = TimestampPolicy::Enforce { window_secs: 900 });
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let request = ConnectRequest::new(
        E3_ID.as_bytes(),
        Some(b"dev_0001&Ab3dEf9h"),
        Some(E3_PW.as_bytes()),
        None,
    );
    let late = w.engine.handle_connect(ConnectionId(2), &request, NOW + 3_600_000);
    assert_eq!(refused(late), Refusal::StaleTimestamp);
}

#[test]
fn failed_logins_are_rate_limited_per_device_and_address() {
    let w = World::new();
    let wrong = "0".repeat(64);
    // Ten wrong passwords from one address block the device from there ...
    for i in 0..10 {
        refused(w.connect_from(i, E3_ID, "dev_0001&Ab3dEf9h", &wrong, "10.0.1.1"));
    }
    assert_eq!(
        refused(w.connect_from(20, E3_ID, "dev_0001&Ab3dEf9h", E3_PW, "10.0.1.1")),
        Refusal::RateLimited
    );
    assert_eq!(Refusal::RateLimited.outcome(), ConnectOutcome::NotAuthorized);
    // ... never from the device's own address.
    assert_eq!(
        w.connect(21, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    // An address failing for many usernames is blocked for all of them.
    for i in 0..30 {
        refused(w.connect_from(
            100 + i,
            "x|securemode=2,signmethod=sha256,timestamp=1|",
            &format!("x{i}&Ab3dEf9h"),
            &wrong,
            "10.9.9.9",
        ));
    }
    assert_eq!(
        refused(w.connect_from(200, &E9_ID.replace("3,", "2,"), "dev_0002&Ab3dEf9h", E9_PW, "10.9.9.9")),
        Refusal::RateLimited
    );
}

#[test]
fn wrong_passwords_from_many_addresses_cannot_lock_a_device_out() {
    let w = World::new();
    let wrong = "0".repeat(64);
    for round in 0..3u64 {
        for i in 0..150u64 {
            let conn = 1000 + round * 1000 + i;
            let address = format!("10.{round}.{}.{}", i / 200, i % 200);
            refused(w.connect_from(conn, E3_ID, "dev_0001&Ab3dEf9h", &wrong, &address));
        }
        // The device's own address never failed: its correct login is served.
        assert_eq!(
            w.connect_from(9000 + round, E3_ID, "dev_0001&Ab3dEf9h", E3_PW, "192.0.2.7"),
            ConnectDecision::Accept,
            "round {round}"
        );
        w.engine.handle_disconnect(ConnectionId(9000 + round), NOW);
    }
    // Over the ceiling, an address that failed for the device is refused
    // even with the right password: the attacker gains nothing from it.
    assert_eq!(
        refused(w.connect_from(9999, E3_ID, "dev_0001&Ab3dEf9h", E3_PW, "10.0.0.1")),
        Refusal::RateLimited
    );
}

#[test]
fn a_client_id_held_by_another_device_is_refused() {
    let w = World::new();
    w.engine.registry().put_device(
        "dev_0003&Ab3dEf9h",
        DeviceRecord::new(Some(Secret::new(*b"S3cretDevice0003"))),
    );
    w.product(|p| p.free_client_id = true);
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    w.effects();
    // Another device of the product, with valid credentials and the first
    // one's client id: refused, and the first keeps its session.
    let sign = crate::sign::SignMethod::parse_enos("hmacsha256").unwrap();
    let content = crate::sign::Content::new(&[
        ("clientId", "dev_0001"),
        ("deviceKey", "dev_0003"),
        ("productKey", PK),
        ("timestamp", "1795320550912.803"),
    ]);
    let password = crate::sign::compute(sign, &content, b"S3cretDevice0003").to_hex_lower();
    assert_eq!(
        refused(w.connect(2, E3_ID, "dev_0003&Ab3dEf9h", &password)),
        Refusal::ClientIdInUse
    );
    assert_eq!(Refusal::ClientIdInUse.outcome(), ConnectOutcome::BadClientId);
    assert!(w.effects().is_empty(), "nobody is kicked");
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
        AccessDecision::Allow
    );
    // A client devicegate does not own (no username) cannot take it either.
    let anonymous = ConnectRequest::new(E3_ID.as_bytes(), None, None, Some("10.0.0.9"));
    assert_eq!(
        refused(w.engine.handle_connect(ConnectionId(3), &anonymous, NOW)),
        Refusal::ClientIdInUse
    );
    // The device itself takes its own session over (S4) ...
    assert_eq!(w.connect(4, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert_eq!(w.engine.client_id_holder(E3_ID.as_bytes()), Some(ConnectionId(4)));
    // ... the old connection's close does not free the id ...
    w.engine.handle_disconnect(ConnectionId(1), NOW);
    assert_eq!(w.engine.client_id_holder(E3_ID.as_bytes()), Some(ConnectionId(4)));
    // ... and once the device is gone, the id is free for others.
    w.engine.handle_disconnect(ConnectionId(4), NOW);
    assert_eq!(w.engine.client_id_holder(E3_ID.as_bytes()), None);
    assert_eq!(
        w.engine.handle_connect(ConnectionId(5), &anonymous, NOW),
        ConnectDecision::Defer
    );
    assert_eq!(
        w.connect(6, E3_ID, "dev_0003&Ab3dEf9h", &password),
        ConnectDecision::Accept
    );
}

#[test]
fn a_second_login_supersedes_the_first() {
    let w = World::new();
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let c_sdk = "Ab3dEf9h.dev_0001|securemode=2,signmethod=sha256,timestamp=2524608000000|";
    assert_eq!(
        w.connect(
            2,
            c_sdk,
            "dev_0001&Ab3dEf9h",
            "0E75DE5465D6FD737C1AC7471F7E384F4F0ED45A7F4AD8B1F8B057C89B3BEF57"
        ),
        ConnectDecision::Accept
    );
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(1),
            client_id: E3_ID.into()
        }]
    );
    w.writes();
    w.engine.handle_disconnect(ConnectionId(1), NOW);
    assert!(
        w.engine.is_online("dev_0001&Ab3dEf9h"),
        "the old connection's disconnect does not take the device offline"
    );
    assert!(w.writes().is_empty());
    w.engine.handle_disconnect(ConnectionId(2), NOW);
    assert!(!w.engine.is_online("dev_0001&Ab3dEf9h"));
    assert!(matches!(&w.writes()[..], [StoreWrite::Presence { online: false, .. }]));
    // Same client id: the old connection is kicked too (by connection; a
    // broker that kicks by client id skips it, see `client_id_holder`).
    assert_eq!(w.connect(3, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert_eq!(w.connect(4, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(3),
            client_id: E3_ID.into()
        }]
    );
    assert_eq!(w.engine.client_id_holder(E3_ID.as_bytes()), Some(ConnectionId(4)));
}

#[test]
fn disabling_a_connected_device_kicks_it() {
    let w = World::new();
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.enabled = false;
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(1),
            client_id: E3_ID.into()
        }]
    );
    assert!(!w.engine.is_online("dev_0001&Ab3dEf9h"));
}

#[test]
fn dynamic_activation_pushes_confirms_and_locks() {
    let w = World::new();
    assert_eq!(w.connect(1, E9_ID, "dev_0002&Ab3dEf9h", E9_PW), ConnectDecision::Accept);
    // Rights of an activation session only.
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
        AccessDecision::Deny
    );
    assert_eq!(
        w.publish(1, "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info_reply"),
        AccessDecision::Allow
    );
    assert!(
        w.effects().is_empty(),
        "nothing is pushed before the secret is committed"
    );
    w.issue_commits(NOW);
    let effects = w.effects();
    let [
        Effect::Publish {
            topic,
            payload,
            client_id,
            ..
        },
    ] = &effects[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(topic, "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info");
    assert_eq!(client_id, E9_ID);
    let push = json(payload);
    assert_eq!(push["method"], "thing.activate.info");
    assert_eq!(push["params"]["deviceKey"], "dev_0002");
    let secret = push["params"]["deviceSecret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32);
    assert!(
        !format!("{effects:?}").contains(&secret),
        "Debug never shows a pushed secret"
    );
    let id = push["id"].as_str().unwrap().to_owned();
    // A wrong id does not confirm; the right one does.
    let reply =
        |id: &str| format!(r#"{{"id": "{id}", "code": 200, "data": null, "message": "device activate success"}}"#);
    let topic = "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info_reply";
    assert_eq!(
        w.engine
            .handle_message(ConnectionId(1), topic, reply("nope").as_bytes(), NOW),
        MessageDecision::Consume
    );
    assert!(!w.engine.registry().device("dev_0002&Ab3dEf9h").unwrap().activated);
    w.engine.handle_tick(NOW);
    let again = w.effects();
    assert!(
        matches!(&again[..], [Effect::Publish { payload, .. }] if json(payload)["params"]["deviceSecret"] == secret.as_str())
    );
    let id2 = match &again[..] {
        [Effect::Publish { payload, .. }] => json(payload)["id"].as_str().unwrap().to_owned(),
        _ => unreachable!(),
    };
    assert_ne!(id, id2, "each push has a new id");
    assert_eq!(
        w.engine
            .handle_message(ConnectionId(1), topic, reply(&id2).as_bytes(), NOW),
        MessageDecision::Consume
    );
    let record = w.engine.registry().device("dev_0002&Ab3dEf9h").unwrap();
    assert!(record.activated);
    assert_eq!(record.secret.as_ref().map(Secret::expose_str), Some(secret.clone()));
    // The session closes 5 s after activation.
    w.engine.handle_tick(NOW + 5_000);
    assert!(matches!(
        &w.effects()[..],
        [Effect::Kick {
            connection: ConnectionId(1),
            ..
        }]
    ));
    w.engine.handle_disconnect(ConnectionId(1), NOW + 5_000);
    // A second activation is refused; a login with the delivered secret works.
    assert_eq!(
        refused(w.connect(2, E9_ID, "dev_0002&Ab3dEf9h", E9_PW)),
        Refusal::AlreadyActivated
    );
    let content = crate::sign::Content::new(&[
        ("clientId", "dev_0002"),
        ("deviceKey", "dev_0002"),
        ("productKey", PK),
        ("timestamp", "1"),
    ]);
    let method = crate::sign::SignMethod::parse_enos("sha256").unwrap();
    let sig = crate::sign::compute(method, &content, secret.as_bytes()).to_hex_upper();
    assert_eq!(
        w.connect(
            3,
            "dev_0002|securemode=2,signmethod=sha256,timestamp=1|",
            "dev_0002&Ab3dEf9h",
            &sig
        ),
        ConnectDecision::Accept
    );
}

#[test]
fn unconfirmed_activation_is_retried_then_closed() {
    let w = World::new();
    assert_eq!(w.connect(1, E9_ID, "dev_0002&Ab3dEf9h", E9_PW), ConnectDecision::Accept);
    w.issue_commits(NOW);
    let mut pushes = w.effects().len();
    for step in 1..=6 {
        w.engine.handle_tick(NOW + step * 10_000);
        for e in w.effects() {
            match e {
                Effect::Publish { .. } => pushes += 1,
                Effect::Kick { .. } => {
                    assert_eq!(pushes, 5, "closed after five pushes");
                    return;
                }
            }
        }
    }
    panic!("the activation session was never closed");
}

#[test]
fn login_with_the_pending_secret_confirms_activation() {
    let w = World::new();
    assert_eq!(w.connect(1, E9_ID, "dev_0002&Ab3dEf9h", E9_PW), ConnectDecision::Accept);
    w.issue_commits(NOW);
    let effects = w.effects();
    let [Effect::Publish { payload, .. }] = &effects[..] else {
        panic!()
    };
    let secret = json(payload)["params"]["deviceSecret"].as_str().unwrap().to_owned();
    w.engine.handle_disconnect(ConnectionId(1), NOW);
    let content = crate::sign::Content::new(&[
        ("clientId", "dev_0002"),
        ("deviceKey", "dev_0002"),
        ("productKey", PK),
        ("timestamp", "7"),
    ]);
    let sig = crate::sign::compute(
        crate::sign::SignMethod::parse_enos("sha256").unwrap(),
        &content,
        secret.as_bytes(),
    )
    .to_hex_lower();
    assert_eq!(
        w.connect(
            2,
            "dev_0002|securemode=2,signmethod=sha256,timestamp=7|",
            "dev_0002&Ab3dEf9h",
            &sig
        ),
        ConnectDecision::Accept
    );
    assert!(w.engine.registry().device("dev_0002&Ab3dEf9h").unwrap().activated);
}

#[test]
fn aliyun_register_pushes_the_secret_once() {
    let w = World::new();
    let mut p = Product::new("a1B2c3D4e5F", Dialect::Aliyun);
    p.secret = Some(Secret::new(*b"ProdSecretAli01"));
    p.dynamic_activation = true;
    w.engine.apply_product_change("a1B2c3D4e5F", Some(p), NOW);
    w.engine
        .apply_device_change("dev02&a1B2c3D4e5F", Some(DeviceRecord::new(None)), NOW);
    let id = "dev02.a1B2c3D4e5F|random=Xq3Lm9Zt2Wv8Rk1,authType=register,securemode=2,signmethod=hmacsha256|";
    let pw = "78b27b9a02a66f3f106af5d7d586dab53fc69c439c27daa2c66eca916f34173c";
    assert_eq!(w.connect(1, id, "dev02&a1B2c3D4e5F", pw), ConnectDecision::Accept);
    assert_eq!(w.subscribe(1, "/ext/register"), AccessDecision::Deny);
    assert_eq!(
        w.engine.authorize_delivery(ConnectionId(1), "/ext/register"),
        AccessDecision::Allow
    );
    w.issue_commits(NOW);
    let effects = w.effects();
    let [Effect::Publish { topic, payload, .. }] = &effects[..] else {
        panic!("{effects:?}")
    };
    assert_eq!(topic, "/ext/register");
    assert_eq!(json(payload)["deviceName"], "dev02");
    w.engine.handle_tick(NOW + 2_000);
    assert!(matches!(&w.effects()[..], [Effect::Kick { .. }]));
    // The product's allowed hashes apply to registration too (sha256 only by default).
    let md5 = "dev02.a1B2c3D4e5F|random=Xq3Lm9Zt2Wv8Rk1,authType=register,securemode=2,signmethod=hmacmd5|";
    let content = crate::sign::Content::new(&[
        ("deviceName", "dev02"),
        ("productKey", "a1B2c3D4e5F"),
        ("random", "Xq3Lm9Zt2Wv8Rk1"),
    ]);
    let sig = crate::sign::compute(
        crate::sign::SignMethod::parse_aliyun("hmacmd5").unwrap(),
        &content,
        b"ProdSecretAli01",
    );
    assert_eq!(
        refused(w.connect(2, md5, "dev02&a1B2c3D4e5F", &sig.to_hex_lower())),
        Refusal::SignMethodNotAllowed
    );
}

#[test]
fn gateway_logs_in_sub_devices_and_loses_them() {
    let w = World::new();
    w.engine
        .apply_product_change("subPk", Some(Product::new("subPk", Dialect::Enos)), NOW);
    let mut sub = DeviceRecord::new(Some(Secret::new(*b"subSecret")));
    sub.gateway = Some("dev_0001&Ab3dEf9h".into());
    w.engine.apply_device_change("subDk&subPk", Some(sub), NOW);
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let sub_topic = "/sys/subPk/subDk/thing/measurepoint/post";
    assert_eq!(w.publish(1, sub_topic), AccessDecision::Deny);
    let login_topic = "/ext/session/Ab3dEf9h/dev_0001/combine/login";
    let request = r#"{"id": "7", "version": "1.1", "method": "combine.login", "params": {"productKey": "subPk", "deviceKey": "subDk", "clientId": "subPksubDk1795320666359", "timestamp": "1795320666359", "sign": "2fae1b6ec790f7bccb1023c4e123109cb053a04dea71ab00f8b1924fb9c888a3", "secureMode": "2", "signMethod": "hmacsha256", "cleanSession": "False"}}"#;
    // A bad sign first: 742.
    let bad = request.replace("2fae", "3fae");
    assert_eq!(
        w.engine
            .handle_message(ConnectionId(1), login_topic, bad.as_bytes(), NOW),
        MessageDecision::Consume
    );
    let effects = w.effects();
    let [Effect::Publish { topic, payload, .. }] = &effects[..] else {
        panic!()
    };
    assert_eq!(topic, "/ext/session/Ab3dEf9h/dev_0001/combine/login_reply");
    assert_eq!(json(payload)["code"], 742);
    assert_eq!(
        w.engine
            .handle_message(ConnectionId(1), login_topic, request.as_bytes(), NOW),
        MessageDecision::Consume
    );
    let effects = w.effects();
    let [Effect::Publish { payload, .. }] = &effects[..] else {
        panic!()
    };
    let reply = json(payload);
    assert_eq!((reply["id"].as_str(), reply["code"].as_u64()), (Some("7"), Some(200)));
    assert_eq!(reply["data"]["productKey"], "subPk");
    assert!(w.engine.is_online("subDk&subPk"));
    assert_eq!(w.publish(1, sub_topic), AccessDecision::Allow);
    assert_eq!(
        w.subscribe(1, "/sys/subPk/subDk/thing/service/+"),
        AccessDecision::Allow
    );
    assert_eq!(w.subscribe(1, "/ext/session/subPk/subDk/#"), AccessDecision::Deny);
    assert_eq!(w.subscribe(1, "/sys/subPk/+/#"), AccessDecision::Deny);
    // Logout removes the rights at once.
    let logout = r#"{"id":"9","params":{"productKey":"subPk","deviceKey":"subDk"}}"#;
    let _ = w.engine.handle_message(
        ConnectionId(1),
        "/ext/session/Ab3dEf9h/dev_0001/combine/logout",
        logout.as_bytes(),
        NOW,
    );
    assert_eq!(
        json(match &w.effects()[..] {
            [Effect::Publish { payload, .. }] => payload,
            e => panic!("{e:?}"),
        })["code"],
        200
    );
    assert_eq!(w.publish(1, sub_topic), AccessDecision::Deny);
    assert!(!w.engine.is_online("subDk&subPk"));
    // Batch login (Python SDK, seconds-float timestamp), then the gateway disconnects.
    let batch = r#"{"id": "8", "version": "1.1", "method": "combine.login.batch", "params": {"clientId": "login.batch", "timestamp": "1795320666.3600545", "signMethod": "hmacsha256", "subDevices": [{"productKey": "subPk", "deviceKey": "subDk", "secureMode": "2", "sign": "bfa142ec107597fe6553c25da7b915f283ceb2025d0d781a7afaf6b411b6f8be"}, {"productKey": "subPk", "deviceKey": "other", "sign": "00"}]}}"#;
    let _ = w.engine.handle_message(
        ConnectionId(1),
        "/ext/session/Ab3dEf9h/dev_0001/combine/login/batch",
        batch.as_bytes(),
        NOW,
    );
    let effects = w.effects();
    let [Effect::Publish { topic, payload, .. }] = &effects[..] else {
        panic!()
    };
    assert!(topic.ends_with("combine/login/batch_reply"));
    let reply = json(payload);
    assert_eq!(reply["code"], 740);
    assert_eq!(reply["data"]["loginedSubDevices"][0]["deviceKey"], "subDk");
    assert_eq!(reply["data"]["failedSubDevices"][0]["deviceKey"], "other");
    assert_eq!(w.publish(1, sub_topic), AccessDecision::Allow);
    w.engine.handle_disconnect(ConnectionId(1), NOW);
    assert!(!w.engine.is_online("subDk&subPk"));
}

#[test]
fn malformed_gateway_requests_get_reply_codes() {
    use super::gateway::{GatewayOp, parse_request};
    let code = |op, p: &str| parse_request(op, p.as_bytes()).unwrap_err().1.0;
    assert_eq!(code(GatewayOp::Login, ""), 1251);
    assert_eq!(code(GatewayOp::Login, "{"), 1220);
    assert_eq!(code(GatewayOp::Login, r#"{"id":"1"}"#), 1220);
    assert_eq!(
        code(GatewayOp::Login, r#"{"id":"1","method":"combine.logout","params":{}}"#),
        1260
    );
    assert_eq!(
        code(
            GatewayOp::Login,
            r#"{"id":1,"params":{"productKey":"a","deviceKey":"b","clientId":"c","timestamp":1,"sign":"x","signMethod":"sha512"}}"#
        ),
        460
    );
    assert_eq!(
        code(
            GatewayOp::Login,
            r#"{"params":{"productKey":"a","deviceKey":"b","clientId":"c","timestamp":1,"sign":"x","signMethod":"sha256","cleanSession":"maybe"}}"#
        ),
        1220
    );
    let many: Vec<String> = (0..51)
        .map(|i| format!(r#"{{"productKey":"p","deviceKey":"d{i}","sign":"00"}}"#))
        .collect();
    assert_eq!(
        code(
            GatewayOp::BatchLogin,
            &format!(
                r#"{{"params":{{"clientId":"c","timestamp":"1","signMethod":"sha256","subDevices":[{}]}}}}"#,
                many.join(",")
            )
        ),
        460
    );
    assert_eq!(code(GatewayOp::Login, &"x".repeat(70_000)), 1008);
    let (id, _) = parse_request(
        GatewayOp::Logout,
        br#"{"id":12,"params":{"productKey":"a","deviceKey":"b"}}"#,
    )
    .unwrap();
    assert_eq!(id.as_deref(), Some("12"));
}

#[test]
fn a_device_flapping_a_hundred_times_costs_a_bounded_number_of_rows() {
    for (events, login_rows) in [(EventDetail::All, 100), (EventDetail::Changes, 0)] {
        let w = World::with(EngineConfig {
            events,
            ..EngineConfig::default()
        });
        assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
        w.engine.handle_disconnect(ConnectionId(1), NOW);
        w.writes();
        for round in 0..100 {
            let conn = 100 + round;
            assert_eq!(
                w.connect(conn, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
                ConnectDecision::Accept
            );
            w.engine.handle_disconnect(ConnectionId(conn), NOW);
        }
        let writes = w.writes();
        let presence = writes
            .iter()
            .filter(|x| matches!(x, StoreWrite::Presence { .. }))
            .count();
        let logins = writes
            .iter()
            .filter(|x| matches!(x, StoreWrite::Event { kind, .. } if kind == "login"))
            .count();
        assert_eq!((presence, logins), (1, login_rows), "{events:?}: {writes:?}");
        let skipped = if events == EventDetail::All { 0 } else { 101 };
        assert!(
            w.engine
                .metrics_text()
                .contains(&format!("devicegate_events_skipped_total {skipped}\n")),
            "{}",
            w.engine.metrics_text()
        );
    }
}

#[test]
fn idle_devices_go_offline_and_come_back() {
    let w = World::new();
    w.product(|p| p.offline_after_secs = 60);
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    w.writes();
    w.engine.handle_tick(NOW + 30_000);
    assert!(w.writes().is_empty());
    w.engine.handle_tick(NOW + 61_000);
    assert!(matches!(&w.writes()[..], [StoreWrite::Presence { online: false, .. }]));
    let _ = w
        .engine
        .authorize_publish(ConnectionId(1), "/sys/Ab3dEf9h/dev_0001/x", false, NOW + 62_000);
    assert!(matches!(&w.writes()[..], [StoreWrite::Presence { online: true, .. }]));
}

#[test]
fn principals_read_all_devices_and_send_commands() {
    let w = World::new();
    let hash = crate::principal::hash_password(b"s3cret-backend").unwrap();
    let rules = crate::acl::TopicRules::new(vec![
        crate::acl::TopicRule::parse_principal("sub:/sys/+/+/thing/#").unwrap(),
        crate::acl::TopicRule::parse_principal("pub:/sys/+/+/thing/service/#").unwrap(),
    ]);
    w.engine.apply_principal_change(
        "backend",
        Some(crate::principal::Principal::new("backend", &hash, rules)),
    );
    assert_eq!(refused(w.connect(1, "b1", "backend", "wrong")), Refusal::BadPassword);
    assert_eq!(
        refused(w.connect(1, "b1", "nobody", "wrong")),
        Refusal::UnknownPrincipal
    );
    assert_eq!(w.connect(1, "b1", "backend", "s3cret-backend"), ConnectDecision::Accept);
    assert_eq!(w.subscribe(1, "/sys/+/+/thing/#"), AccessDecision::Allow);
    assert_eq!(w.subscribe(1, "$share/workers//sys/+/+/thing/#"), AccessDecision::Allow);
    assert_eq!(w.subscribe(1, "#"), AccessDecision::Deny);
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0001/thing/service/reboot"),
        AccessDecision::Allow
    );
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
        AccessDecision::Deny
    );
    w.engine.apply_principal_change("backend", None);
    assert!(matches!(
        &w.effects()[..],
        [Effect::Kick {
            connection: ConnectionId(1),
            ..
        }]
    ));
}

#[test]
fn product_changes_reach_live_sessions() {
    let w = World::new();
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let custom = "/Ab3dEf9h/dev_0001/custom/x";
    assert_eq!(w.publish(1, custom), AccessDecision::Deny);
    w.product(|p| {
        p.extra_rules = vec![crate::acl::TopicRule::parse("pub:/{productKey}/{deviceKey}/custom/#").unwrap()]
    });
    assert_eq!(w.publish(1, custom), AccessDecision::Allow);
}

#[test]
fn commands_reach_devices_that_never_subscribed() {
    let w = World::new();
    let hash = crate::principal::hash_password(b"pw").unwrap();
    let rules = crate::acl::TopicRules::new(vec![
        crate::acl::TopicRule::parse_principal("pub:/sys/+/+/thing/service/#").unwrap(),
    ]);
    w.engine.apply_principal_change(
        "backend",
        Some(crate::principal::Principal::new("backend", &hash, rules)),
    );
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert_eq!(w.connect(2, "b1", "backend", "pw"), ConnectDecision::Accept);
    let command = "/sys/Ab3dEf9h/dev_0001/thing/service/reboot";
    let send = || w.engine.handle_message(ConnectionId(2), command, b"{}", NOW);
    assert_eq!(send(), MessageDecision::Forward, "subscribers still get it");
    let effects = w.effects();
    let [
        Effect::Publish {
            connection,
            topic,
            payload,
            client_id,
            ..
        },
    ] = &effects[..]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(
        (*connection, topic.as_str(), payload.as_slice(), client_id.as_str()),
        (ConnectionId(1), command, &b"{}"[..], E3_ID)
    );
    // With its own matching subscription the device gets it once, through the subscription.
    let filter = "/sys/Ab3dEf9h/dev_0001/thing/service/#";
    assert_eq!(w.subscribe(1, filter), AccessDecision::Allow);
    let _ = send();
    assert!(w.effects().is_empty());
    w.engine.handle_unsubscribe(ConnectionId(1), filter);
    let _ = send();
    assert_eq!(w.effects().len(), 1);
    // Nobody online, or a topic naming no device: nothing to deliver.
    let _ = w.engine.handle_message(
        ConnectionId(2),
        "/sys/Ab3dEf9h/dev_0002/thing/service/reboot",
        b"{}",
        NOW,
    );
    let _ = w.engine.handle_message(ConnectionId(2), "/elsewhere/x", b"{}", NOW);
    assert!(w.effects().is_empty());
    // A device publishing on its own topics is not echoed back to itself.
    let _ = w.engine.handle_message(
        ConnectionId(1),
        "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post",
        b"{}",
        NOW,
    );
    assert!(w.effects().is_empty());
}

#[test]
fn debug_output_never_shows_passwords_or_tokens() {
    let request = ConnectRequest::new(b"c", Some(b"backend"), Some(b"hunter2"), None);
    assert!(!format!("{request:?}").contains("hunter2"));
    let login = crate::credentials::parse_device_login(
        Dialect::Aliyun,
        crate::credentials::Binding::Strict,
        crate::credentials::Identity {
            product_key: "a1B2c3D4e5F",
            device_key: "dev01",
        },
        b"a1B2c3D4e5F.dev01|authType=connwl,securemode=-2|",
        Some(b"tok-secret-123"),
    )
    .unwrap();
    assert!(!format!("{login:?}").contains("tok-secret-123"));
}

const PSK_ID: &str = "PwjWTw_TyUaVEEGHgtnzJA";
const PSK_KEY: &str = "3ACF33D72D32629BED85F383D7D8F82C48CD33819E0D114C3BC27439761920DB";

/// `dev_0001` with the PSK of IDENTITIES.md §2 besides its secret.
fn with_psk(w: &World) {
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.credentials.push(crate::registry::Credential {
        kind: CredentialKind::Psk,
        identity: PSK_ID.into(),
        material: Secret::new(PSK_KEY.as_bytes()),
        not_after_ms: None,
        used: false,
    });
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
}

fn psk_connect(w: &World, conn: u64, identity: &str, username: Option<&str>) -> ConnectDecision {
    let request = ConnectRequest::new(b"any-client-id", username.map(str::as_bytes), None, Some("10.0.0.1"))
        .with_tls(TlsIdentity::Psk(identity.as_bytes()));
    w.engine.handle_connect(ConnectionId(conn), &request, NOW)
}

#[test]
fn a_psk_handshake_gets_the_key_of_an_enabled_device_only() {
    let w = World::new();
    assert!(w.engine.psk_key(PSK_ID.as_bytes(), None).is_none(), "unknown identity");
    with_psk(&w);
    assert_eq!(
        w.engine.psk_key(PSK_ID.as_bytes(), None).unwrap().expose(),
        PSK_KEY.as_bytes()
    );
    assert!(w.engine.psk_key(b"PwjWTw_TyUaVEEGHgtnzJB", None).is_none());
    assert!(w.engine.psk_key(&[0xff, 0xfe], None).is_none(), "not UTF-8");
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.enabled = false;
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert!(w.engine.psk_key(PSK_ID.as_bytes(), None).is_none(), "disabled device");
}

#[test]
fn a_psk_login_binds_the_connection_to_its_device() {
    let w = World::new();
    with_psk(&w);
    assert_eq!(psk_connect(&w, 1, PSK_ID, None), ConnectDecision::Accept);
    assert_eq!(
        w.engine.device_of(ConnectionId(1)).as_deref(),
        Some("dev_0001&Ab3dEf9h")
    );
    assert!(w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap().activated);
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0001/thing/measurepoint/post"),
        AccessDecision::Allow
    );
    assert_eq!(
        w.publish(1, "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post"),
        AccessDecision::Deny
    );
    // A username may come along when it names the same device; an empty one is none.
    assert_eq!(
        psk_connect(&w, 2, PSK_ID, Some("dev_0001&Ab3dEf9h")),
        ConnectDecision::Accept
    );
    assert_eq!(psk_connect(&w, 3, PSK_ID, Some("")), ConnectDecision::Accept);
    assert_eq!(
        refused(psk_connect(&w, 4, PSK_ID, Some("dev_0002&Ab3dEf9h"))),
        Refusal::CredentialNamesAnotherDevice
    );
    assert_eq!(
        refused(psk_connect(&w, 5, PSK_ID, Some("backend"))),
        Refusal::CredentialNamesAnotherDevice
    );
    assert_eq!(
        refused(psk_connect(&w, 6, "PwjWTw_TyUaVEEGHgtnzJB", None)),
        Refusal::UnknownCredential
    );
}

#[test]
fn the_first_login_with_a_credential_is_written_once() {
    let w = World::new();
    with_psk(&w);
    w.writes();
    let used = |w: &World| {
        w.writes()
            .into_iter()
            .filter_map(|write| match write {
                StoreWrite::CredentialUsed { kind, identity, .. } => Some((kind, identity.to_string())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(psk_connect(&w, 1, PSK_ID, None), ConnectDecision::Accept);
    assert_eq!(used(&w), vec![("psk", PSK_ID.to_owned())]);
    assert_eq!(psk_connect(&w, 2, PSK_ID, None), ConnectDecision::Accept);
    assert!(used(&w).is_empty(), "the second login writes no first use");
    assert_eq!(w.connect(3, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    assert_eq!(used(&w), vec![("secret", "dev_0001&Ab3dEf9h".to_owned())]);
}

#[test]
fn revoking_a_psk_kicks_its_session_and_nothing_else() {
    let w = World::new();
    with_psk(&w);
    assert_eq!(psk_connect(&w, 1, PSK_ID, None), ConnectDecision::Accept);
    w.effects();
    // An operator change to the secret does not touch the PSK session.
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.secret_version += 1;
    w.engine
        .apply_device_change("dev_0001&Ab3dEf9h", Some(record.clone()), NOW);
    assert!(w.effects().is_empty());
    record.credentials.clear();
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(1),
            client_id: "any-client-id".into()
        }]
    );
    assert!(
        w.engine
            .registry()
            .credential_holder(CredentialKind::Psk, PSK_ID)
            .is_none()
    );
    assert_eq!(refused(psk_connect(&w, 2, PSK_ID, None)), Refusal::UnknownCredential);
}

#[test]
fn a_secret_session_survives_a_psk_revocation() {
    let w = World::new();
    with_psk(&w);
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    w.effects();
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.credentials.clear();
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert!(w.effects().is_empty());
    assert!(w.engine.is_online("dev_0001&Ab3dEf9h"));
}

/// Stands in for a certificate's DER: the engine only fingerprints it.
const CERT_DER: &[u8] = b"0\x82\x01\x0a a certificate's DER";

/// `dev_0001` with the certificate [`CERT_DER`], valid until `not_after`.
fn with_certificate(w: &World, not_after: u64) {
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.credentials.push(crate::registry::Credential {
        kind: CredentialKind::Certificate,
        identity: crate::credentials::Fingerprint::of(CERT_DER).as_str().into(),
        material: Secret::new(Vec::new()),
        not_after_ms: Some(not_after),
        used: false,
    });
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
}

fn cert_connect(w: &World, conn: u64, der: &[u8], username: Option<&str>, now: u64) -> ConnectDecision {
    let request = ConnectRequest::new(b"dev_0001", username.map(str::as_bytes), None, None)
        .with_tls(TlsIdentity::Certificate(der));
    w.engine.handle_connect(ConnectionId(conn), &request, now)
}

#[test]
fn a_certificate_logs_its_device_in_by_fingerprint_only() {
    let w = World::new();
    // Unknown: just-in-time registration is tried, and refuses.
    assert_eq!(
        refused(cert_connect(&w, 1, CERT_DER, None, NOW)),
        Refusal::CertificateNotRegistrable("the certificate does not parse")
    );
    with_certificate(&w, NOW + 60_000);
    assert_eq!(cert_connect(&w, 1, CERT_DER, None, NOW), ConnectDecision::Accept);
    assert_eq!(
        w.engine.device_of(ConnectionId(1)).as_deref(),
        Some("dev_0001&Ab3dEf9h")
    );
    assert!(
        matches!(
            refused(cert_connect(&w, 2, b"another certificate", None, NOW)),
            Refusal::CertificateNotRegistrable(_)
        ),
        "a valid chain alone is not enough"
    );
    assert_eq!(
        refused(cert_connect(&w, 3, CERT_DER, Some("dev_0002&Ab3dEf9h"), NOW)),
        Refusal::CredentialNamesAnotherDevice
    );
    assert_eq!(
        refused(cert_connect(&w, 4, CERT_DER, None, NOW + 60_000)),
        Refusal::CertificateExpired
    );
}

#[test]
fn a_certificate_session_ends_when_the_certificate_expires() {
    let w = World::new();
    with_certificate(&w, NOW + 60_000);
    assert_eq!(cert_connect(&w, 1, CERT_DER, None, NOW), ConnectDecision::Accept);
    w.effects();
    w.engine.handle_tick(NOW + 59_000);
    assert!(w.effects().is_empty());
    w.engine.handle_tick(NOW + 60_000);
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(1),
            client_id: "dev_0001".into()
        }]
    );
}

#[test]
fn revoking_a_certificate_kicks_its_session() {
    let w = World::new();
    with_certificate(&w, NOW + 60_000);
    assert_eq!(cert_connect(&w, 1, CERT_DER, None, NOW), ConnectDecision::Accept);
    w.effects();
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.credentials.clear();
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(
        w.effects(),
        vec![Effect::Kick {
            connection: ConnectionId(1),
            client_id: "dev_0001".into()
        }]
    );
    assert!(matches!(
        refused(cert_connect(&w, 2, CERT_DER, None, NOW)),
        Refusal::CertificateNotRegistrable(_)
    ));
}

/// Log lines written at warning level or above while `f` runs.
fn warnings(f: impl FnOnce()) -> Vec<String> {
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_owned).collect()
}

#[test]
fn denials_are_logged_with_their_rule_and_a_flood_is_summarised() {
    let w = World::new();
    assert_eq!(w.connect(1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW), ConnectDecision::Accept);
    let foreign = "/sys/Ab3dEf9h/dev_0002/thing/measurepoint/post";
    let first = warnings(|| {
        for _ in 0..13 {
            assert_eq!(w.publish(1, foreign), AccessDecision::Deny);
        }
    });
    assert_eq!(first.len(), 10, "{first:#?}");
    assert!(
        first[0].contains("publish denied: outside its topic families"),
        "{first:#?}"
    );
    assert!(
        first[0].contains("dev_0001&Ab3dEf9h") && first[0].contains(foreign),
        "{first:#?}"
    );
    let later = warnings(|| {
        let shared = w
            .engine
            .authorize_subscribe(ConnectionId(1), "$share/g//sys/Ab3dEf9h/dev_0001/#", NOW + 60_000);
        assert_eq!(shared, AccessDecision::Deny);
    });
    assert_eq!(later.len(), 2, "{later:#?}");
    assert!(
        later[0].contains("3 more denied publishes or subscriptions were not logged"),
        "{later:#?}"
    );
    assert!(
        later[1].contains("subscribe denied: shared subscriptions are off"),
        "{later:#?}"
    );
}

/// Gives the world's product and `dev_0001` GUIDs and the token key `k1`;
/// returns the key.
fn with_token_key(w: &World) -> crate::access_token::SigningKey {
    let key = crate::access_token::SigningKey::from_seed("k1", &[9; 32]).unwrap();
    w.product(|p| p.guid = Some(uuid::Uuid::from_u128(1)));
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.guid = Some(uuid::Uuid::from_u128(2));
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    w.engine.apply_token_key_change("k1", Some(key.public_key()), NOW);
    key
}

fn token_for_dev_0001(key: &crate::access_token::SigningKey, iat_ms: u64, ttl_secs: u64) -> String {
    let claims = crate::access_token::Claims::new(
        &uuid::Uuid::from_u128(1).to_string(),
        &uuid::Uuid::from_u128(2).to_string(),
        iat_ms / 1000,
        ttl_secs,
    );
    key.issue(&claims)
}

fn kicked(conn: u64) -> Vec<Effect> {
    vec![Effect::Kick {
        connection: ConnectionId(conn),
        client_id: format!("c{conn}"),
    }]
}

#[test]
fn a_token_logs_in_with_any_username_form_and_ends_at_exp() {
    let w = World::new();
    let key = with_token_key(&w);
    let token = token_for_dev_0001(&key, NOW, 60);
    assert_eq!(w.connect(1, "c1", "", &token), ConnectDecision::Accept);
    let request = ConnectRequest::new(b"c2", None, Some(token.as_bytes()), Some("10.0.0.1"));
    assert_eq!(
        w.engine.handle_connect(ConnectionId(2), &request, NOW),
        ConnectDecision::Accept
    );
    assert_eq!(w.connect(3, "c3", "dev_0001&Ab3dEf9h", &token), ConnectDecision::Accept);
    let guid = uuid::Uuid::from_u128(2).to_string();
    assert_eq!(w.connect(4, "c4", &guid, &token), ConnectDecision::Accept);
    assert_eq!(
        refused(w.connect(5, "c5", "dev_0002&Ab3dEf9h", &token)),
        Refusal::CredentialNamesAnotherDevice
    );
    // Single session: each login threw the one before off; the broker
    // reports those closed.
    assert_eq!(w.effects().len(), 3);
    for superseded in 1..=3 {
        w.engine.handle_disconnect(ConnectionId(superseded), NOW);
    }
    // The device's topics, as for a triple login.
    assert_eq!(
        w.engine
            .authorize_publish(ConnectionId(4), "/sys/Ab3dEf9h/dev_0001/thing/event/x/post", false, NOW),
        AccessDecision::Allow
    );
    w.engine.handle_tick(NOW + 59_000);
    assert!(w.effects().is_empty());
    w.engine.handle_tick(NOW + 60_000);
    assert_eq!(w.effects(), kicked(4));
    // Refused once `exp` is past by more than the 30 s clock skew.
    let request = ConnectRequest::new(b"c6", Some(b""), Some(token.as_bytes()), Some("10.0.0.1"));
    assert!(matches!(
        refused(w.engine.handle_connect(ConnectionId(6), &request, NOW + 90_000)),
        Refusal::AccessToken("expired")
    ));
}

#[test]
fn revoking_tokens_or_removing_the_key_kicks_token_sessions() {
    let w = World::new();
    let key = with_token_key(&w);
    let token = token_for_dev_0001(&key, NOW - 5_000, 3600);
    assert_eq!(w.connect(1, "c1", "", &token), ConnectDecision::Accept);
    w.effects();
    let mut record = w.engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.tokens_revoked_at_ms = NOW;
    w.engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(w.effects(), kicked(1));
    assert!(matches!(
        refused(w.connect(2, "c2", "", &token)),
        Refusal::AccessToken(_)
    ));
    let fresh = token_for_dev_0001(&key, NOW + 2_000, 3600);
    let request = ConnectRequest::new(b"c3", Some(b""), Some(fresh.as_bytes()), Some("10.0.0.1"));
    assert_eq!(
        w.engine.handle_connect(ConnectionId(3), &request, NOW + 2_000),
        ConnectDecision::Accept
    );
    w.effects();
    w.engine.apply_token_key_change("k1", None, NOW + 3_000);
    assert_eq!(w.effects(), kicked(3));
    assert!(matches!(
        refused(w.connect(4, "c4", "", &fresh)),
        Refusal::AccessToken("unknown key id (token keygen adds keys)")
    ));
}

#[test]
fn a_device_assigned_elsewhere_is_refused_where_the_broker_knows_its_url() {
    let registry = Arc::clone(World::new().engine.registry());
    let config = EngineConfig {
        server_url: Some("mqtt://broker-a:1883".into()),
        ..EngineConfig::default()
    };
    let engine = Engine::new(registry, config);
    let login = |conn: u64| {
        let request = ConnectRequest::new(
            E3_ID.as_bytes(),
            Some(b"dev_0001&Ab3dEf9h"),
            Some(E3_PW.as_bytes()),
            Some("10.0.0.1"),
        );
        (
            engine.handle_connect(ConnectionId(conn), &request, NOW),
            engine.server_reference(&request),
        )
    };
    assert_eq!(login(1).0, ConnectDecision::Accept);
    engine.handle_disconnect(ConnectionId(1), NOW);
    let mut record = engine.registry().device("dev_0001&Ab3dEf9h").unwrap();
    record.server_url = Some("mqtts://broker-b:8883".into());
    engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record.clone()), NOW);
    let (decision, reference) = login(2);
    assert_eq!(decision, ConnectDecision::Refuse(Refusal::AssignedElsewhere));
    assert_eq!(decision.outcome().mqtt5_reason(), 0x9C);
    assert_eq!(reference.as_deref(), Some("mqtts://broker-b:8883"));
    record.server_url = Some("mqtt://broker-a:1883/".into());
    engine.apply_device_change("dev_0001&Ab3dEf9h", Some(record), NOW);
    assert_eq!(login(3).0, ConnectDecision::Accept);
}

#[test]
fn a_token_verified_once_reconnects_without_another_signature_check() {
    let registry = Arc::clone(World::new().engine.registry());
    let config = EngineConfig {
        token_checks_per_sec: 1,
        ..EngineConfig::default()
    };
    let w = World {
        engine: Engine::new(registry, config),
    };
    let key = with_token_key(&w);
    let token = token_for_dev_0001(&key, NOW, 3600);
    assert_eq!(w.connect(1, "c1", "", &token), ConnectDecision::Accept);
    w.engine.handle_disconnect(ConnectionId(1), NOW);
    // The budget of one check this second is spent: the same token still
    // logs in (its signature is known good), a new one waits.
    assert_eq!(w.connect(2, "c2", "", &token), ConnectDecision::Accept);
    w.engine.handle_disconnect(ConnectionId(2), NOW);
    let other = token_for_dev_0001(&key, NOW + 1_000, 3600);
    assert_eq!(refused(w.connect(3, "c3", "", &other)), Refusal::Busy);
    // A forged token with a known one's claims is not taken for it.
    let mut forged = token.clone().into_bytes();
    let at = forged.len() - 4;
    forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let request = ConnectRequest::new(b"c4", Some(b""), Some(forged.as_bytes()), Some("10.0.0.2"));
    assert!(matches!(
        refused(w.engine.handle_connect(ConnectionId(4), &request, NOW + 2_000)),
        Refusal::AccessToken("the signature does not verify")
    ));
}
