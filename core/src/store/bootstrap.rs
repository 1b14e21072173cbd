//! Bootstrap in the store (IDENTITIES.md §5): which broker a device is
//! assigned to (its own assignment, else its product's), and what the
//! service needs to answer a device asking.

use sqlx::Row;

use super::credentials::require_device;
use super::writes::record_change;
use super::{Store, StoreError, rows};
use crate::clock::now_ms;
use crate::secret::Secret;

/// Refuses a server URL unless it is `mqtt://HOST:PORT` or
/// `mqtts://HOST:PORT`.
pub fn validate_server_url(url: &str) -> Result<(), StoreError> {
    let refuse = || {
        StoreError::Invalid(format!(
            "server URL `{url}` is not mqtt://HOST:PORT or mqtts://HOST:PORT"
        ))
    };
    let rest = url
        .strip_prefix("mqtts://")
        .or_else(|| url.strip_prefix("mqtt://"))
        .ok_or_else(refuse)?;
    let (host, port) = rest.rsplit_once(':').ok_or_else(refuse)?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    match port.parse::<u16>() {
        Ok(p) if p > 0 && host_ok => Ok(()),
        _ => Err(refuse()),
    }
}

/// What the service needs to answer a device's bootstrap request.
#[derive(Debug, Clone)]
pub struct BootstrapTarget {
    /// The device's secret, to check the request's sign.
    pub secret: Option<Secret>,
    /// Whether the device is enabled.
    pub enabled: bool,
    /// The device's assigned server, else its product's.
    pub server_url: Option<String>,
}

impl Store {
    /// Assigns device `pk`/`dk` to the broker at `url`, or removes its
    /// assignment (`None`: its product's applies again). Brokers that know
    /// their own URL refuse it from the next login.
    pub async fn assign_server(&self, pk: &str, dk: &str, url: Option<&str>) -> Result<(), StoreError> {
        if let Some(url) = url {
            validate_server_url(url)?;
        }
        let mut tx = self.write_transaction().await?;
        require_device(&mut tx, pk, dk).await?;
        sqlx::query("UPDATE devices SET server_url = $1 WHERE product_key = $2 AND device_key = $3")
            .bind(url)
            .bind(pk)
            .bind(dk)
            .execute(&mut *tx)
            .await?;
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The device `pk`/`dk` as bootstrap sees it, if it exists.
    pub async fn bootstrap_target(&self, pk: &str, dk: &str) -> Result<Option<BootstrapTarget>, StoreError> {
        let sql = format!(
            "SELECT secrets.material AS device_secret, devices.enabled, sealing.secrets_sealed AS product_sealed, \
             COALESCE(devices.server_url, products.server_url) AS assigned \
             FROM {} JOIN products ON products.product_key = devices.product_key \
             WHERE devices.product_key = $1 AND devices.device_key = $2",
            rows::DEVICES_WITH_SECRETS
        );
        let row = sqlx::query(&sql).bind(pk).bind(dk).fetch_optional(&self.pool).await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(BootstrapTarget {
            secret: super::sealing::open(
                self.keys.as_deref(),
                super::sealing::SealedField::DeviceSecret(&format!("{dk}&{pk}")),
                row.try_get("device_secret")?,
                rows::flag(&row, "product_sealed")?,
            )
            .map(|s| Secret::new(s.into_bytes())),
            enabled: rows::flag(&row, "enabled")?,
            server_url: row.try_get("assigned")?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls() {
        for good in [
            "mqtt://broker-1.example.com:1883",
            "mqtts://10.0.0.1:8883",
            "mqtt://[::1]:1883",
        ] {
            assert!(validate_server_url(good).is_ok(), "{good}");
        }
        for bad in [
            "http://x:1",
            "mqtt://x",
            "mqtt://:1883",
            "mqtt://x:0",
            "mqtt://x:port",
            "mqtt://a b:1",
        ] {
            assert!(validate_server_url(bad).is_err(), "{bad}");
        }
    }
}
