//! Nothing lost: state changes survive a database that refuses writes for
//! its own reasons (a read-only Postgres, an SQLite file deleted or
//! replaced under the broker) and a broker restart in the middle, and a
//! replayed spool writes each change once. Real Postgres, real SQLite files.

use std::path::Path;
use std::time::{Duration, Instant};

use devicegate::clock::now_ms;
use devicegate::engine::{ConnectDecision, ConnectionId, Effect, EngineConfig, Hooks, StoreWrite};
use devicegate::spool::Spool;
use devicegate::store::Store;
use devicegate::sync::{Authenticator, SyncConfig};
use devicegate_test_support as common;
use devicegate_test_support::fleet::{E3_ID, E3_PW, E9_ID, E9_PW, connect, seed};
use sqlx::Connection;

/// Timings for tests, with the spool in `spool_dir`; installs a subscriber
/// so the background task's log lines show when a test fails.
fn sync_config(spool_dir: &Path) -> SyncConfig {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    SyncConfig {
        poll_interval: Duration::from_millis(100),
        spool_dir: Some(spool_dir.to_owned()),
        watch_interval: Duration::from_millis(200),
        ..SyncConfig::default()
    }
}

async fn within(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Switches `default_transaction_read_only` for the test database and
/// drops its connections, so that new ones get the setting (as after a
/// failover to a standby).
async fn set_read_only(db_url: &str, on: bool) {
    let name = db_url.rsplit('/').next().unwrap();
    let mut admin = sqlx::PgConnection::connect(&common::postgres_admin_url())
        .await
        .unwrap();
    sqlx::query(&format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = {}",
        if on { "on" } else { "off" }
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// How many audit events of `kind` the database holds.
async fn events(url: &str, kind: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let row = sqlx::query("SELECT COUNT(*) AS n FROM events WHERE kind = $1")
        .bind(kind)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    sqlx::Row::get::<i64, _>(&row, "n")
}

fn spool_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().lines().count())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_postgres_keeps_writes_and_the_secret_until_it_takes_them() {
    let db = common::postgres().await;
    let store = seed(&db.url).await;
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    set_read_only(&db.url, true).await;
    // A static login and a dynamic activation while the database is a
    // read-only standby: served from memory, their writes kept.
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    assert_eq!(
        connect(&auth, 2, E9_ID, "dev_0002&Ab3dEf9h", E9_PW),
        ConnectDecision::Accept
    );
    within("writes reach the spool file", Duration::from_secs(10), async || {
        spool_lines(spool.path()) >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(auth.engine().pending_store_writes() >= 3);
    assert!(
        std::iter::from_fn(|| auth.poll_effect()).all(|e| !matches!(e, Effect::Publish { .. })),
        "no secret is pushed before it is durable"
    );
    let info = store.device_info("Ab3dEf9h", "dev_0001").await.unwrap();
    assert!(
        !info.online && info.activated_at.is_none(),
        "nothing reached the database yet"
    );
    // The primary is back: everything is written, and the secret pushed.
    set_read_only(&db.url, false).await;
    let mut pushed = false;
    within("the activation secret is pushed", Duration::from_secs(40), async || {
        pushed |= std::iter::from_fn(|| auth.poll_effect()).any(|e| {
            matches!(e, Effect::Publish { connection, ref topic, .. }
                if connection == ConnectionId(2) && topic.ends_with("thing/activate/info"))
        });
        pushed
    })
    .await;
    within("the queue drains", Duration::from_secs(10), async || {
        auth.engine().pending_store_writes() == 0
    })
    .await;
    let store = Store::connect(&db.url).await.unwrap();
    let info = store.device_info("Ab3dEf9h", "dev_0001").await.unwrap();
    assert!(info.online && info.activated_at.is_some());
    assert!(
        store
            .device_info("Ab3dEf9h", "dev_0002")
            .await
            .unwrap()
            .pending_activation
    );
    assert_eq!(events(&db.url, "login").await, 2);
    assert_eq!(spool_lines(spool.path()), 0, "the spool is emptied");
    auth.shutdown();
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_while_the_database_refuses_writes_loses_nothing() {
    let db = common::postgres().await;
    let store = seed(&db.url).await;
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    set_read_only(&db.url, true).await;
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    auth.handle_disconnect(ConnectionId(1), now_ms());
    auth.shutdown();
    assert!(
        spool_lines(spool.path()) >= 4,
        "login, activation and presence wait in the spool"
    );
    set_read_only(&db.url, false).await;
    // The next start replays them.
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("the spool is replayed", Duration::from_secs(15), async || {
        store
            .device_info("Ab3dEf9h", "dev_0001")
            .await
            .is_ok_and(|i| i.activated_at.is_some() && i.last_seen_at.is_some() && !i.online)
            && spool_lines(spool.path()) == 0
    })
    .await;
    assert_eq!(events(&db.url, "login").await, 1);
    auth.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_spool_writes_each_change_once() {
    for db in common::both().await {
        let store = seed(&db.url).await;
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(&dir.path().join("x.spool")).unwrap();
        let event = StoreWrite::Event {
            at_ms: now_ms(),
            kind: "login".into(),
            subject: Some("dev_0001&Ab3dEf9h".into()),
            address: None,
            reason: None,
        };
        spool.append(&[event.clone(), event]).unwrap();
        let batch = spool.read(10).unwrap();
        // Applied, then applied again as after a crash before the cursor moved.
        store.apply_spooled(&batch).await.unwrap();
        store.apply_spooled(&batch).await.unwrap();
        assert_eq!(events(&db.url, "login").await, 2, "{}", db.url);
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_then_replaced_sqlite_file_is_noticed_and_reloaded() {
    let db = common::sqlite();
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    seed(&db.url).await.close().await;
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    // A backup the operator will restore: the same fleet, dev_0001 disabled.
    let backup = format!("{path}.restored");
    let restored = seed(&format!("sqlite://{backup}")).await;
    restored
        .set_device_enabled("Ab3dEf9h", "dev_0001", false)
        .await
        .unwrap();
    restored.close().await;
    // The file is deleted under the broker: logins go on from memory,
    // state changes wait instead of going into the deleted inode.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    within("the login's writes are kept", Duration::from_secs(5), async || {
        spool_lines(spool.path()) >= 2
    })
    .await;
    assert!(!Path::new(&path).exists(), "no empty database is created in its place");
    // The backup is restored: reopened, reloaded, and the disabled device thrown off.
    std::fs::rename(&backup, &path).unwrap();
    let mut kicked = false;
    within("the disabled device is kicked", Duration::from_secs(10), async || {
        kicked |= std::iter::from_fn(|| auth.poll_effect())
            .any(|e| matches!(e, Effect::Kick { connection, .. } if connection == ConnectionId(1)));
        kicked
    })
    .await;
    assert!(matches!(
        connect(&auth, 2, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Refuse(_)
    ));
    within(
        "the kept writes reach the restored file",
        Duration::from_secs(10),
        async || spool_lines(spool.path()) == 0 && auth.engine().pending_store_writes() == 0,
    )
    .await;
    assert!(events(&db.url, "login").await >= 1);
    auth.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_file_replaced_in_place_is_reloaded() {
    let db = common::sqlite();
    let path = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    seed(&db.url).await.close().await;
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    let next = format!("{path}.next");
    let restored = seed(&format!("sqlite://{next}")).await;
    restored
        .set_device_enabled("Ab3dEf9h", "dev_0001", false)
        .await
        .unwrap();
    restored.close().await;
    // `mv` over the live file: the path never disappears, its inode changes.
    std::fs::rename(&next, &path).unwrap();
    let mut kicked = false;
    within(
        "the device disabled in the new file is kicked",
        Duration::from_secs(5),
        async || {
            kicked |= std::iter::from_fn(|| auth.poll_effect())
                .any(|e| matches!(e, Effect::Kick { connection, .. } if connection == ConnectionId(1)));
            kicked
        },
    )
    .await;
    auth.shutdown();
}

/// Whether `auth` has queued a kick (draining its effects).
fn kicked(auth: &Authenticator) -> bool {
    std::iter::from_fn(|| auth.poll_effect()).any(|e| matches!(e, Effect::Kick { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_committed_after_a_later_change_id_is_still_applied() {
    // Postgres hands out change ids at insert, not at commit: a disable
    // (id N) that commits after another change (id N+1) was read must
    // still throw the device off (the soak found it skipped until the
    // next reconciliation, minutes later).
    let db = common::postgres().await;
    let _store = seed(&db.url).await;
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &db.url).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    kicked(&auth);
    // The login's own writes (activation, presence) first: the late
    // transaction below locks the device's row, and a write waiting on that
    // lock would hold the background task (and its feed) for the test.
    within(
        "the login's writes are in the database",
        Duration::from_secs(5),
        async || auth.metrics_text().contains("devicegate_write_queue_depth 0\n"),
    )
    .await;
    let mut late = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut early = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    sqlx::query("UPDATE devices SET enabled = 0 WHERE product_key = 'Ab3dEf9h' AND device_key = 'dev_0001'")
        .execute(&mut late)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO changes (entity, product_key, device_key, at) VALUES ('device', 'Ab3dEf9h', 'dev_0001', 1)",
    )
    .execute(&mut late)
    .await
    .unwrap();
    // A later id, committed first; the broker reads past it.
    let row = sqlx::query(
        "INSERT INTO changes (entity, product_key, device_key, at) VALUES ('device', 'Ab3dEf9h', 'dev_0003', 1) RETURNING id",
    )
    .fetch_one(&mut early)
    .await
    .unwrap();
    let later: i64 = sqlx::Row::get(&row, "id");
    within("the broker read the later change", Duration::from_secs(5), async || {
        auth.metrics_text()
            .contains(&format!("devicegate_change_feed_applied_id {later}\n"))
    })
    .await;
    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    within(
        "the late disable kicks the device",
        Duration::from_secs(3),
        async || kicked(&auth),
    )
    .await;
    assert_eq!(
        connect(&auth, 2, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Refuse(devicegate::decision::Refusal::Disabled)
    );
    auth.shutdown();
}

/// A TCP relay to Postgres that the test can cut (every connection, open
/// or new, dropped) and restore, as a network partition or a restarting
/// server looks to the broker.
struct Relay {
    port: u16,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    links: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Relay {
    async fn start(target: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let links = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (accepting, tracked) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    continue;
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tracked.lock().unwrap().push(link);
            }
        });
        Relay { port, open, links }
    }

    fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_back_from_an_outage_is_followed_within_seconds() {
    // While the database cannot be reached the writer reopens it with
    // back-off, and the change feed reads through the same pool: attempts
    // 8 s apart left a Postgres that was back unfollowed for seconds, and
    // the soak saw devices disabled just then kicked late.
    let db = common::postgres().await;
    let store = seed(&db.url).await;
    let relay = Relay::start("127.0.0.1:5432".parse().unwrap()).await;
    let via_relay = db
        .url
        .replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", relay.port), 1);
    assert_ne!(via_relay, db.url, "the test database is on 127.0.0.1:5432");
    let spool = tempfile::tempdir().unwrap();
    let auth = Authenticator::start(EngineConfig::default(), sync_config(spool.path()), &via_relay).unwrap();
    within("registry loaded", Duration::from_secs(10), async || auth.is_ready()).await;
    assert_eq!(
        connect(&auth, 1, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    relay.cut();
    // Writes wait while the database is away (the device reconnects: its
    // presence changes), and the writer backs off.
    auth.handle_disconnect(ConnectionId(1), now_ms());
    assert_eq!(
        connect(&auth, 2, E3_ID, "dev_0001&Ab3dEf9h", E3_PW),
        ConnectDecision::Accept
    );
    tokio::time::sleep(Duration::from_secs(9)).await;
    kicked(&auth);
    relay.restore();
    store.set_device_enabled("Ab3dEf9h", "dev_0001", false).await.unwrap();
    within(
        "the disable is applied soon after the database is back",
        Duration::from_secs(3),
        async || kicked(&auth),
    )
    .await;
    auth.shutdown();
}
