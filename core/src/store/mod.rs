//! The database: SQLite (embedded default) or Postgres, through sqlx.
//!
//! One set of queries serves both backends through sqlx's `Any` driver
//! (`$n` placeholders, integer flags and epoch-millisecond times work the
//! same in both); the schema lives in one migration folder per dialect and
//! is applied at connect. Every write that brokers must see also appends
//! to the `changes` table in the same transaction, which is what the
//! background task follows (Postgres also sends `NOTIFY devicegate_changes`).

mod admin;
mod agents;
mod blocks;
mod bootstrap;
mod bulk_import;
mod condition;
mod credentials;
mod device_pages;
mod feed;
mod import;
mod inventory;
mod nodes;
mod reseal;
mod rows;
mod sealing;
mod tokens;
mod trust;
mod writes;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::MigrateDatabase;
use sqlx::{Any, AnyPool, Connection, Executor};

pub use admin::{
    DeviceInfo, DeviceSpec, ImportRow, MIN_SECRET_LEN, PrincipalInfo, ProductInfo, ProductSpec, ProductStatus,
    ProductUpdate,
};
pub use agents::{Agent, AgentInfo, NewAgent};
pub use blocks::BlockInfo;
pub use bootstrap::{BootstrapTarget, validate_server_url};
pub use bulk_import::ImportResult;
pub use condition::{ConditionKind, explain, process_user, sqlite_files};
pub use credentials::{CredentialInfo, MAX_PSK_IDENTITY_LEN, NewPsk, PSK_KEY_LEN, validate_psk_identity};
pub use feed::{Change, Entity};
pub use import::{ImportFile, ImportFileError, ImportReader, RefusedRow, parse_gateway, read_import};
pub use inventory::Inventory;
pub use nodes::new_node_id;
pub use reseal::SealReport;
pub use sealing::{OpenError, SEALED_PREFIX, SealedField, SecretKeys, is_sealed};
pub use tokens::{NewAccessKey, TokenKeyInfo, TokenSubject};
pub use writes::{WriteFailure, WriteOutcome};

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `sqlite://path` (created if missing).
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Backend {
    /// The backend of `url`, if supported.
    pub fn of(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Why a database operation failed. Messages never contain a secret; URLs
/// are shown without their password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("database URL `{0}` is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database cannot be reached or opened.
    #[error("cannot open the database {url}: {cause}")]
    Unreachable {
        /// The URL, password removed.
        url: String,
        /// The driver's error.
        cause: sqlx::Error,
    },
    /// The schema migration failed.
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// No such product.
    #[error("product `{0}` does not exist")]
    UnknownProduct(String),
    /// No such device.
    #[error("device `{1}` of product `{0}` does not exist")]
    UnknownDevice(String, String),
    /// No such principal.
    #[error("principal `{0}` does not exist")]
    UnknownPrincipal(String),
    /// The product exists already.
    #[error("product `{0}` already exists")]
    ProductExists(String),
    /// The device exists already.
    #[error("device `{1}` of product `{0}` already exists")]
    DeviceExists(String, String),
    /// The principal exists already.
    #[error("principal `{0}` already exists")]
    PrincipalExists(String),
    /// Registration after activation.
    #[error("device `{1}` of product `{0}` is already activated; run `device reset-activation` first")]
    AlreadyActivated(String, String),
    /// A value was refused before reaching the database.
    #[error("{0}")]
    Invalid(String),
    /// A credential (access key, agent token) that proves nobody: unknown,
    /// wrong, expired or revoked, all alike.
    #[error("{0}")]
    NotAuthenticated(&'static str),
    /// The credential is good but may not do this (another product's
    /// agent, a disabled device).
    #[error("{0}")]
    Forbidden(String),
    /// The SQLite file is gone (or empty) and is not created again.
    #[error("the SQLite database {0} is missing or empty")]
    Missing(String),
}

impl StoreError {
    /// Whether retrying later may succeed (connection lost, pool exhausted,
    /// database busy or shutting down), as opposed to a bad request.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unreachable { .. } | StoreError::Missing(_) => true,
            StoreError::Database(e) => is_transient(e),
            _ => false,
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite BUSY/LOCKED; Postgres connection, shutdown, serialization and deadlock classes.
            matches!(&*code, "5" | "6" | "517" | "40001" | "40P01") || code.starts_with("08") || code.starts_with("57P")
        }
        _ => false,
    }
}

/// `url` with any password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let slash = if rest.contains('/') { "/" } else { "" };
    if userinfo.contains(':') {
        format!("{scheme}://{user}:***@{host}{slash}{tail}")
    } else {
        format!("{scheme}://{userinfo}@{host}{slash}{tail}")
    }
}

/// The error for a database at `url` that cannot be reached (password removed).
fn unreachable(url: &str, cause: sqlx::Error) -> StoreError {
    StoreError::Unreachable {
        url: redact_url(url),
        cause,
    }
}

impl Store {
    /// A transaction that writes. SQLite takes the write lock at `BEGIN
    /// IMMEDIATE`, waiting for the busy timeout like any write; a deferred
    /// transaction that reads first and writes second would fail at once
    /// with "database is locked" when a broker's writes came in between.
    async fn write_transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// A fresh GUID for a product or device row (IDENTITIES.md §1): a
/// lower-case, hyphenated UUID v4.
fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A connection pool with the schema applied.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// The keys secrets are sealed with at rest, if configured.
    keys: Option<std::sync::Arc<SecretKeys>>,
    /// The broker node this store writes presence for (`nodes.rs`), if any.
    node: Option<std::sync::Arc<str>>,
}

impl Store {
    /// Opens the database at `url`: creates an SQLite file if missing,
    /// applies the migrations, and checks the connection.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::open(url, true).await
    }

    /// Opens the database at `url` again, as [`Store::connect`] but never
    /// creating an SQLite file: a broker that lost its file waits for it to
    /// come back rather than start over on an empty one.
    pub async fn reopen(url: &str) -> Result<Store, StoreError> {
        Store::open(url, false).await
    }

    async fn open(url: &str, create: bool) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        let unreachable = |cause| unreachable(url, cause);
        let empty = || sqlite_files(url).is_some_and(|(p, _)| std::fs::metadata(p).is_ok_and(|m| m.len() == 0));
        if backend == Backend::Sqlite
            && (!Any::database_exists(url).await.map_err(unreachable)? || (!create && empty()))
        {
            if !create {
                return Err(StoreError::Missing(
                    sqlite_files(url).map_or_else(|| url.to_owned(), |(p, _)| p.display().to_string()),
                ));
            }
            Any::create_database(url).await.map_err(unreachable)?;
        }
        let options = AnyConnectOptions::from_str(url).map_err(unreachable)?;
        // One direct connection first: the pool would only report a timeout
        // where the driver can say what is wrong (refused, no such user).
        sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(unreachable)?
            .close()
            .await
            .map_err(unreachable)?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(unreachable)?;
        if backend == Backend::Sqlite {
            // WAL lets the CLI write while brokers read; it persists in the file.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("src/store/migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("src/store/migrations/postgres"),
        };
        migrator.run(&pool).await?;
        Ok(Store {
            pool,
            backend,
            url: url.to_owned(),
            keys: None,
            node: None,
        })
    }

    /// This store sealing secrets at rest with `keys` (and opening them):
    /// see [`SecretKeys`].
    pub fn with_secret_keys(mut self, keys: Option<std::sync::Arc<SecretKeys>>) -> Self {
        self.keys = keys;
        self
    }

    /// The keys secrets are sealed with, if any.
    pub fn secret_keys(&self) -> Option<&std::sync::Arc<SecretKeys>> {
        self.keys.as_ref()
    }

    /// Writes presence as node `id` (see `Store::register_node`): online
    /// sets the device's node, offline only clears a device still on it.
    pub fn with_node(mut self, id: Option<std::sync::Arc<str>>) -> Self {
        self.node = id;
        self
    }

    /// The node this store writes presence for, if any.
    pub fn node(&self) -> Option<&std::sync::Arc<str>> {
        self.node.as_ref()
    }

    fn unreachable(&self, cause: sqlx::Error) -> StoreError {
        unreachable(&self.url, cause)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL this store was opened with (contains the password, if any:
    /// use [`redact_url`] to print it).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Closes the pool, waiting for connections to finish. An SQLite
    /// database is checkpointed first, so the file alone holds every
    /// committed change (a copy made after the CLI ran is complete, and no
    /// `-wal` is needed beside it).
    pub async fn close(&self) {
        if self.backend == Backend::Sqlite && !self.pool.is_closed() {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await;
        }
        self.pool.close().await;
    }

    /// Whether [`Store::close`] was called: queries would fail at once.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://devicegate.db"), "sqlite://devicegate.db");
        assert_eq!(redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(Backend::of("mysql://x"), None);
        assert_eq!(Backend::of("postgresql://x"), Some(Backend::Postgres));
    }
}
