//! Reading for the registry: full loads, single rows, and the change feed.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError, rows};
use crate::principal::Principal;
use crate::registry::{Credential, DeviceRecord, Product};

/// What a change row is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entity {
    /// A product, by key.
    Product(String),
    /// A device, by `{dk}&{pk}`.
    Device(String),
    /// A principal, by name.
    Principal(String),
    /// A device-token verification key, by key id.
    TokenKey(String),
    /// Devices of one product written together (a bulk import batch).
    Devices {
        /// Their product.
        product_key: String,
        /// Their device keys.
        device_keys: Vec<String>,
    },
}

/// One row of the change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Increasing id.
    pub id: i64,
    /// What changed.
    pub entity: Entity,
}

/// Keys bound in one `IN (…)` list: far below SQLite's and Postgres's
/// limits on bound parameters.
const DEVICES_PER_QUERY: usize = 500;

/// `$first, $first+1, …` for `count` parameters.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Every product.
    pub async fn load_products(&self) -> Result<Vec<Product>, StoreError> {
        let sql = format!("SELECT {} FROM products", rows::PRODUCT_COLUMNS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut products: Vec<Product> = rows
            .iter()
            .map(|r| rows::product(r, self.keys.as_deref()))
            .collect::<Result<_, _>>()?;
        Store::attach_trusted_cas(&mut products, &self.trusted_cas(None).await?);
        Ok(products)
    }

    /// Every device as `({dk}&{pk}, record)`, with its live credentials.
    pub async fn load_devices(&self) -> Result<Vec<(String, DeviceRecord)>, StoreError> {
        let sql = format!("SELECT {} FROM {}", rows::DEVICE_COLUMNS, rows::DEVICES_WITH_SECRETS);
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let mut devices: Vec<(String, DeviceRecord)> = rows
            .iter()
            .map(|r| rows::device(r, self.keys.as_deref()))
            .collect::<Result<_, _>>()?;
        let sql = format!(
            "SELECT {} FROM credentials WHERE revoked_at IS NULL ORDER BY product_key, device_key, id",
            rows::CREDENTIAL_COLUMNS
        );
        let mut by_device: HashMap<String, Vec<Credential>> = HashMap::new();
        for row in sqlx::query(&sql).fetch_all(&self.pool).await? {
            if let Some((key, credential)) = rows::credential(&row, self.keys.as_deref())? {
                by_device.entry(key).or_default().push(credential);
            }
        }
        for (key, record) in &mut devices {
            record.credentials = by_device.remove(key).unwrap_or_default();
        }
        Ok(devices)
    }

    /// Every principal.
    pub async fn load_principals(&self) -> Result<Vec<Principal>, StoreError> {
        let rows = sqlx::query("SELECT name, password_hash, rules FROM principals")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(rows::principal).collect::<Result<_, _>>()?)
    }

    /// One product, if it exists.
    pub async fn product(&self, pk: &str) -> Result<Option<Product>, StoreError> {
        let sql = format!("SELECT {} FROM products WHERE product_key = $1", rows::PRODUCT_COLUMNS);
        let row = sqlx::query(&sql).bind(pk).fetch_optional(&self.pool).await?;
        let Some(product) = row
            .as_ref()
            .map(|r| rows::product(r, self.keys.as_deref()))
            .transpose()?
        else {
            return Ok(None);
        };
        let mut products = [product];
        Store::attach_trusted_cas(&mut products, &self.trusted_cas(Some(pk)).await?);
        let [product] = products;
        Ok(Some(product))
    }

    /// One device by `{dk}&{pk}`, if it exists.
    pub async fn device_record(&self, key: &str) -> Result<Option<DeviceRecord>, StoreError> {
        let Some((dk, pk)) = key.split_once('&') else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {} FROM {} WHERE devices.product_key = $1 AND devices.device_key = $2",
            rows::DEVICE_COLUMNS,
            rows::DEVICES_WITH_SECRETS
        );
        let row = sqlx::query(&sql).bind(pk).bind(dk).fetch_optional(&self.pool).await?;
        let Some((_, mut record)) = row
            .as_ref()
            .map(|r| rows::device(r, self.keys.as_deref()))
            .transpose()?
        else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT {} FROM credentials WHERE product_key = $1 AND device_key = $2 AND revoked_at IS NULL ORDER BY id",
            rows::CREDENTIAL_COLUMNS
        );
        for row in sqlx::query(&sql).bind(pk).bind(dk).fetch_all(&self.pool).await? {
            if let Some((_, credential)) = rows::credential(&row, self.keys.as_deref())? {
                record.credentials.push(credential);
            }
        }
        Ok(Some(record))
    }

    /// Devices of product `pk` by device key, for a bulk change: each key
    /// with its record, or `None` where the device is gone. Read in pages
    /// of [`DEVICES_PER_QUERY`] keys.
    pub async fn device_records(
        &self,
        pk: &str,
        device_keys: &[String],
    ) -> Result<Vec<(String, Option<DeviceRecord>)>, StoreError> {
        let mut out = Vec::with_capacity(device_keys.len());
        for page in device_keys.chunks(DEVICES_PER_QUERY) {
            let keys = placeholders(2, page.len());
            let sql = format!(
                "SELECT {} FROM {} WHERE devices.product_key = $1 AND devices.device_key IN ({keys})",
                rows::DEVICE_COLUMNS,
                rows::DEVICES_WITH_SECRETS
            );
            let mut query = sqlx::query(&sql).bind(pk);
            for dk in page {
                query = query.bind(dk);
            }
            let mut found: HashMap<String, DeviceRecord> = HashMap::with_capacity(page.len());
            for row in query.fetch_all(&self.pool).await? {
                let (key, record) = rows::device(&row, self.keys.as_deref())?;
                found.insert(key, record);
            }
            let sql = format!(
                "SELECT {} FROM credentials WHERE product_key = $1 AND device_key IN ({keys}) AND revoked_at IS NULL \
                 ORDER BY id",
                rows::CREDENTIAL_COLUMNS
            );
            let mut query = sqlx::query(&sql).bind(pk);
            for dk in page {
                query = query.bind(dk);
            }
            for row in query.fetch_all(&self.pool).await? {
                if let Some((key, credential)) = rows::credential(&row, self.keys.as_deref())?
                    && let Some(record) = found.get_mut(&key)
                {
                    record.credentials.push(credential);
                }
            }
            for dk in page {
                let key = format!("{dk}&{pk}");
                let record = found.remove(&key);
                out.push((key, record));
            }
        }
        Ok(out)
    }

    /// One principal, if it exists.
    pub async fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let row = sqlx::query("SELECT name, password_hash, rules FROM principals WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(rows::principal).transpose()?)
    }

    /// The newest change id (0 when there is none).
    pub async fn latest_change(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS id FROM changes")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("id")?)
    }

    /// Changes after `after`, oldest first, at most `limit`.
    pub async fn changes_since(&self, after: i64, limit: i64) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, entity, product_key, device_key, name, device_keys FROM changes WHERE id > $1 ORDER BY id \
             LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let pk: Option<String> = row.try_get("product_key")?;
            let dk: Option<String> = row.try_get("device_key")?;
            let name: Option<String> = row.try_get("name")?;
            let device_keys: Option<String> = row.try_get("device_keys")?;
            let entity = match (row.try_get::<String, _>("entity")?.as_str(), pk, dk, name) {
                ("devices", Some(product_key), _, _) => Entity::Devices {
                    product_key,
                    device_keys: device_keys
                        .unwrap_or_default()
                        .lines()
                        .filter(|k| !k.is_empty())
                        .map(str::to_owned)
                        .collect(),
                },
                ("product", Some(pk), _, _) => Entity::Product(pk),
                ("device", Some(pk), Some(dk), _) => Entity::Device(format!("{dk}&{pk}")),
                ("principal", _, _, Some(name)) => Entity::Principal(name),
                ("token_key", _, _, Some(kid)) => Entity::TokenKey(kid),
                _ => continue,
            };
            out.push(Change { id, entity });
        }
        Ok(out)
    }
}
