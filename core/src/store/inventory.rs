//! What `devicegate doctor` reports about the data (issue 12 item 4):
//! products nobody can log in to, devices without any way to log in, and
//! the newest time the database recorded (a clock check).

use sqlx::Row;

use super::{Store, StoreError};

/// Findings about the data, each a hint rather than an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// Products without a device.
    pub empty_products: Vec<String>,
    /// Up to 20 `(pk, dk)` with no secret, no live credential and no
    /// pending activation: nothing logs them in.
    pub devices_without_credentials: Vec<(String, String)>,
    /// How many such devices there are in all.
    pub devices_without_credentials_total: i64,
    /// The newest time written in the change feed or the event log, ms.
    pub newest_record_ms: i64,
}

impl Store {
    /// The findings of [`Inventory`].
    pub async fn inventory(&self) -> Result<Inventory, StoreError> {
        let empty_products = sqlx::query(
            "SELECT product_key FROM products p WHERE NOT EXISTS \
             (SELECT 1 FROM devices d WHERE d.product_key = p.product_key) ORDER BY product_key",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("product_key"))
        .collect::<Result<_, _>>()?;
        let without = "FROM devices d JOIN products p ON p.product_key = d.product_key \
             WHERE d.pending_secret IS NULL AND d.token_hash IS NULL \
             AND NOT (p.dynamic_activation = 1 AND d.activated_at IS NULL) \
             AND NOT EXISTS (SELECT 1 FROM credentials c WHERE c.product_key = d.product_key \
             AND c.device_key = d.device_key AND c.revoked_at IS NULL AND c.kind <> 'access_key')";
        let devices_without_credentials = sqlx::query(&format!(
            "SELECT d.product_key, d.device_key {without} ORDER BY d.product_key, d.device_key LIMIT 20"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("product_key")?, r.try_get("device_key")?)))
        .collect::<Result<_, _>>()?;
        let devices_without_credentials_total = sqlx::query(&format!("SELECT COUNT(*) AS n {without}"))
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        let newest_record_ms = sqlx::query(
            "SELECT COALESCE(MAX(at), 0) AS newest FROM (SELECT MAX(at) AS at FROM changes UNION ALL \
             SELECT MAX(at) AS at FROM events) t",
        )
        .fetch_one(&self.pool)
        .await?
        .try_get("newest")?;
        Ok(Inventory {
            empty_products,
            devices_without_credentials,
            devices_without_credentials_total,
            newest_record_ms,
        })
    }
}
