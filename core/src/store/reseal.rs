//! `devicegate secrets seal`: seals every stored secret under the current
//! key of the secret key file — plaintext ones from before sealing was
//! configured, and ones sealed under an older key (rotation) — and marks
//! every product sealed, so plaintext is refused from then on.

use serde::Serialize;
use sqlx::Row;

use super::sealing::{SealedField, SecretKeys, is_sealed};
use super::{Store, StoreError};

/// What a sealing pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SealReport {
    /// Plaintext values sealed.
    pub sealed: u64,
    /// Values moved from an older key to the current one.
    pub resealed: u64,
    /// Values already under the current key.
    pub current: u64,
}

/// The plaintext of `stored` and how it was stored, or why it cannot be
/// resealed (a value no key in the file opens: nothing is changed).
fn plaintext(keys: &SecretKeys, field: SealedField<'_>, stored: &str) -> Result<(String, bool), StoreError> {
    if !is_sealed(stored) {
        return Ok((stored.to_owned(), false));
    }
    keys.open(field, stored)
        .map(|p| (p, true))
        .map_err(|e| StoreError::Invalid(format!("{field:?}: {e}; nothing was changed")))
}

impl Store {
    /// Seals every device secret, pending secret, PSK key and product
    /// secret under the current key, in one transaction.
    pub async fn seal_secrets(&self) -> Result<SealReport, StoreError> {
        let keys = self.keys.clone().ok_or_else(|| {
            StoreError::Invalid(
                "no secret key file: pass --secret-key-file FILE (devicegate secrets keygen makes one)".to_owned(),
            )
        })?;
        let mut report = SealReport::default();
        let mut tx = self.write_transaction().await?;
        let mut tally = |stored: &str, was_sealed: bool| {
            if keys.is_current(stored) {
                report.current += 1;
                false
            } else {
                if was_sealed {
                    report.resealed += 1;
                } else {
                    report.sealed += 1;
                }
                true
            }
        };
        let rows = sqlx::query(
            "SELECT id, kind, identity, material FROM credentials WHERE kind IN ('secret', 'psk') AND material IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut updates = Vec::new();
        for row in &rows {
            let (id, kind, identity, stored): (i64, String, String, String) = (
                row.try_get("id")?,
                row.try_get("kind")?,
                row.try_get("identity")?,
                row.try_get("material")?,
            );
            let field = if kind == "psk" {
                SealedField::PskKey(&identity)
            } else {
                SealedField::DeviceSecret(&identity)
            };
            let (plain, was_sealed) = plaintext(&keys, field, &stored)?;
            if tally(&stored, was_sealed) {
                updates.push((id, keys.seal(field, &plain)?));
            }
        }
        for (id, sealed) in updates {
            sqlx::query("UPDATE credentials SET material = $1 WHERE id = $2")
                .bind(sealed)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let rows =
            sqlx::query("SELECT product_key, device_key, pending_secret FROM devices WHERE pending_secret IS NOT NULL")
                .fetch_all(&mut *tx)
                .await?;
        let mut updates = Vec::new();
        for row in &rows {
            let (pk, dk, stored): (String, String, String) = (
                row.try_get("product_key")?,
                row.try_get("device_key")?,
                row.try_get("pending_secret")?,
            );
            let key = format!("{dk}&{pk}");
            let field = SealedField::PendingSecret(&key);
            let (plain, was_sealed) = plaintext(&keys, field, &stored)?;
            if tally(&stored, was_sealed) {
                updates.push((pk, dk, keys.seal(field, &plain)?));
            }
        }
        for (pk, dk, sealed) in updates {
            sqlx::query("UPDATE devices SET pending_secret = $1 WHERE product_key = $2 AND device_key = $3")
                .bind(sealed)
                .bind(pk)
                .bind(dk)
                .execute(&mut *tx)
                .await?;
        }
        let rows = sqlx::query("SELECT product_key, product_secret FROM products WHERE product_secret IS NOT NULL")
            .fetch_all(&mut *tx)
            .await?;
        let mut updates = Vec::new();
        for row in &rows {
            let (pk, stored): (String, String) = (row.try_get("product_key")?, row.try_get("product_secret")?);
            let field = SealedField::ProductSecret(&pk);
            let (plain, was_sealed) = plaintext(&keys, field, &stored)?;
            if tally(&stored, was_sealed) {
                updates.push((pk.clone(), keys.seal(field, &plain)?));
            }
        }
        for (pk, sealed) in updates {
            sqlx::query("UPDATE products SET product_secret = $1 WHERE product_key = $2")
                .bind(sealed)
                .bind(pk)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE products SET secrets_sealed = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.backend == super::Backend::Sqlite {
            // The old plaintext pages would stay in the WAL and in free
            // pages of the file: fold the WAL in and rewrite the file.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
            sqlx::query("VACUUM").execute(&self.pool).await?;
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.pool)
                .await?;
        }
        Ok(report)
    }
}
