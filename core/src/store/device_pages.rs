//! Devices a page at a time, for the admin API's listing: the database
//! cuts the page (`LIMIT`/`OFFSET` in a stable order) and counts the
//! whole, so a fleet of millions is never loaded to show a hundred.

use sqlx::Row;

use super::admin::{DEVICE_INFO_COLUMNS, device_info, to_i64};
use super::{DeviceInfo, Store, StoreError};

impl Store {
    /// At most `limit` devices after skipping `offset`, ordered by
    /// product key then device key, of product `pk` or of every product;
    /// with how many devices match in all. The page and the count are read
    /// in one transaction, so they agree. An offset past the end gives an
    /// empty page and the true count.
    pub async fn list_devices_page(
        &self,
        pk: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<DeviceInfo>, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM devices WHERE ($1 IS NULL OR product_key = $1)")
            .bind(pk)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        let sql = format!(
            "SELECT {DEVICE_INFO_COLUMNS} FROM devices WHERE ($1 IS NULL OR product_key = $1) \
             ORDER BY product_key, device_key LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(pk)
            .bind(i64::from(limit))
            .bind(to_i64(offset))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let devices = rows.iter().map(device_info).collect::<Result<_, _>>()?;
        Ok((devices, u64::try_from(total).unwrap_or(0)))
    }
}
