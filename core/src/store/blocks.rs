//! Failed-login blocks as the operator sees them (issue 12): brokers write
//! a `login_blocked` event when a block starts (its scope and end in the
//! reason), `device show` lists the ones still in force, and `device
//! unblock` lifts them on every broker through the change feed.

use serde::Serialize;
use sqlx::Row;

use super::admin::{DeviceStamp, to_i64};
use super::{Store, StoreError};
use crate::clock::now_ms;

/// A block in force on a device, as a broker recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlockInfo {
    /// `device_from_address` (this device from this address) or `device`
    /// (this device from the addresses that failed for it).
    pub scope: String,
    /// The address whose failures started it.
    pub address: Option<String>,
    /// When it started, ms since the epoch.
    pub since: i64,
    /// When it ends, ms since the epoch.
    pub until: i64,
}

impl Store {
    /// The blocks of device `pk`/`dk` still in force: started after the
    /// last `device unblock`, ending in the future.
    pub async fn device_blocks(&self, pk: &str, dk: &str) -> Result<Vec<BlockInfo>, StoreError> {
        let unblocked: Option<i64> =
            sqlx::query("SELECT unblocked_at FROM devices WHERE product_key = $1 AND device_key = $2")
                .bind(pk)
                .bind(dk)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()))?
                .try_get("unblocked_at")?;
        let rows = sqlx::query(
            "SELECT at, address, reason FROM events WHERE kind = 'login_blocked' AND subject = $1 AND at > $2 \
             ORDER BY at",
        )
        .bind(format!("{dk}&{pk}"))
        .bind(unblocked.unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        let now = to_i64(now_ms());
        let mut blocks = Vec::new();
        for row in rows {
            let reason: Option<String> = row.try_get("reason")?;
            let Some((scope, until)) = reason.as_deref().and_then(|r| r.split_once(" until=")) else {
                continue;
            };
            let Ok(until) = until.parse::<i64>() else {
                continue;
            };
            if until > now {
                blocks.push(BlockInfo {
                    scope: scope.to_owned(),
                    address: row.try_get("address")?,
                    since: row.try_get("at")?,
                    until,
                });
            }
        }
        Ok(blocks)
    }

    /// Lifts the device's failed-login blocks and forgets its failures on
    /// every broker (`device unblock`).
    pub async fn unblock_device(&self, pk: &str, dk: &str) -> Result<(), StoreError> {
        self.stamp_device(pk, dk, DeviceStamp::Unblocked).await
    }
}
