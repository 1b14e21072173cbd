//! The Authenticator end to end: engine, background task and a real
//! database (SQLite file and Postgres), driven through the broker hooks.

use devicegate_test_support as common;
use std::time::{Duration, Instant};

use devicegate::clock::now_ms;
use devicegate::decision::{AccessDecision, ConnectOutcome};
use devicegate::engine::{ConnectDecision, ConnectionId, Effect, EngineConfig, Hooks};
use devicegate::store::{DeviceSpec, Store};
use devicegate::sync::{Authenticator, SyncConfig};
use devicegate_test_support::fleet::{E3_ID, E3_PW, E9_ID, E9_PW, connect, seed};

fn sync_config() -> SyncConfig {
    SyncConfig {
        poll_interval: Duration::from_millis(100),
        ..SyncConfig::default()
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes; returns how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within {limit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_state_and_kicks_follow_the_database() {
    for db in common::both().await {
        let store = seed(&db.url).await;
        let auth = Authenticator::start(EngineConfig::default(), sync_config(), &db.url).unwrap();
        within(Duration::from_secs(10), async || auth.is_ready()).await;
        assert_eq!(
            connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
            ConnectDecision::Accept
        );
        assert_eq!(
            auth.authorize_publish(ConnectionId(1), "/sys/Ab3dEf9h/dev_0001/thing/x", false, now_ms()),
            AccessDecision::Allow
        );
        // Write-behind reaches the database.
        within(Duration::from_secs(5), async || {
            let info = store.device_info("Ab3dEf9h", "dev_0001").await.unwrap();
            info.online && info.activated_at.is_some()
        })
        .await;
        // A device created after start is picked up from the change feed.
        store
            .create_device(
                "Ab3dEf9h",
                "late",
                DeviceSpec {
                    secret: Some("x".into()),
                    allow_weak_secret: true,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        within(Duration::from_secs(5), async || {
            auth.engine().registry().device("late&Ab3dEf9h").is_some()
        })
        .await;
        // Disabling a connected device throws it off within two seconds.
        store.set_device_enabled("Ab3dEf9h", "dev_0001", false).await.unwrap();
        let took = within(Duration::from_secs(2), async || {
            matches!(
                auth.poll_effect(),
                Some(Effect::Kick {
                    connection: ConnectionId(1),
                    ..
                })
            )
        })
        .await;
        eprintln!("{}: disable reached the engine in {took:?}", db.url);
        auth.handle_disconnect(ConnectionId(1), now_ms());
        let refused = connect(&auth, 2, E3_ID, "dev_0001&Ab3dEf9h", E3_PW);
        assert_eq!(refused.outcome(), ConnectOutcome::NotAuthorized);
        within(Duration::from_secs(5), async || {
            !store.device_info("Ab3dEf9h", "dev_0001").await.unwrap().online
        })
        .await;
        auth.shutdown();
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_activation_commits_before_pushing() {
    for db in common::both().await {
        let store = seed(&db.url).await;
        let auth = Authenticator::start(EngineConfig::default(), sync_config(), &db.url).unwrap();
        within(Duration::from_secs(10), async || auth.is_ready()).await;
        assert_eq!(
            connect(&auth, 1, E9_ID, "dev_0002&Ab3dEf9h", E9_PW),
            ConnectDecision::Accept
        );
        let mut pushed = None;
        within(Duration::from_secs(5), async || {
            if let Some(Effect::Publish { topic, payload, .. }) = auth.poll_effect() {
                pushed = Some((topic, payload));
            }
            pushed.is_some()
        })
        .await;
        let (topic, payload) = pushed.unwrap();
        assert_eq!(topic, "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info");
        let push: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert!(
            store
                .device_info("Ab3dEf9h", "dev_0002")
                .await
                .unwrap()
                .pending_activation,
            "committed before the push"
        );
        let reply = format!(
            r#"{{"id":"{}","code":200,"data":null,"message":"device activate success"}}"#,
            push["id"].as_str().unwrap()
        );
        let _ = auth.handle_message(
            ConnectionId(1),
            "/ext/session/Ab3dEf9h/dev_0002/thing/activate/info_reply",
            reply.as_bytes(),
            now_ms(),
        );
        let secret = push["params"]["deviceSecret"].as_str().unwrap().to_owned();
        within(Duration::from_secs(5), async || {
            store.device_secret("Ab3dEf9h", "dev_0002").await.unwrap().as_deref() == Some(secret.as_str())
        })
        .await;
        assert!(
            store
                .device_info("Ab3dEf9h", "dev_0002")
                .await
                .unwrap()
                .activated_at
                .is_some()
        );
        auth.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_closed_and_shuts_down_promptly() {
    let auth = Authenticator::start(
        EngineConfig::default(),
        sync_config(),
        "postgres://nobody@127.0.0.1:1/none",
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!auth.is_ready());
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW).outcome(),
        ConnectOutcome::Unavailable
    );
    let start = Instant::now();
    auth.shutdown();
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "shutdown took {:?}",
        start.elapsed()
    );
    assert!(Authenticator::start(EngineConfig::default(), sync_config(), "mysql://x").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_wait_for_the_database_and_are_not_lost() {
    let db = common::postgres().await;
    let store = seed(&db.url).await;
    let auth = Authenticator::start(EngineConfig::default(), sync_config(), &db.url).unwrap();
    within(Duration::from_secs(10), async || auth.is_ready()).await;
    // Take the database away: terminate every connection and refuse new ones.
    let admin = common::postgres_admin_url();
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    store.close().await;
    // Logins are still served from memory; their writes queue up.
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    // Pending writes count the batch being attempted (the pool waits up to
    // 5 s for a connection) as well as those queued behind it.
    within(Duration::from_secs(10), async || {
        auth.engine().pending_store_writes() > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        auth.engine().pending_store_writes() > 0,
        "writes wait while the database is down"
    );
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .await
        .unwrap();
    within(Duration::from_secs(15), async || {
        auth.engine().pending_store_writes() == 0
    })
    .await;
    let store = Store::connect(&db.url).await.unwrap();
    let info = store.device_info("Ab3dEf9h", "dev_0001").await.unwrap();
    assert!(info.online && info.activated_at.is_some());
    auth.shutdown();
    store.close().await;
}
