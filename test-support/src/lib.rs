//! Real databases for integration tests: an SQLite file in a temp dir, and
//! a fresh Postgres database per test on the server named by
//! `DEVICEGATE_TEST_POSTGRES` (default: the local server). A Postgres that
//! cannot be reached fails the test with a hint; it is never skipped. Also
//! the `devicegate` CLI, as tests drive it, and `devicegate serve` as a
//! process ([`service`]).

mod cli;
pub mod fleet;
pub mod mqtt;
pub mod raw;
pub mod scenarios;
pub mod service;
pub mod tls_relay;

use std::sync::atomic::{AtomicU32, Ordering};

pub use cli::{build_dir, cli, cli_binary, sign};

use sqlx::Connection;

/// The maintenance database URL on the Postgres server used by tests.
pub fn postgres_admin_url() -> String {
    std::env::var("DEVICEGATE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A database that exists for one test and is removed afterwards.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    cleanup: Cleanup,
}

/// How a test database is removed.
enum Cleanup {
    /// The directory holding the file, removed on drop.
    Sqlite {
        /// Held only to be dropped with the test database.
        _dir: tempfile::TempDir,
    },
    /// `DROP DATABASE` through the maintenance database.
    Postgres {
        /// The maintenance database URL.
        admin: String,
        /// The database to drop.
        name: String,
    },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::Postgres { admin, name } = &self.cleanup {
            let (admin, name) = (admin.clone(), name.clone());
            // Dropping runs outside any runtime the test had; use a small one.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

/// A new SQLite database file (not yet created: the store creates it).
pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("devicegate.db").display());
    TestDb {
        url,
        cleanup: Cleanup::Sqlite { _dir: dir },
    }
}

/// A new, empty Postgres database.
pub async fn postgres() -> TestDb {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = postgres_admin_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the test Postgres at {admin}: {e}\n\
             Run the tests with `scripts/test.sh`, which starts a throwaway Postgres cluster when none is \
             reachable, or point DEVICEGATE_TEST_POSTGRES at a server where this user may CREATE DATABASE."
        )
    });
    let name = format!(
        "devicegate_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    TestDb {
        url: format!("{base}/{name}"),
        cleanup: Cleanup::Postgres {
            admin: admin.clone(),
            name,
        },
    }
}

/// Both backends, for tests that must behave the same on each.
pub async fn both() -> Vec<TestDb> {
    vec![sqlite(), postgres().await]
}
