//! Operator commands: products, devices, principals, registration, import
//! and status. Every change that brokers must see appends a change row in
//! the same transaction.

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::sealing::{self, SealedField, SecretKeys};
use super::writes::record_change;
use super::{Store, StoreError, new_guid, rows};
use crate::acl::TopicRule;
use crate::clock::now_ms;
use crate::credentials::{Dialect, KeyKind, validate_key};
use crate::secret::Secret;
use crate::sign::AlgSet;

pub(super) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn check_key(kind: KeyKind, key: &str) -> Result<(), StoreError> {
    validate_key(kind, key.as_bytes())
        .map(|_| ())
        .map_err(|e| StoreError::Invalid(format!("`{key}`: {e}")))
}

/// The shortest secret accepted unless the operator allows weak ones.
pub const MIN_SECRET_LEN: usize = 16;

fn check_secret(secret: &str, allow_weak: bool) -> Result<(), StoreError> {
    if secret.is_empty() || secret.len() > 128 || secret.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a secret must be 1 to 128 printable characters".to_owned(),
        ));
    }
    if !allow_weak && secret.len() < MIN_SECRET_LEN {
        return Err(StoreError::Invalid(format!(
            "a secret of {} bytes is too short to resist guessing: use at least {MIN_SECRET_LEN} (leave --secret \
             out to get a random 128-bit one), or pass --allow-weak-secret for devices with a short secret built in",
            secret.len()
        )));
    }
    Ok(())
}

fn new_secret() -> Result<String, StoreError> {
    Secret::generate().map(|s| s.expose_str()).map_err(|e| {
        StoreError::Invalid(format!(
            "cannot generate a secret: the operating system RNG failed: {e}"
        ))
    })
}

/// A product's settings, as created or updated by an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductSpec {
    /// The product key.
    pub product_key: String,
    /// The product secret (dynamic activation and registration).
    #[serde(skip)]
    pub secret: Option<String>,
    /// Accept a secret shorter than [`MIN_SECRET_LEN`].
    #[serde(skip)]
    pub allow_weak_secret: bool,
    /// `enos` or `aliyun`.
    pub dialect: String,
    /// Allowed hashes, e.g. `sha256,sha1`.
    pub sign_methods: String,
    /// Timestamp window in seconds; `None` = policy off.
    pub timestamp_window_secs: Option<u32>,
    /// Dynamic activation (EnOS) or registration (Aliyun) allowed.
    pub dynamic_activation: bool,
    /// Any identity part accepted in the client id.
    pub free_client_id: bool,
    /// `$share/` filters allowed for devices.
    pub shared_subscriptions: bool,
    /// Retained publishes allowed for devices.
    pub allow_retain: bool,
    /// Idle seconds before a device counts as offline; 0 = never.
    pub offline_after_secs: u32,
    /// Sub-devices per gateway; `None` = the dialect's default.
    pub max_sub_devices: Option<u32>,
    /// Extra topic rules, `pub:|sub:|all:TEMPLATE`.
    pub extra_topics: Vec<String>,
    /// Certificates from a trusted CA whose CN names a new device of the
    /// product register it on first login (IDENTITIES.md §3).
    pub auto_register_certs: bool,
    /// Lifetime of the product's device tokens in seconds; `None` = one
    /// hour (IDENTITIES.md §4).
    pub token_ttl_secs: Option<u32>,
    /// The broker URL the product's devices are assigned to (IDENTITIES.md
    /// §5), if any.
    pub server_url: Option<String>,
}

impl ProductSpec {
    /// The defaults for a new product of `dialect`.
    pub fn new(product_key: &str, dialect: Dialect) -> Self {
        ProductSpec {
            product_key: product_key.to_owned(),
            secret: None,
            allow_weak_secret: false,
            dialect: dialect.name().to_owned(),
            sign_methods: AlgSet::default().to_list(),
            timestamp_window_secs: None,
            dynamic_activation: false,
            free_client_id: false,
            shared_subscriptions: false,
            allow_retain: false,
            offline_after_secs: 0,
            max_sub_devices: None,
            extra_topics: Vec::new(),
            auto_register_certs: false,
            token_ttl_secs: None,
            server_url: None,
        }
    }

    fn validate(&self) -> Result<(), StoreError> {
        check_key(KeyKind::Product, &self.product_key)?;
        if Dialect::from_name(&self.dialect).is_none() {
            return Err(StoreError::Invalid(format!(
                "unknown dialect `{}` (expected enos or aliyun)",
                self.dialect
            )));
        }
        AlgSet::parse(&self.sign_methods).map_err(StoreError::Invalid)?;
        if let Some(secret) = &self.secret {
            check_secret(secret, self.allow_weak_secret)?;
        }
        for rule in &self.extra_topics {
            TopicRule::parse(rule).map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        if self.token_ttl_secs == Some(0) {
            return Err(StoreError::Invalid("a token TTL must be at least 1 second".to_owned()));
        }
        if let Some(url) = &self.server_url {
            super::bootstrap::validate_server_url(url)?;
        }
        if self.dynamic_activation && self.secret.is_none() {
            return Err(StoreError::Invalid(
                "dynamic activation needs a product secret".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A time column of `devices` an operator command sets to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeviceStamp {
    /// `device revoke-tokens`.
    TokensRevoked,
    /// `device unblock`.
    Unblocked,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProductUpdate {
    /// A new product secret.
    pub secret: Option<String>,
    /// Accept a new secret shorter than [`MIN_SECRET_LEN`].
    pub allow_weak_secret: bool,
    /// A new dialect.
    pub dialect: Option<Dialect>,
    /// New allowed hashes.
    pub sign_methods: Option<AlgSet>,
    /// A new timestamp window; `Some(0)` turns the policy off.
    pub timestamp_window_secs: Option<u32>,
    /// Dynamic activation on or off.
    pub dynamic_activation: Option<bool>,
    /// Free client ids on or off.
    pub free_client_id: Option<bool>,
    /// Shared subscriptions on or off.
    pub shared_subscriptions: Option<bool>,
    /// Retain on or off.
    pub allow_retain: Option<bool>,
    /// A new idle window.
    pub offline_after_secs: Option<u32>,
    /// A new sub-device limit.
    pub max_sub_devices: Option<u32>,
    /// New extra topic rules (replacing the old ones).
    pub extra_topics: Option<Vec<String>>,
    /// Just-in-time certificate registration on or off.
    pub auto_register_certs: Option<bool>,
    /// A new device-token lifetime in seconds.
    pub token_ttl_secs: Option<u32>,
    /// A new assigned server URL; `Some("")` removes the assignment.
    pub server_url: Option<String>,
}

/// A product as listed and shown.
#[derive(Debug, Clone, Serialize)]
pub struct ProductInfo {
    /// The settings.
    #[serde(flatten)]
    pub spec: ProductSpec,
    /// Whether a product secret is set (the secret itself is never shown).
    pub has_secret: bool,
    /// How many devices it has.
    pub devices: i64,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// A device to create.
#[derive(Debug, Clone, Default)]
pub struct DeviceSpec {
    /// Its secret; generated when `None` unless `no_secret`.
    pub secret: Option<String>,
    /// Accept a secret shorter than [`MIN_SECRET_LEN`].
    pub allow_weak_secret: bool,
    /// Create without a secret, waiting for dynamic activation.
    pub no_secret: bool,
    /// Its gateway, `(gpk, gdk)`.
    pub gateway: Option<(String, String)>,
}

/// A device as listed and shown. Secrets are never included.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    /// The product key.
    pub product_key: String,
    /// The device key.
    pub device_key: String,
    /// The device's GUID (IDENTITIES.md §1).
    pub guid: Option<String>,
    /// Enabled by the operator.
    pub enabled: bool,
    /// Activation time, if activated.
    pub activated_at: Option<i64>,
    /// Online as last written by a broker.
    pub online: bool,
    /// Last login or traffic, ms since the epoch.
    pub last_seen_at: Option<i64>,
    /// Last peer address.
    pub last_address: Option<String>,
    /// `gdk&gpk` of its gateway, if it is a sub-device.
    pub gateway: Option<String>,
    /// The name of the broker node it is online on (`plugin_opt_node_name`).
    pub node: Option<String>,
    /// Whether it has a device secret.
    pub has_secret: bool,
    /// Whether an issued secret awaits confirmation.
    pub pending_activation: bool,
    /// Creation time.
    pub created_at: i64,
}

/// One row of a CSV import.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// The 1-based line in the file, for messages.
    pub line: u64,
    /// The device key.
    pub device_key: String,
    /// Its secret; generated when `None`.
    pub secret: Option<String>,
    /// Its gateway as `gpk/gdk`, if any.
    pub gateway: Option<(String, String)>,
}

/// A principal as listed.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalInfo {
    /// The login name.
    pub name: String,
    /// Its rules.
    pub rules: Vec<String>,
    /// Creation time.
    pub created_at: i64,
}

/// Device counts of one product.
#[derive(Debug, Clone, Serialize)]
pub struct ProductStatus {
    /// The product key.
    pub product_key: String,
    /// All devices.
    pub total: i64,
    /// Enabled devices.
    pub enabled: i64,
    /// Disabled devices.
    pub disabled: i64,
    /// Activated devices.
    pub activated: i64,
    /// Never activated.
    pub inactive: i64,
    /// Online now.
    pub online: i64,
}

/// The columns [`device_info`] reads, from `devices`.
pub(super) const DEVICE_INFO_COLUMNS: &str = "product_key, device_key, guid, enabled, activated_at, online, last_seen_at, last_address, \
     gateway_product_key, gateway_device_key, EXISTS (SELECT 1 FROM credentials c WHERE \
     c.product_key = devices.product_key AND c.device_key = devices.device_key AND c.kind = 'secret' \
     AND c.revoked_at IS NULL) AS has_secret, \
     pending_secret IS NOT NULL AS pending, created_at, \
     (SELECT name FROM nodes WHERE nodes.id = devices.node_id) AS node";

/// A [`DeviceInfo`] from a row of [`DEVICE_INFO_COLUMNS`].
pub(super) fn device_info(row: &sqlx::any::AnyRow) -> Result<DeviceInfo, sqlx::Error> {
    let gateway = match (
        row.try_get::<Option<String>, _>("gateway_product_key")?,
        row.try_get::<Option<String>, _>("gateway_device_key")?,
    ) {
        (Some(gpk), Some(gdk)) => Some(format!("{gpk}/{gdk}")),
        _ => None,
    };
    Ok(DeviceInfo {
        product_key: row.try_get("product_key")?,
        device_key: row.try_get("device_key")?,
        guid: row.try_get("guid")?,
        enabled: rows::flag(row, "enabled")?,
        activated_at: row.try_get("activated_at")?,
        online: rows::flag(row, "online")?,
        last_seen_at: row.try_get("last_seen_at")?,
        last_address: row.try_get("last_address")?,
        gateway,
        has_secret: row
            .try_get::<bool, _>("has_secret")
            .or_else(|_| row.try_get::<i64, _>("has_secret").map(|v| v != 0))?,
        pending_activation: row
            .try_get::<bool, _>("pending")
            .or_else(|_| row.try_get::<i64, _>("pending").map(|v| v != 0))?,
        created_at: row.try_get("created_at")?,
        node: row.try_get("node")?,
    })
}

fn product_spec(row: &sqlx::any::AnyRow, keys: Option<&SecretKeys>) -> Result<ProductSpec, sqlx::Error> {
    let pk: String = row.try_get("product_key")?;
    let opt_u32 = |col: &str| -> Result<Option<u32>, sqlx::Error> {
        Ok(row
            .try_get::<Option<i64>, _>(col)?
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX)))
    };
    let extra: String = row.try_get("extra_topics")?;
    Ok(ProductSpec {
        secret: sealing::open(
            keys,
            SealedField::ProductSecret(&pk),
            row.try_get("product_secret")?,
            rows::flag(row, "secrets_sealed")?,
        ),
        product_key: pk,
        allow_weak_secret: false,
        dialect: row.try_get("dialect")?,
        sign_methods: row.try_get("sign_methods")?,
        timestamp_window_secs: opt_u32("timestamp_window_secs")?,
        dynamic_activation: rows::flag(row, "dynamic_activation")?,
        free_client_id: rows::flag(row, "free_client_id")?,
        shared_subscriptions: rows::flag(row, "shared_subscriptions")?,
        allow_retain: rows::flag(row, "allow_retain")?,
        offline_after_secs: opt_u32("offline_after_secs")?.unwrap_or(0),
        max_sub_devices: opt_u32("max_sub_devices")?,
        extra_topics: extra
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.trim().is_empty())
            .collect(),
        auto_register_certs: rows::flag(row, "auto_register_certs")?,
        token_ttl_secs: opt_u32("token_ttl_secs")?,
        server_url: row.try_get("server_url")?,
    })
}

/// Makes `secret` the device's secret (its `secret` credential, kept under
/// the identity `{dk}&{pk}`), replacing the one it had.
pub(super) async fn set_secret(
    conn: &mut AnyConnection,
    keys: Option<&SecretKeys>,
    pk: &str,
    dk: &str,
    secret: &str,
) -> Result<(), sqlx::Error> {
    let key = format!("{dk}&{pk}");
    let stored = sealing::seal(keys, SealedField::DeviceSecret(&key), secret)
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    sqlx::query(&insert_secrets_sql(1))
        .bind(pk)
        .bind(dk)
        .bind(&key)
        .bind(stored)
        .bind(to_i64(now_ms()))
        .execute(conn)
        .await?;
    Ok(())
}

/// The INSERT of `rows` device secrets, 5 parameters each (pk, dk,
/// identity `dk&pk`, the stored material, created_at): a secret replaces
/// the device's earlier one. One statement for `set_secret` and bulk import.
pub(super) fn insert_secrets_sql(rows: usize) -> String {
    format!(
        "INSERT INTO credentials (product_key, device_key, kind, identity, material, created_at) VALUES {} \
         ON CONFLICT (kind, identity) \
         DO UPDATE SET material = excluded.material, created_at = excluded.created_at, revoked_at = NULL",
        values_rows(rows, &["", "", "'secret'", "", "", ""])
    )
}

/// The INSERT of `rows` new devices, 6 parameters each (pk, dk, gateway
/// pk, gateway dk, created_at, guid), skipping devices that exist and
/// returning the device keys it inserted. One statement for `device
/// create` and bulk import.
pub(super) fn insert_devices_sql(rows: usize) -> String {
    format!(
        "INSERT INTO devices (product_key, device_key, gateway_product_key, gateway_device_key, created_at, guid) \
         VALUES {} ON CONFLICT (product_key, device_key) DO NOTHING RETURNING device_key",
        values_rows(rows, &["", "", "", "", "", ""])
    )
}

/// `($1, $2, …), ($7, …)` for `rows` rows of `columns`: an empty column is
/// a parameter, any other is written as it is (a constant).
fn values_rows(rows: usize, columns: &[&str]) -> String {
    let per_row = columns.iter().filter(|c| c.is_empty()).count();
    (0..rows)
        .map(|r| {
            let mut next = r * per_row;
            let fields: Vec<String> = columns
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        next += 1;
                        format!("${next}")
                    } else {
                        (*c).to_owned()
                    }
                })
                .collect();
            format!("({})", fields.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks a new device against the rules every way of creating one shares
/// (`device create`, bulk import, the admin API): a valid device key, a
/// secret or dynamic activation, a strong enough secret, not its own
/// gateway. Whether the gateway exists is the caller's query.
pub(super) fn check_new_device(product: &ProductSpec, dk: &str, spec: &DeviceSpec) -> Result<(), StoreError> {
    check_key(KeyKind::Device, dk)?;
    let pk = &product.product_key;
    if spec.no_secret && !product.dynamic_activation {
        return Err(StoreError::Invalid(format!(
            "product `{pk}` has no dynamic activation: a device without a secret could never log in"
        )));
    }
    if let Some(secret) = &spec.secret {
        check_secret(secret, spec.allow_weak_secret)?;
    }
    if let Some((gpk, gdk)) = &spec.gateway
        && (gpk.as_str(), gdk.as_str()) == (pk.as_str(), dk)
    {
        return Err(StoreError::Invalid("a device cannot be its own gateway".to_owned()));
    }
    Ok(())
}

/// A new device's secrets: the one generated for it (to print once), and
/// the one to store (given, generated, or none when it waits for dynamic
/// activation).
pub(super) fn new_device_secret(spec: &DeviceSpec) -> Result<(Option<String>, Option<String>), StoreError> {
    let generated = match (&spec.secret, spec.no_secret) {
        (None, false) => Some(new_secret()?),
        _ => None,
    };
    let stored = spec
        .secret
        .clone()
        .or_else(|| generated.clone())
        .filter(|_| !spec.no_secret);
    Ok((generated, stored))
}

pub(super) async fn device_exists(conn: &mut AnyConnection, pk: &str, dk: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE product_key = $1 AND device_key = $2")
        .bind(pk)
        .bind(dk)
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

impl Store {
    /// Creates a product. With dynamic activation and no secret given, a
    /// product secret is generated; it is returned (to print once).
    pub async fn create_product(&self, mut spec: ProductSpec) -> Result<Option<String>, StoreError> {
        let generated = if spec.dynamic_activation && spec.secret.is_none() {
            let s = new_secret()?;
            spec.secret = Some(s.clone());
            Some(s)
        } else {
            None
        };
        spec.validate()?;
        let mut tx = self.write_transaction().await?;
        let exists = sqlx::query("SELECT COUNT(*) AS n FROM products WHERE product_key = $1")
            .bind(&spec.product_key)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
        if exists > 0 {
            return Err(StoreError::ProductExists(spec.product_key));
        }
        sqlx::query(
            "INSERT INTO products (product_key, product_secret, dialect, sign_methods, timestamp_window_secs, \
             dynamic_activation, free_client_id, shared_subscriptions, allow_retain, offline_after_secs, \
             max_sub_devices, extra_topics, created_at, guid, auto_register_certs, token_ttl_secs, server_url, \
             secrets_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(&spec.product_key)
        .bind(self.seal_product_secret(&spec)?)
        .bind(&spec.dialect)
        .bind(&spec.sign_methods)
        .bind(spec.timestamp_window_secs.map(i64::from))
        .bind(i64::from(spec.dynamic_activation))
        .bind(i64::from(spec.free_client_id))
        .bind(i64::from(spec.shared_subscriptions))
        .bind(i64::from(spec.allow_retain))
        .bind(i64::from(spec.offline_after_secs))
        .bind(spec.max_sub_devices.map(i64::from))
        .bind(spec.extra_topics.join("\n"))
        .bind(to_i64(now_ms()))
        .bind(new_guid())
        .bind(i64::from(spec.auto_register_certs))
        .bind(spec.token_ttl_secs.map(i64::from))
        .bind(spec.server_url.as_deref())
        .bind(i64::from(self.keys.is_some()))
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, "product", Some(&spec.product_key), None, None, now_ms()).await?;
        tx.commit().await?;
        Ok(generated)
    }

    /// Changes a product's settings.
    pub async fn update_product(&self, pk: &str, update: ProductUpdate) -> Result<(), StoreError> {
        let mut spec = self.product_info(pk).await?.spec;
        // The stored secret was checked when it was set.
        spec.allow_weak_secret = update.allow_weak_secret || update.secret.is_none();
        if let Some(v) = update.secret {
            spec.secret = Some(v);
        }
        if let Some(v) = update.dialect {
            spec.dialect = v.name().to_owned();
        }
        if let Some(v) = update.sign_methods {
            spec.sign_methods = v.to_list();
        }
        if let Some(v) = update.timestamp_window_secs {
            spec.timestamp_window_secs = (v > 0).then_some(v);
        }
        if let Some(v) = update.dynamic_activation {
            spec.dynamic_activation = v;
        }
        if let Some(v) = update.free_client_id {
            spec.free_client_id = v;
        }
        if let Some(v) = update.shared_subscriptions {
            spec.shared_subscriptions = v;
        }
        if let Some(v) = update.allow_retain {
            spec.allow_retain = v;
        }
        if let Some(v) = update.offline_after_secs {
            spec.offline_after_secs = v;
        }
        if let Some(v) = update.max_sub_devices {
            spec.max_sub_devices = Some(v);
        }
        if let Some(v) = update.extra_topics {
            spec.extra_topics = v;
        }
        if let Some(v) = update.auto_register_certs {
            spec.auto_register_certs = v;
        }
        if let Some(v) = update.token_ttl_secs {
            spec.token_ttl_secs = Some(v);
        }
        if let Some(v) = update.server_url {
            spec.server_url = (!v.is_empty()).then_some(v);
        }
        spec.validate()?;
        let mut tx = self.write_transaction().await?;
        sqlx::query(
            "UPDATE products SET product_secret = $1, dialect = $2, sign_methods = $3, timestamp_window_secs = $4, \
             dynamic_activation = $5, free_client_id = $6, shared_subscriptions = $7, allow_retain = $8, \
             offline_after_secs = $9, max_sub_devices = $10, extra_topics = $11, auto_register_certs = $12, \
             token_ttl_secs = $13, server_url = $14 WHERE product_key = $15",
        )
        .bind(self.seal_product_secret(&spec)?)
        .bind(&spec.dialect)
        .bind(&spec.sign_methods)
        .bind(spec.timestamp_window_secs.map(i64::from))
        .bind(i64::from(spec.dynamic_activation))
        .bind(i64::from(spec.free_client_id))
        .bind(i64::from(spec.shared_subscriptions))
        .bind(i64::from(spec.allow_retain))
        .bind(i64::from(spec.offline_after_secs))
        .bind(spec.max_sub_devices.map(i64::from))
        .bind(spec.extra_topics.join("\n"))
        .bind(i64::from(spec.auto_register_certs))
        .bind(spec.token_ttl_secs.map(i64::from))
        .bind(spec.server_url.as_deref())
        .bind(pk)
        .execute(&mut *tx)
        .await?;
        record_change(&mut tx, "product", Some(pk), None, None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The product secret of `spec` as the database holds it.
    fn seal_product_secret(&self, spec: &ProductSpec) -> Result<Option<String>, StoreError> {
        spec.secret
            .as_deref()
            .map(|s| sealing::seal(self.keys.as_deref(), SealedField::ProductSecret(&spec.product_key), s))
            .transpose()
    }

    /// Deletes a product and its devices.
    pub async fn delete_product(&self, pk: &str) -> Result<u64, StoreError> {
        let mut tx = self.write_transaction().await?;
        let devices = sqlx::query("DELETE FROM devices WHERE product_key = $1")
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM products WHERE product_key = $1")
            .bind(pk)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownProduct(pk.to_owned()));
        }
        record_change(&mut tx, "product", Some(pk), None, None, now_ms()).await?;
        tx.commit().await?;
        Ok(devices.rows_affected())
    }

    /// Every product with its device count.
    pub async fn list_products(&self) -> Result<Vec<ProductInfo>, StoreError> {
        let sql = format!(
            "SELECT {}, (SELECT COUNT(*) FROM devices d WHERE d.product_key = p.product_key) AS devices \
             FROM products p ORDER BY product_key",
            rows::PRODUCT_COLUMNS
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                let spec = product_spec(row, self.keys.as_deref())?;
                Ok(ProductInfo {
                    has_secret: spec.secret.is_some(),
                    spec,
                    devices: row.try_get("devices")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// One product.
    pub async fn product_info(&self, pk: &str) -> Result<ProductInfo, StoreError> {
        self.list_products()
            .await?
            .into_iter()
            .find(|p| p.spec.product_key == pk)
            .ok_or_else(|| StoreError::UnknownProduct(pk.to_owned()))
    }

    pub(super) async fn require_product(&self, conn: &mut AnyConnection, pk: &str) -> Result<ProductSpec, StoreError> {
        let sql = format!("SELECT {} FROM products WHERE product_key = $1", rows::PRODUCT_COLUMNS);
        let row = sqlx::query(&sql).bind(pk).fetch_optional(conn).await?;
        row.as_ref()
            .map(|r| product_spec(r, self.keys.as_deref()))
            .transpose()?
            .ok_or_else(|| StoreError::UnknownProduct(pk.to_owned()))
    }

    /// Inserts one device in an open transaction; `Ok(None)` if it exists.
    async fn insert_device(
        &self,
        conn: &mut AnyConnection,
        product: &ProductSpec,
        dk: &str,
        spec: &DeviceSpec,
    ) -> Result<Option<Option<String>>, StoreError> {
        check_new_device(product, dk, spec)?;
        let pk = &product.product_key;
        if let Some((gpk, gdk)) = &spec.gateway
            && !device_exists(conn, gpk, gdk).await?
        {
            return Err(StoreError::UnknownDevice(gpk.clone(), gdk.clone()));
        }
        let (generated, secret) = new_device_secret(spec)?;
        let inserted = sqlx::query(&insert_devices_sql(1))
            .bind(pk)
            .bind(dk)
            .bind(spec.gateway.as_ref().map(|g| g.0.clone()))
            .bind(spec.gateway.as_ref().map(|g| g.1.clone()))
            .bind(to_i64(now_ms()))
            .bind(new_guid())
            .fetch_optional(&mut *conn)
            .await?;
        if inserted.is_none() {
            return Ok(None);
        }
        if let Some(secret) = &secret {
            set_secret(conn, self.keys.as_deref(), pk, dk, secret).await?;
        }
        record_change(conn, "device", Some(pk), Some(dk), None, now_ms()).await?;
        Ok(Some(generated))
    }

    /// Creates a device; returns the generated secret, if one was generated.
    pub async fn create_device(&self, pk: &str, dk: &str, spec: DeviceSpec) -> Result<Option<String>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let product = self.require_product(&mut tx, pk).await?;
        let generated = self
            .insert_device(&mut tx, &product, dk, &spec)
            .await?
            .ok_or_else(|| StoreError::DeviceExists(pk.to_owned(), dk.to_owned()))?;
        tx.commit().await?;
        Ok(generated)
    }

    /// Every device, or those of one product.
    pub async fn list_devices(&self, pk: Option<&str>) -> Result<Vec<DeviceInfo>, StoreError> {
        let rows = match pk {
            Some(pk) => {
                let sql =
                    format!("SELECT {DEVICE_INFO_COLUMNS} FROM devices WHERE product_key = $1 ORDER BY device_key");
                sqlx::query(&sql).bind(pk).fetch_all(&self.pool).await?
            }
            None => {
                let sql = format!("SELECT {DEVICE_INFO_COLUMNS} FROM devices ORDER BY product_key, device_key");
                sqlx::query(&sql).fetch_all(&self.pool).await?
            }
        };
        Ok(rows.iter().map(device_info).collect::<Result<_, _>>()?)
    }

    /// One device.
    pub async fn device_info(&self, pk: &str, dk: &str) -> Result<DeviceInfo, StoreError> {
        let sql = format!("SELECT {DEVICE_INFO_COLUMNS} FROM devices WHERE product_key = $1 AND device_key = $2");
        let row = sqlx::query(&sql).bind(pk).bind(dk).fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(device_info)
            .transpose()?
            .ok_or_else(|| StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()))
    }

    pub(super) async fn update_device(&self, pk: &str, dk: &str, sql: &str) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query(sql).bind(pk).bind(dk).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()));
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets the device's `column` to now, for every broker to see: the
    /// operator's stamps (`tokens_revoked_at`, `unblocked_at`) that brokers
    /// compare with what they hold.
    pub(super) async fn stamp_device(&self, pk: &str, dk: &str, column: DeviceStamp) -> Result<(), StoreError> {
        let sql = match column {
            DeviceStamp::TokensRevoked => {
                "UPDATE devices SET tokens_revoked_at = $1 WHERE product_key = $2 AND device_key = $3"
            }
            DeviceStamp::Unblocked => "UPDATE devices SET unblocked_at = $1 WHERE product_key = $2 AND device_key = $3",
        };
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query(sql)
            .bind(to_i64(now_ms()))
            .bind(pk)
            .bind(dk)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()));
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Enables or disables a device; a disabled device is thrown off by
    /// every broker watching the database.
    pub async fn set_device_enabled(&self, pk: &str, dk: &str, enabled: bool) -> Result<(), StoreError> {
        let sql = if enabled {
            "UPDATE devices SET enabled = 1 WHERE product_key = $1 AND device_key = $2"
        } else {
            "UPDATE devices SET enabled = 0 WHERE product_key = $1 AND device_key = $2"
        };
        self.update_device(pk, dk, sql).await
    }

    /// Deletes a device.
    pub async fn delete_device(&self, pk: &str, dk: &str) -> Result<(), StoreError> {
        self.update_device(pk, dk, "DELETE FROM devices WHERE product_key = $1 AND device_key = $2")
            .await
    }

    /// Makes a device inactive again, so it may activate or register anew.
    pub async fn reset_activation(&self, pk: &str, dk: &str) -> Result<(), StoreError> {
        self.update_device(
            pk,
            dk,
            "UPDATE devices SET activated_at = NULL, pending_secret = NULL, token_hash = NULL, \
             secret_version = secret_version + 1 WHERE product_key = $1 AND device_key = $2",
        )
        .await
    }

    /// Issues a fresh secret to a device that has never logged in (creating
    /// it if needed); the last one issued wins. Refused once activated.
    pub async fn register_device(&self, pk: &str, dk: &str) -> Result<String, StoreError> {
        check_key(KeyKind::Device, dk)?;
        let secret = new_secret()?;
        let mut tx = self.write_transaction().await?;
        self.require_product(&mut tx, pk).await?;
        let row = sqlx::query("SELECT activated_at FROM devices WHERE product_key = $1 AND device_key = $2")
            .bind(pk)
            .bind(dk)
            .fetch_optional(&mut *tx)
            .await?;
        let now = to_i64(now_ms());
        match row {
            Some(row) if row.try_get::<Option<i64>, _>("activated_at")?.is_some() => {
                return Err(StoreError::AlreadyActivated(pk.to_owned(), dk.to_owned()));
            }
            Some(_) => {
                sqlx::query(
                    "UPDATE devices SET pending_secret = NULL, registered_at = $1, \
                     secret_version = secret_version + 1 WHERE product_key = $2 AND device_key = $3",
                )
                .bind(now)
                .bind(pk)
                .bind(dk)
                .execute(&mut *tx)
                .await?;
                set_secret(&mut tx, self.keys.as_deref(), pk, dk, &secret).await?;
            }
            None => {
                sqlx::query(
                    "INSERT INTO devices (product_key, device_key, registered_at, created_at, guid) \
                     VALUES ($1, $2, $3, $3, $4)",
                )
                .bind(pk)
                .bind(dk)
                .bind(now)
                .bind(new_guid())
                .execute(&mut *tx)
                .await?;
                set_secret(&mut tx, self.keys.as_deref(), pk, dk, &secret).await?;
            }
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(secret)
    }

    /// The device secret, for `devicegate sign` against a database.
    pub async fn device_secret(&self, pk: &str, dk: &str) -> Result<Option<String>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE devices.product_key = $1 AND devices.device_key = $2",
            rows::DEVICE_COLUMNS,
            rows::DEVICES_WITH_SECRETS
        );
        let row = sqlx::query(&sql)
            .bind(pk)
            .bind(dk)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()))?;
        let (_, record) = rows::device(&row, self.keys.as_deref())?;
        Ok(record.secret.map(|s| s.expose_str()))
    }

    /// Creates a principal with an already hashed password.
    pub async fn create_principal(&self, name: &str, password_hash: &str, rules: &[String]) -> Result<(), StoreError> {
        if name.is_empty()
            || name.len() > 64
            || name.contains('&')
            || name.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(StoreError::Invalid(format!(
                "principal name `{name}` must be 1 to 64 characters without `&`, whitespace or control characters"
            )));
        }
        if rules.is_empty() {
            return Err(StoreError::Invalid(
                "a principal needs at least one --allow rule".to_owned(),
            ));
        }
        for rule in rules {
            TopicRule::parse_principal(rule).map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query(
            "INSERT INTO principals (name, password_hash, rules, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(password_hash)
        .bind(rules.join("\n"))
        .bind(to_i64(now_ms()))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::PrincipalExists(name.to_owned()));
        }
        record_change(&mut tx, "principal", None, None, Some(name), now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every principal.
    pub async fn list_principals(&self) -> Result<Vec<PrincipalInfo>, StoreError> {
        let rows = sqlx::query("SELECT name, rules, created_at FROM principals ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let rules: String = row.try_get("rules")?;
                Ok(PrincipalInfo {
                    name: row.try_get("name")?,
                    rules: rules.lines().map(str::to_owned).collect(),
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Deletes a principal; its connections are thrown off.
    pub async fn delete_principal(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query("DELETE FROM principals WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownPrincipal(name.to_owned()));
        }
        record_change(&mut tx, "principal", None, None, Some(name), now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Device counts by state, per product.
    pub async fn status(&self) -> Result<Vec<ProductStatus>, StoreError> {
        let rows = sqlx::query(
            "SELECT p.product_key AS product_key, COUNT(d.device_key) AS total, \
             COUNT(d.device_key) FILTER (WHERE d.enabled = 1) AS enabled, \
             COUNT(d.device_key) FILTER (WHERE d.enabled = 0) AS disabled, \
             COUNT(d.device_key) FILTER (WHERE d.activated_at IS NOT NULL) AS activated, \
             COUNT(d.device_key) FILTER (WHERE d.online = 1) AS online \
             FROM products p LEFT JOIN devices d ON d.product_key = p.product_key \
             GROUP BY p.product_key ORDER BY p.product_key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let total: i64 = row.try_get("total")?;
                let activated: i64 = row.try_get("activated")?;
                Ok(ProductStatus {
                    product_key: row.try_get("product_key")?,
                    total,
                    enabled: row.try_get("enabled")?,
                    disabled: row.try_get("disabled")?,
                    activated,
                    inactive: total - activated,
                    online: row.try_get("online")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }
}
