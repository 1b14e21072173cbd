//! The store against real SQLite files and a real Postgres: operator
//! commands, the change feed and write-behind, each on both backends.

use devicegate::credentials::Dialect;
use devicegate::engine::{ConnectionId, IssueKind, StoreWrite};
use devicegate::registry::CredentialKind;
use devicegate::secret::Secret;
use devicegate::store::{DeviceSpec, Entity, ImportRow, ProductSpec, ProductUpdate, Store, StoreError};
use devicegate_test_support as common;

async fn product(store: &Store, pk: &str) {
    store.create_product(ProductSpec::new(pk, Dialect::Enos)).await.unwrap();
}

#[tokio::test]
async fn products_devices_and_principals_round_trip() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk1").await;
        assert!(matches!(
            store.create_product(ProductSpec::new("pk1", Dialect::Enos)).await,
            Err(StoreError::ProductExists(_))
        ));
        assert!(matches!(
            store.create_product(ProductSpec::new("p/k", Dialect::Enos)).await,
            Err(StoreError::Invalid(_))
        ));
        let generated = store
            .create_device("pk1", "dev1", DeviceSpec::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(generated.len(), 32, "at least 128 random bits");
        assert_eq!(
            store.device_secret("pk1", "dev1").await.unwrap().as_deref(),
            Some(generated.as_str())
        );
        let weak = DeviceSpec {
            secret: Some("S3cret".into()),
            ..DeviceSpec::default()
        };
        let refused = store.create_device("pk1", "dev2", weak.clone()).await.unwrap_err();
        assert!(refused.to_string().contains("too short"), "{refused}");
        let given = DeviceSpec {
            allow_weak_secret: true,
            ..weak
        };
        assert_eq!(store.create_device("pk1", "dev2", given).await.unwrap(), None);
        assert!(matches!(
            store.create_device("pk1", "dev2", DeviceSpec::default()).await,
            Err(StoreError::DeviceExists(..))
        ));
        assert!(matches!(
            store.create_device("nope", "dev", DeviceSpec::default()).await,
            Err(StoreError::UnknownProduct(_))
        ));
        assert!(matches!(
            store.create_device("pk1", "a+b", DeviceSpec::default()).await,
            Err(StoreError::Invalid(_))
        ));
        let no_secret = DeviceSpec {
            no_secret: true,
            ..DeviceSpec::default()
        };
        assert!(
            matches!(
                store.create_device("pk1", "dev3", no_secret).await,
                Err(StoreError::Invalid(_))
            ),
            "{}",
            db.url
        );
        let sub = DeviceSpec {
            gateway: Some(("pk1".into(), "dev1".into())),
            ..DeviceSpec::default()
        };
        store.create_device("pk1", "sub1", sub).await.unwrap();
        let devices = store.list_devices(Some("pk1")).await.unwrap();
        assert_eq!(
            devices.iter().map(|d| d.device_key.as_str()).collect::<Vec<_>>(),
            ["dev1", "dev2", "sub1"]
        );
        assert_eq!(devices[2].gateway.as_deref(), Some("pk1/dev1"));
        store.set_device_enabled("pk1", "dev2", false).await.unwrap();
        assert!(!store.device_info("pk1", "dev2").await.unwrap().enabled);
        let status = store.status().await.unwrap();
        assert_eq!(
            (
                status[0].total,
                status[0].enabled,
                status[0].disabled,
                status[0].inactive
            ),
            (3, 2, 1, 3)
        );
        store
            .update_product(
                "pk1",
                ProductUpdate {
                    offline_after_secs: Some(90),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(store.product_info("pk1").await.unwrap().spec.offline_after_secs, 90);
        let bad_rule = ProductUpdate {
            extra_topics: Some(vec!["pub:/a/#/b".into()]),
            ..Default::default()
        };
        assert!(matches!(
            store.update_product("pk1", bad_rule).await,
            Err(StoreError::Invalid(_))
        ));
        store.delete_device("pk1", "dev2").await.unwrap();
        assert!(matches!(
            store.device_info("pk1", "dev2").await,
            Err(StoreError::UnknownDevice(..))
        ));
        let hash = devicegate::principal::hash_password(b"pw").unwrap();
        store
            .create_principal("backend", &hash, &["sub:/sys/+/+/thing/#".into()])
            .await
            .unwrap();
        assert!(matches!(
            store.create_principal("x&y", &hash, &["sub:#".into()]).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store
                .create_principal("p2", &hash, &["sub:/{productKey}/#".into()])
                .await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(
            store.list_principals().await.unwrap()[0].rules,
            ["sub:/sys/+/+/thing/#"]
        );
        assert_eq!(store.delete_product("pk1").await.unwrap(), 2);
        assert!(store.list_devices(None).await.unwrap().is_empty());
        store.close().await;
    }
}

#[tokio::test]
async fn registration_issues_fresh_secrets_until_activation() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk").await;
        let first = store.register_device("pk", "dev").await.unwrap();
        let second = store.register_device("pk", "dev").await.unwrap();
        assert_ne!(first, second);
        assert_eq!(store.device_secret("pk", "dev").await.unwrap(), Some(second));
        let activated = StoreWrite::Activated {
            device: "dev&pk".into(),
            at_ms: 1,
        };
        store.apply_writes(vec![activated]).await.unwrap();
        assert!(matches!(
            store.register_device("pk", "dev").await,
            Err(StoreError::AlreadyActivated(..))
        ));
        store.reset_activation("pk", "dev").await.unwrap();
        assert!(store.device_info("pk", "dev").await.unwrap().activated_at.is_none());
        store.register_device("pk", "dev").await.unwrap();
    }
}

#[tokio::test]
async fn every_change_is_in_the_feed() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        let start = store.latest_change().await.unwrap();
        product(&store, "pk").await;
        store.create_device("pk", "d", DeviceSpec::default()).await.unwrap();
        store.set_device_enabled("pk", "d", false).await.unwrap();
        let changes = store.changes_since(start, 100).await.unwrap();
        let entities: Vec<Entity> = changes.into_iter().map(|c| c.entity).collect();
        assert_eq!(
            entities,
            [
                Entity::Product("pk".into()),
                Entity::Device("d&pk".into()),
                Entity::Device("d&pk".into())
            ]
        );
        let record = store.device_record("d&pk").await.unwrap().unwrap();
        assert!(!record.enabled);
        assert!(store.device_record("none&pk").await.unwrap().is_none());
    }
}

#[tokio::test]
async fn write_behind_applies_presence_activation_and_issued_secrets() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        let mut spec = ProductSpec::new("pk", Dialect::Enos);
        spec.dynamic_activation = true;
        assert!(
            store.create_product(spec).await.unwrap().is_some(),
            "a product secret is generated"
        );
        store
            .create_device(
                "pk",
                "dyn",
                DeviceSpec {
                    no_secret: true,
                    ..DeviceSpec::default()
                },
            )
            .await
            .unwrap();
        let writes = vec![
            StoreWrite::Presence {
                device: "dyn&pk".into(),
                online: true,
                at_ms: 10,
                address: Some("10.1.2.3".into()),
            },
            StoreWrite::Issue {
                device: "dyn&pk".into(),
                kind: IssueKind::Activation,
                secret: Secret::new(*b"0123456789abcdef0123456789abcdef"),
                connection: ConnectionId(7),
            },
            StoreWrite::Event {
                at_ms: 10,
                kind: "login".into(),
                subject: Some("dyn&pk".into()),
                address: None,
                reason: None,
            },
        ];
        let outcome = store.apply_writes(writes).await.unwrap();
        assert_eq!(outcome.committed_issues.len(), 1);
        assert_eq!(outcome.committed_issues[0].0, Some(ConnectionId(7)));
        let info = store.device_info("pk", "dyn").await.unwrap();
        assert!(info.online && info.pending_activation && !info.has_secret);
        assert_eq!(info.last_address.as_deref(), Some("10.1.2.3"));
        store
            .apply_writes(vec![StoreWrite::Activated {
                device: "dyn&pk".into(),
                at_ms: 20,
            }])
            .await
            .unwrap();
        let info = store.device_info("pk", "dyn").await.unwrap();
        assert!(info.has_secret && !info.pending_activation);
        assert_eq!(info.activated_at, Some(20));
        assert_eq!(
            store.device_secret("pk", "dyn").await.unwrap().as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        // A write for a device that no longer exists changes nothing and loses nothing else.
        let outcome = store
            .apply_writes(vec![
                StoreWrite::Presence {
                    device: "gone&pk".into(),
                    online: false,
                    at_ms: 30,
                    address: None,
                },
                StoreWrite::Presence {
                    device: "dyn&pk".into(),
                    online: false,
                    at_ms: 30,
                    address: None,
                },
            ])
            .await
            .unwrap();
        assert_eq!(outcome.dropped, 0);
        assert!(!store.device_info("pk", "dyn").await.unwrap().online);
        assert_eq!(store.prune_events(11).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn import_reports_each_bad_row_and_keeps_the_good_ones() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk").await;
        let row = |line, dk: &str, secret: Option<&str>| ImportRow {
            line,
            device_key: dk.into(),
            secret: secret.map(Into::into),
            gateway: None,
        };
        let batch = [
            row(2, "a", Some("S3cretDevice000a")),
            row(3, "b c", None),
            row(4, "a", None),
            row(5, "d", None),
            row(6, "e", Some("short")),
        ];
        let results = store.import_devices("pk", &batch, false).await.unwrap();
        assert!(matches!(results[0], Ok(None)));
        assert!(results[1].as_ref().unwrap_err().contains("whitespace"));
        assert!(results[2].as_ref().unwrap_err().contains("already exists"));
        assert!(matches!(&results[3], Ok(Some(s)) if s.len() == 32));
        assert!(results[4].as_ref().unwrap_err().contains("too short"));
        assert_eq!(store.list_devices(Some("pk")).await.unwrap().len(), 2);
        let weak = store
            .import_devices("pk", &[row(7, "e", Some("short"))], true)
            .await
            .unwrap();
        assert!(matches!(weak[0], Ok(None)), "allowed with the flag");
    }
}

#[tokio::test]
async fn an_import_batch_is_one_change_that_loads_just_its_devices() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk").await;
        store.create_device("pk", "old", DeviceSpec::default()).await.unwrap();
        let before = store.latest_change().await.unwrap();
        let row = |line, dk: &str, gateway: Option<&str>| ImportRow {
            line,
            device_key: dk.into(),
            secret: Some(format!("S3cretDevice{dk:0>4}")),
            gateway: gateway.map(|g| ("pk".to_owned(), g.to_owned())),
        };
        // A gateway earlier in the same batch counts; 2,500 rows span three INSERTs.
        let mut batch = vec![row(2, "gw", None), row(3, "sub", Some("gw")), row(4, "old", None)];
        batch.extend((0..2500).map(|i| row(5 + i, &format!("d{i}"), None)));
        let results = store.import_devices("pk", &batch, false).await.unwrap();
        assert!(results[0].is_ok() && results[1].is_ok(), "{:?}", &results[..2]);
        assert!(results[2].as_ref().unwrap_err().contains("already exists"));
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2502);
        let feed = store.changes_since(before, 100).await.unwrap();
        assert_eq!(feed.len(), 1, "one change for the batch: {feed:?}");
        let Entity::Devices {
            product_key,
            device_keys,
        } = &feed[0].entity
        else {
            panic!("{feed:?}");
        };
        assert_eq!(product_key, "pk");
        assert_eq!(device_keys.len(), 2502);
        assert!(!device_keys.contains(&"old".to_owned()));
        let records = store.device_records("pk", device_keys).await.unwrap();
        assert_eq!(records.len(), 2502);
        let (key, record) = &records[1];
        assert_eq!(key, "sub&pk");
        let record = record.as_ref().unwrap();
        assert_eq!(record.gateway.as_deref(), Some("gw&pk"), "{record:?}");
        assert_eq!(
            store.device_secret("pk", "d2499").await.unwrap().as_deref(),
            Some("S3cretDeviced2499")
        );
        store.delete_device("pk", "d0").await.unwrap();
        let gone = store
            .device_records("pk", &["d0".to_owned(), "d1".to_owned()])
            .await
            .unwrap();
        assert!(gone[0].1.is_none() && gone[1].1.is_some(), "{gone:?}");
    }
}

#[tokio::test]
async fn bad_urls_are_refused_clearly() {
    let e = Store::connect("mysql://x").await.unwrap_err();
    assert!(e.to_string().contains("not supported"), "{e}");
    let e = Store::connect("postgres://u:hunter2@127.0.0.1:1/db").await.unwrap_err();
    assert!(
        e.to_string()
            .contains("cannot open the database postgres://u:***@127.0.0.1:1/db"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"));
    assert!(e.is_transient());
    let e = Store::connect("sqlite:///nonexistent-dir/x/y.db").await.unwrap_err();
    assert!(e.to_string().contains("cannot open the database"), "{e}");
}

#[tokio::test]
async fn psk_credentials_are_created_loaded_and_revoked() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk1").await;
        store.create_device("pk1", "dev1", DeviceSpec::default()).await.unwrap();
        store.create_device("pk1", "dev2", DeviceSpec::default()).await.unwrap();
        let guid = store.device_info("pk1", "dev1").await.unwrap().guid.unwrap();
        assert_eq!(guid.len(), 36, "{guid}");
        assert_eq!(guid.as_bytes()[14], b'4', "UUID v4: {guid}");
        assert_ne!(store.device_info("pk1", "dev2").await.unwrap().guid, Some(guid));

        let generated = store.create_psk("pk1", "dev1", None).await.unwrap();
        assert_eq!(generated.identity.len(), 22);
        assert_eq!(generated.key.len(), 64);
        assert!(
            generated
                .key
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        );
        let chosen = store.create_psk("pk1", "dev1", Some("dev1-psk")).await.unwrap();
        assert_eq!(chosen.identity, "dev1-psk");
        let taken = store.create_psk("pk1", "dev2", Some("dev1-psk")).await.unwrap_err();
        assert!(taken.to_string().contains("is taken"), "{taken}");
        assert!(matches!(
            store.create_psk("pk1", "dev1", Some("a b")).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.create_psk("pk1", "nope", None).await,
            Err(StoreError::UnknownDevice(..))
        ));

        let record = store.device_record("dev1&pk1").await.unwrap().unwrap();
        assert_eq!(record.credentials.len(), 2);
        assert_eq!(&*record.credentials[1].identity, "dev1-psk");
        assert_eq!(record.credentials[1].material.expose(), chosen.key.as_bytes());
        let loaded = store.load_devices().await.unwrap();
        let dev1 = loaded.iter().find(|(k, _)| k == "dev1&pk1").unwrap();
        assert_eq!(dev1.1.credentials, record.credentials);

        store
            .apply_writes(vec![StoreWrite::CredentialUsed {
                device: "dev1&pk1".into(),
                kind: "psk",
                identity: "dev1-psk".into(),
                at_ms: 1_796_000_000_000,
            }])
            .await
            .unwrap();
        let listed = store.credentials("pk1", "dev1").await.unwrap();
        let used: Vec<_> = listed.iter().map(|c| (c.identity.as_str(), c.first_used_at)).collect();
        assert!(used.contains(&("dev1-psk", Some(1_796_000_000_000))), "{used:?}");
        assert!(used.contains(&(generated.identity.as_str(), None)), "{used:?}");
        let reloaded = store.device_record("dev1&pk1").await.unwrap().unwrap();
        assert!(
            reloaded
                .credentials
                .iter()
                .any(|c| &*c.identity == "dev1-psk" && c.used)
        );
        let before = store.latest_change().await.unwrap();
        assert_eq!(
            store
                .revoke_credentials("pk1", "dev1", CredentialKind::Psk, Some("dev1-psk"))
                .await
                .unwrap(),
            1
        );
        let feed = store.changes_since(before, 10).await.unwrap();
        assert_eq!(feed.len(), 1);
        assert_eq!(feed[0].entity, Entity::Device("dev1&pk1".into()));
        let record = store.device_record("dev1&pk1").await.unwrap().unwrap();
        assert_eq!(record.credentials.len(), 1, "revoked PSKs are not loaded");
        assert!(
            store
                .revoke_credentials("pk1", "dev1", CredentialKind::Psk, Some("dev1-psk"))
                .await
                .is_err(),
            "revoking twice is refused"
        );
        assert_eq!(
            store
                .revoke_credentials("pk1", "dev1", CredentialKind::Psk, None)
                .await
                .unwrap(),
            1
        );
        let listed = store.credentials("pk1", "dev1").await.unwrap();
        assert_eq!(listed.len(), 3, "its secret and two PSKs: {listed:?}");
        assert_eq!(
            (listed[0].kind.as_str(), listed[0].identity.as_str()),
            ("secret", "dev1&pk1")
        );
        assert!(listed[0].revoked_at.is_none());
        assert!(listed[1..].iter().all(|c| c.revoked_at.is_some() && c.kind == "psk"));
        store.delete_device("pk1", "dev1").await.unwrap();
        assert!(
            store.credentials("pk1", "dev1").await.unwrap().is_empty(),
            "deleted with the device"
        );
    }
}

#[tokio::test]
async fn a_certificate_registered_just_in_time_creates_its_device_once() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk").await;
        let write = |dk: &str, fingerprint: &str| StoreWrite::RegisterCertificate {
            product_key: "pk".into(),
            device_key: dk.into(),
            fingerprint: fingerprint.into(),
            der: vec![0x30, 0x03, 0x02, 0x01, 0x01].into(),
            not_after_ms: 4_000_000_000_000,
        };
        let before = store.latest_change().await.unwrap();
        store.apply_writes(vec![write("new", "aa11")]).await.unwrap();
        let record = store
            .device_record("new&pk")
            .await
            .unwrap()
            .expect("the device is created");
        assert_eq!(record.credentials.len(), 1);
        assert_eq!(&*record.credentials[0].identity, "aa11");
        assert_eq!(record.credentials[0].not_after_ms, Some(4_000_000_000_000));
        assert_eq!(store.changes_since(before, 10).await.unwrap().len(), 1);
        assert!(store.device_info("pk", "new").await.unwrap().guid.is_some());
        // A device that exists by the time the write lands gets nothing.
        store.create_device("pk", "taken", DeviceSpec::default()).await.unwrap();
        store.apply_writes(vec![write("taken", "bb22")]).await.unwrap();
        assert!(
            store
                .device_record("taken&pk")
                .await
                .unwrap()
                .unwrap()
                .credentials
                .is_empty()
        );
    }
}

#[tokio::test]
async fn the_credentials_migration_moves_existing_secrets() {
    // A database as migrations 0001 and 0002 left it, with a device secret
    // in `devices`, then every migration: the secret logs in from its new place.
    let db = common::sqlite();
    let path = db.url.trim_start_matches("sqlite://");
    let old = sqlx::SqlitePool::connect(&format!("sqlite://{path}?mode=rwc"))
        .await
        .unwrap();
    for sql in [
        include_str!("../src/store/migrations/sqlite/0001_schema.sql"),
        include_str!("../src/store/migrations/sqlite/0002_applied_writes.sql"),
    ] {
        sqlx::raw_sql(sql).execute(&old).await.unwrap();
    }
    sqlx::raw_sql(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, checksum BLOB NOT NULL, \
         execution_time BIGINT NOT NULL);
         INSERT INTO products (product_key, created_at) VALUES ('pk', 1);
         INSERT INTO devices (product_key, device_key, device_secret, created_at) VALUES ('pk', 'old', 'OldSecret1', 1);
         INSERT INTO devices (product_key, device_key, created_at) VALUES ('pk', 'none', 1);
         INSERT INTO changes (entity, product_key, device_key, at) VALUES ('device', 'pk', 'old', 1);
         INSERT INTO changes (entity, product_key, device_key, at) VALUES ('device', 'pk', 'none', 1);
         INSERT INTO changes (entity, product_key, at) VALUES ('product', 'pk', 1);
         DELETE FROM changes WHERE entity = 'product';",
    )
    .execute(&old)
    .await
    .unwrap();
    let migrator = sqlx::migrate!("src/store/migrations/sqlite");
    for migration in migrator.iter().filter(|m| m.version <= 2) {
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, 1, $3, 0)",
        )
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .execute(&old)
        .await
        .unwrap();
    }
    old.close().await;
    let store = Store::connect(&db.url).await.unwrap();
    assert_eq!(
        store.device_secret("pk", "old").await.unwrap().as_deref(),
        Some("OldSecret1")
    );
    assert_eq!(store.device_secret("pk", "none").await.unwrap(), None);
    let record = store.device_record("old&pk").await.unwrap().unwrap();
    assert_eq!(
        record.secret.as_ref().map(|s| s.expose().to_vec()),
        Some(b"OldSecret1".to_vec())
    );
    let info = store.device_info("pk", "old").await.unwrap();
    assert!(info.has_secret);
    assert_eq!(info.guid.as_deref().map(str::len), Some(36), "older rows get a GUID");
    assert!(!store.device_info("pk", "none").await.unwrap().has_secret);
    // Migration 0004 rebuilt the change feed: ids kept, and the next id
    // follows the last one ever given, not the last one left.
    assert_eq!(store.latest_change().await.unwrap(), 2);
    store.revoke_tokens("pk", "old").await.unwrap();
    let changes = store.changes_since(0, 10).await.unwrap();
    assert_eq!(changes.iter().map(|c| c.id).collect::<Vec<_>>(), vec![1, 2, 4]);
}

#[tokio::test]
async fn access_keys_token_keys_agents_and_assignments() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk1").await;
        store.create_device("pk1", "dev1", DeviceSpec::default()).await.unwrap();
        // Access keys: only the pair exchanges; the secret is kept hashed.
        let pair = store.create_access_key("pk1", "dev1").await.unwrap();
        assert_eq!((pair.access_key.len(), pair.secret_key.len()), (64, 64));
        let subject = store
            .exchange_access_key(&pair.access_key, &pair.secret_key)
            .await
            .unwrap();
        assert_eq!(subject.device_key, "dev1");
        assert_eq!(subject.token_ttl_secs, 3600);
        assert_eq!(
            subject.device_guid,
            store.device_info("pk1", "dev1").await.unwrap().guid.unwrap()
        );
        for (access, secret) in [
            (pair.access_key.as_str(), "0".repeat(64)),
            ("f".repeat(64).as_str(), pair.secret_key.clone()),
        ] {
            assert!(matches!(
                store.exchange_access_key(access, &secret).await,
                Err(StoreError::NotAuthenticated(_))
            ));
        }
        let listed = store.credentials("pk1", "dev1").await.unwrap();
        let access = listed.iter().find(|c| c.kind == "access_key").unwrap();
        assert!(access.first_used_at.is_some());
        store
            .revoke_access_keys("pk1", "dev1", Some(&pair.access_key))
            .await
            .unwrap();
        assert!(
            store
                .exchange_access_key(&pair.access_key, &pair.secret_key)
                .await
                .is_err()
        );
        // Token keys: in the feed, refused twice, removed.
        let before = store.latest_change().await.unwrap();
        store.add_token_key("k1", &[7; 32]).await.unwrap();
        assert!(matches!(
            store.add_token_key("k1", &[8; 32]).await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            store.add_token_key("bad kid", &[8; 32]).await,
            Err(StoreError::Invalid(_))
        ));
        assert_eq!(store.load_token_keys().await.unwrap(), vec![("k1".to_owned(), [7; 32])]);
        assert_eq!(store.token_key_id(&[7; 32]).await.unwrap().as_deref(), Some("k1"));
        let feed = store.changes_since(before, 10).await.unwrap();
        assert_eq!(feed.last().unwrap().entity, Entity::TokenKey("k1".into()));
        store.remove_token_key("k1").await.unwrap();
        assert_eq!(store.token_key("k1").await.unwrap(), None);
        // Revoking tokens stamps the device.
        store.revoke_tokens("pk1", "dev1").await.unwrap();
        assert!(
            store
                .device_record("dev1&pk1")
                .await
                .unwrap()
                .unwrap()
                .tokens_revoked_at_ms
                > 0
        );
        // Agents: scoped, hashed, revocable.
        let agent = store
            .create_agent("factory", &["pk1".into()], false, Some(60_000))
            .await
            .unwrap();
        let found = store.agent_by_token(&agent.token).await.unwrap();
        assert!(found.require_product("pk1").is_ok());
        assert!(matches!(found.require_product("pk2"), Err(StoreError::Forbidden(_))));
        assert!(matches!(found.require_admin(), Err(StoreError::Forbidden(_))));
        assert!(matches!(
            store.create_agent("x", &["nope".into()], false, None).await,
            Err(StoreError::UnknownProduct(_))
        ));
        assert!(matches!(
            store.create_agent("y", &[], false, None).await,
            Err(StoreError::Invalid(_))
        ));
        store.revoke_agent("factory").await.unwrap();
        assert!(matches!(
            store.agent_by_token(&agent.token).await,
            Err(StoreError::NotAuthenticated(_))
        ));
        let expired = store
            .create_agent("old", &["pk1".into()], false, Some(0))
            .await
            .unwrap();
        assert!(store.agent_by_token(&expired.token).await.is_err());
        // Assignments: the device's own, else its product's.
        let update = ProductUpdate {
            server_url: Some("mqtt://a:1883".into()),
            token_ttl_secs: Some(5),
            ..ProductUpdate::default()
        };
        store.update_product("pk1", update).await.unwrap();
        assert_eq!(
            store
                .bootstrap_target("pk1", "dev1")
                .await
                .unwrap()
                .unwrap()
                .server_url
                .as_deref(),
            Some("mqtt://a:1883")
        );
        store
            .assign_server("pk1", "dev1", Some("mqtts://b:8883"))
            .await
            .unwrap();
        let target = store.bootstrap_target("pk1", "dev1").await.unwrap().unwrap();
        assert_eq!(target.server_url.as_deref(), Some("mqtts://b:8883"));
        assert!(target.secret.is_some());
        assert!(matches!(
            store.assign_server("pk1", "dev1", Some("http://x")).await,
            Err(StoreError::Invalid(_))
        ));
        let product = store.product("pk1").await.unwrap().unwrap();
        assert_eq!(
            (product.token_ttl_secs, product.server_url.as_deref()),
            (5, Some("mqtt://a:1883"))
        );
        let record = store.device_record("dev1&pk1").await.unwrap().unwrap();
        assert_eq!(record.server_url.as_deref(), Some("mqtts://b:8883"));
        assert!(record.guid.is_some() && product.guid.is_some());
        let guid = record.guid.unwrap().to_string();
        assert_eq!(
            store.device_by_guid(&guid).await.unwrap(),
            Some(("pk1".into(), "dev1".into()))
        );
    }
}

#[tokio::test]
async fn a_live_certificate_names_its_device_and_a_revoked_one_nobody() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pk1").await;
        store.create_device("pk1", "dev1", DeviceSpec::default()).await.unwrap();
        store.create_device("pk1", "dev2", DeviceSpec::default()).await.unwrap();
        let (first, second, other) = ("aa".repeat(32), "bb".repeat(32), "cc".repeat(32));
        let far = 4_000_000_000_000;
        store.add_certificate("pk1", "dev1", &first, "PEM1", far).await.unwrap();
        store
            .add_certificate("pk1", "dev1", &second, "PEM2", far)
            .await
            .unwrap();
        store.add_certificate("pk1", "dev2", &other, "PEM3", far).await.unwrap();
        let dev1 = Some(("pk1".to_owned(), "dev1".to_owned()));
        assert_eq!(store.device_by_certificate(&first).await.unwrap(), dev1, "{}", db.url);
        assert_eq!(store.device_by_certificate(&second).await.unwrap(), dev1);
        assert_eq!(
            store.device_by_certificate(&other).await.unwrap(),
            Some(("pk1".to_owned(), "dev2".to_owned()))
        );
        assert_eq!(store.device_by_certificate(&"dd".repeat(32)).await.unwrap(), None);
        // Only certificates: a PSK identity equal to a fingerprint names nobody.
        store.create_psk("pk1", "dev2", Some(&"ee".repeat(32))).await.unwrap();
        assert_eq!(store.device_by_certificate(&"ee".repeat(32)).await.unwrap(), None);

        store
            .revoke_credentials("pk1", "dev1", CredentialKind::Certificate, Some(&first))
            .await
            .unwrap();
        assert_eq!(store.device_by_certificate(&first).await.unwrap(), None, "revoked");
        assert_eq!(
            store.device_by_certificate(&second).await.unwrap(),
            dev1,
            "the other stays"
        );
        store.delete_device("pk1", "dev2").await.unwrap();
        assert_eq!(
            store.device_by_certificate(&other).await.unwrap(),
            None,
            "deleted with its device"
        );
    }
}

#[tokio::test]
async fn devices_are_listed_a_page_at_a_time_in_key_order() {
    for db in common::both().await {
        let store = Store::connect(&db.url).await.unwrap();
        product(&store, "pkB").await;
        product(&store, "pkA").await;
        product(&store, "pkEmpty").await;
        for dk in ["d3", "d1", "d5", "d2", "d4"] {
            store.create_device("pkB", dk, DeviceSpec::default()).await.unwrap();
        }
        for dk in ["x2", "x1"] {
            store.create_device("pkA", dk, DeviceSpec::default()).await.unwrap();
        }
        let keys = |page: &[devicegate::store::DeviceInfo]| {
            page.iter()
                .map(|d| format!("{}/{}", d.product_key, d.device_key))
                .collect::<Vec<_>>()
        };

        let (page, total) = store.list_devices_page(None, 3, 0).await.unwrap();
        assert_eq!(
            (keys(&page), total),
            (vec!["pkA/x1".into(), "pkA/x2".into(), "pkB/d1".into()], 7),
            "{}",
            db.url
        );
        let (page, total) = store.list_devices_page(None, 3, 3).await.unwrap();
        assert_eq!(
            (keys(&page), total),
            (vec!["pkB/d2".into(), "pkB/d3".into(), "pkB/d4".into()], 7)
        );
        let (page, total) = store.list_devices_page(None, 3, 6).await.unwrap();
        assert_eq!((keys(&page), total), (vec!["pkB/d5".into()], 7));
        let (page, total) = store.list_devices_page(None, 3, 7).await.unwrap();
        assert!(page.is_empty() && total == 7, "past the end: empty, the true count");
        let (page, total) = store.list_devices_page(None, 1000, u64::MAX).await.unwrap();
        assert!(page.is_empty() && total == 7);

        let (page, total) = store.list_devices_page(Some("pkB"), 2, 1).await.unwrap();
        assert_eq!((keys(&page), total), (vec!["pkB/d2".into(), "pkB/d3".into()], 5));
        let (page, total) = store.list_devices_page(Some("pkEmpty"), 10, 0).await.unwrap();
        assert!(page.is_empty() && total == 0);
        let (page, total) = store.list_devices_page(Some("nope"), 10, 0).await.unwrap();
        assert!(page.is_empty() && total == 0);

        // Every page together is the whole listing, in the same order.
        let mut all = Vec::new();
        let mut offset = 0;
        loop {
            let (page, _) = store.list_devices_page(None, 2, offset).await.unwrap();
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            all.extend(page);
        }
        assert_eq!(keys(&all), keys(&store.list_devices(None).await.unwrap()));
    }
}

/// A key file text with the keys `kids`, the first current.
fn key_file(dir: &std::path::Path, name: &str, lines: &[&str]) -> std::sync::Arc<devicegate::store::SecretKeys> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::sync::Arc::new(devicegate::store::SecretKeys::load(&path).unwrap())
}

/// Every stored secret column, raw.
async fn stored_secrets(url: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "SELECT material AS v FROM credentials WHERE kind IN ('secret', 'psk') AND material IS NOT NULL",
        "SELECT pending_secret AS v FROM devices WHERE pending_secret IS NOT NULL",
        "SELECT product_secret AS v FROM products WHERE product_secret IS NOT NULL",
    ] {
        for row in sqlx::query(sql).fetch_all(&pool).await.unwrap() {
            out.push(sqlx::Row::try_get::<String, _>(&row, "v").unwrap());
        }
    }
    pool.close().await;
    out
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_a_dump_alone_logs_no_one_in() {
    use devicegate::store::{SecretKeys, is_sealed};
    let dir = tempfile::tempdir().unwrap();
    let k1 = SecretKeys::new_key_line("k1").unwrap();
    let k2 = SecretKeys::new_key_line("k2").unwrap();
    for db in common::both().await {
        // A fleet written before sealing: plaintext.
        let plain = Store::connect(&db.url).await.unwrap();
        let mut spec = ProductSpec::new("pk", Dialect::Enos);
        spec.dynamic_activation = true;
        spec.secret = Some("ProdSecretXYZ123".into());
        plain.create_product(spec).await.unwrap();
        let secret = plain
            .create_device("pk", "old", DeviceSpec::default())
            .await
            .unwrap()
            .unwrap();
        let psk = plain.create_psk("pk", "old", None).await.unwrap();
        assert!(stored_secrets(&db.url).await.contains(&secret));

        // Sealing with k1: nothing in the database is plaintext any more.
        let sealed = Store::connect(&db.url)
            .await
            .unwrap()
            .with_secret_keys(Some(key_file(dir.path(), "k1", &[&k1])));
        let report = sealed.seal_secrets().await.unwrap();
        assert_eq!((report.sealed, report.resealed), (3, 0), "{report:?}");
        let new = sealed
            .create_device("pk", "new", DeviceSpec::default())
            .await
            .unwrap()
            .unwrap();
        let waiting = DeviceSpec {
            no_secret: true,
            ..DeviceSpec::default()
        };
        sealed.create_device("pk", "dyn", waiting).await.unwrap();
        sealed
            .apply_writes(vec![StoreWrite::Issue {
                device: "dyn&pk".into(),
                kind: IssueKind::Activation,
                secret: Secret::new(*b"0123456789abcdef0123456789abcdef"),
                connection: ConnectionId(7),
            }])
            .await
            .unwrap();
        let raw = stored_secrets(&db.url).await;
        assert!(raw.iter().all(|v| is_sealed(v)), "{raw:?}");
        for plaintext in [secret.as_str(), new.as_str(), psk.key.as_str(), "ProdSecretXYZ123"] {
            assert!(!raw.iter().any(|v| v.contains(plaintext)));
        }
        // With the key the registry gets every secret; without it, none.
        let record = sealed.device_record("old&pk").await.unwrap().unwrap();
        assert_eq!(record.secret.unwrap().expose(), secret.as_bytes());
        assert_eq!(record.credentials[0].material.expose(), psk.key.as_bytes());
        assert!(sealed.product("pk").await.unwrap().unwrap().secret.is_some());
        let dump_only = Store::connect(&db.url).await.unwrap();
        assert!(
            dump_only
                .device_record("old&pk")
                .await
                .unwrap()
                .unwrap()
                .secret
                .is_none()
        );
        assert!(dump_only.product("pk").await.unwrap().unwrap().secret.is_none());
        // A plaintext secret written around the sealing is refused.
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
        sqlx::query("UPDATE credentials SET material = 'PlainSecret00001' WHERE identity = 'new&pk'")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        assert!(sealed.device_record("new&pk").await.unwrap().unwrap().secret.is_none());

        // Rotation: k2 current, k1 kept to open older values; afterwards
        // a store with k2 alone opens everything.
        let rotated =
            Store::connect(&db.url)
                .await
                .unwrap()
                .with_secret_keys(Some(key_file(dir.path(), "k21", &[&k2, &k1])));
        let report = rotated.seal_secrets().await.unwrap();
        assert_eq!(
            (report.sealed, report.resealed, report.current),
            (1, 4, 0),
            "{report:?}"
        );
        let k2_only = Store::connect(&db.url)
            .await
            .unwrap()
            .with_secret_keys(Some(key_file(dir.path(), "k2", &[&k2])));
        let record = k2_only.device_record("old&pk").await.unwrap().unwrap();
        assert_eq!(record.secret.unwrap().expose(), secret.as_bytes());
        assert!(
            k2_only
                .device_record("dyn&pk")
                .await
                .unwrap()
                .unwrap()
                .pending_secret
                .is_some()
        );
        assert_eq!(k2_only.seal_secrets().await.unwrap().current, 5);
    }
}
