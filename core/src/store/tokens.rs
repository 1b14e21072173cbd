//! Device tokens in the store (IDENTITIES.md §4): access keys and their
//! exchange, the public keys brokers verify tokens with, and revoking a
//! device's tokens. Key changes reach brokers as `token_key` change rows,
//! revocations as device changes.

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::admin::{DeviceStamp, to_i64};
use super::credentials::{random, require_device};
use super::writes::record_change;
use super::{Store, StoreError};
use crate::access_token::{Claims, SigningKey, validate_kid};
use crate::clock::now_ms;
use crate::registry::DEFAULT_TOKEN_TTL_SECS;

/// An access key pair just created: the only time the secret key is shown.
/// `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccessKey {
    /// The lookup key, 64 hex digits.
    pub access_key: String,
    /// The secret key, 64 hex digits; the store keeps only its SHA-256.
    pub secret_key: String,
}

impl std::fmt::Debug for NewAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccessKey")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// The device a token is issued for, with what the claims need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    /// The product key.
    pub product_key: String,
    /// The device key.
    pub device_key: String,
    /// The product's GUID.
    pub product_guid: String,
    /// The device's GUID.
    pub device_guid: String,
    /// Whether the device is enabled.
    pub enabled: bool,
    /// The product's token lifetime in seconds.
    pub token_ttl_secs: u32,
}

impl TokenSubject {
    /// Issues a token for this device with `key`, valid for `ttl_secs`
    /// (the product's TTL when `None`) from now.
    pub fn issue(&self, key: &SigningKey, ttl_secs: Option<u64>) -> String {
        let ttl = ttl_secs.unwrap_or(u64::from(self.token_ttl_secs));
        key.issue(&Claims::new(
            &self.product_guid,
            &self.device_guid,
            now_ms() / 1000,
            ttl,
        ))
    }
}

/// A token verification key as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenKeyInfo {
    /// The key id.
    pub kid: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
    /// When it was added, ms since the epoch.
    pub created_at: i64,
}

const SUBJECT_COLUMNS: &str = "devices.product_key, devices.device_key, products.guid AS product_guid, \
     devices.guid AS device_guid, devices.enabled, products.token_ttl_secs";
const SUBJECT_FROM: &str = "devices JOIN products ON products.product_key = devices.product_key";

fn subject(row: &sqlx::any::AnyRow) -> Result<TokenSubject, sqlx::Error> {
    Ok(TokenSubject {
        product_key: row.try_get("product_key")?,
        device_key: row.try_get("device_key")?,
        product_guid: row.try_get::<Option<String>, _>("product_guid")?.unwrap_or_default(),
        device_guid: row.try_get::<Option<String>, _>("device_guid")?.unwrap_or_default(),
        enabled: super::rows::flag(row, "enabled")?,
        token_ttl_secs: row
            .try_get::<Option<i64>, _>("token_ttl_secs")?
            .map_or(DEFAULT_TOKEN_TTL_SECS, |t| u32::try_from(t).unwrap_or(u32::MAX)),
    })
}

fn parse_public_key(hex_key: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut out).ok().map(|()| out)
}

impl Store {
    /// Creates an access key pair for a device (`device access-key`).
    pub async fn create_access_key(&self, pk: &str, dk: &str) -> Result<NewAccessKey, StoreError> {
        let access_key = hex::encode(random::<32>()?);
        let secret_key = hex::encode(random::<32>()?);
        let mut tx = self.write_transaction().await?;
        require_device(&mut tx, pk, dk).await?;
        sqlx::query(
            "INSERT INTO credentials (product_key, device_key, kind, identity, material, created_at) \
             VALUES ($1, $2, 'access_key', $3, $4, $5)",
        )
        .bind(pk)
        .bind(dk)
        .bind(&access_key)
        .bind(hex::encode(Sha256::digest(secret_key.as_bytes())))
        .bind(to_i64(now_ms()))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(NewAccessKey { access_key, secret_key })
    }

    /// The device an access key pair belongs to (`POST /authenticate`),
    /// and notes its first use. An unknown access key and a wrong secret
    /// key are refused alike, after the same comparison.
    pub async fn exchange_access_key(&self, access_key: &str, secret_key: &str) -> Result<TokenSubject, StoreError> {
        let sql = format!(
            "SELECT credentials.id, credentials.material, credentials.first_used_at, {SUBJECT_COLUMNS} \
             FROM credentials JOIN devices ON devices.product_key = credentials.product_key \
             AND devices.device_key = credentials.device_key \
             JOIN products ON products.product_key = devices.product_key \
             WHERE credentials.kind = 'access_key' AND credentials.identity = $1 AND credentials.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql).bind(access_key).fetch_optional(&self.pool).await?;
        let presented = hex::encode(Sha256::digest(secret_key.as_bytes()));
        let stored: Option<String> = row.as_ref().map(|r| r.try_get("material")).transpose()?;
        let expected = stored
            .as_deref()
            .unwrap_or("0000000000000000000000000000000000000000000000000000000000000000");
        let matches: bool = expected.as_bytes().ct_eq(presented.as_bytes()).into();
        let Some(row) = row.filter(|_| matches) else {
            return Err(StoreError::NotAuthenticated("unknown access key or wrong secret key"));
        };
        if row.try_get::<Option<i64>, _>("first_used_at")?.is_none() {
            sqlx::query("UPDATE credentials SET first_used_at = $1 WHERE id = $2 AND first_used_at IS NULL")
                .bind(to_i64(now_ms()))
                .bind(row.try_get::<i64, _>("id")?)
                .execute(&self.pool)
                .await?;
        }
        Ok(subject(&row)?)
    }

    /// The device `pk`/`dk` as a token subject (`token issue`).
    pub async fn token_subject(&self, pk: &str, dk: &str) -> Result<TokenSubject, StoreError> {
        let sql = format!(
            "SELECT {SUBJECT_COLUMNS} FROM {SUBJECT_FROM} WHERE devices.product_key = $1 AND devices.device_key = $2"
        );
        let row = sqlx::query(&sql).bind(pk).bind(dk).fetch_optional(&self.pool).await?;
        row.as_ref()
            .map(subject)
            .transpose()?
            .ok_or_else(|| StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()))
    }

    /// The `(pk, dk)` of the device with GUID `guid`, so that commands and
    /// routes accept either form.
    pub async fn device_by_guid(&self, guid: &str) -> Result<Option<(String, String)>, StoreError> {
        let Ok(guid) = Uuid::try_parse(guid) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT product_key, device_key FROM devices WHERE guid = $1")
            .bind(guid.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("product_key")?, r.try_get("device_key")?)))
            .transpose()?)
    }

    /// Refuses every token issued to the device until now; brokers close
    /// its sessions that logged in with one.
    pub async fn revoke_tokens(&self, pk: &str, dk: &str) -> Result<(), StoreError> {
        self.stamp_device(pk, dk, DeviceStamp::TokensRevoked).await
    }

    /// Adds the public key of `key` under its key id (`token keygen`):
    /// brokers accept tokens it signs from then on.
    pub async fn add_token_key(&self, kid: &str, public_key: &[u8; 32]) -> Result<(), StoreError> {
        validate_kid(kid).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut tx = self.write_transaction().await?;
        let exists = sqlx::query("SELECT 1 AS one FROM token_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!(
                "a token key with id `{kid}` exists: choose another --kid, or `token remove-key {kid}` first"
            )));
        }
        sqlx::query("INSERT INTO token_keys (kid, public_key, created_at) VALUES ($1, $2, $3)")
            .bind(kid)
            .bind(hex::encode(public_key))
            .bind(to_i64(now_ms()))
            .execute(&mut *tx)
            .await?;
        record_change(&mut tx, "token_key", None, None, Some(kid), now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the token key `kid`: its tokens are refused from then on
    /// and the sessions that logged in with one are closed.
    pub async fn remove_token_key(&self, kid: &str) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        let done = sqlx::query("DELETE FROM token_keys WHERE kid = $1")
            .bind(kid)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "no token key with id `{kid}` (token keys lists them)"
            )));
        }
        record_change(&mut tx, "token_key", None, None, Some(kid), now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every token key, oldest first.
    pub async fn token_keys(&self) -> Result<Vec<TokenKeyInfo>, StoreError> {
        let rows = sqlx::query("SELECT kid, public_key, created_at FROM token_keys ORDER BY created_at, kid")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenKeyInfo {
                    kid: r.try_get("kid")?,
                    public_key: r.try_get("public_key")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Every token key as the registry holds it: key id and public key.
    pub async fn load_token_keys(&self) -> Result<Vec<(String, [u8; 32])>, StoreError> {
        Ok(self
            .token_keys()
            .await?
            .into_iter()
            .filter_map(|k| parse_public_key(&k.public_key).map(|key| (k.kid, key)))
            .collect())
    }

    /// The public key with id `kid`, if it exists.
    pub async fn token_key(&self, kid: &str) -> Result<Option<[u8; 32]>, StoreError> {
        let row = sqlx::query("SELECT public_key FROM token_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<String, _>("public_key"))
            .transpose()?
            .and_then(|k| parse_public_key(&k)))
    }

    /// The signing key in the PEM file text `pem` (from `token keygen`),
    /// named by the key id its public key is registered under.
    pub async fn signing_key(&self, pem: &str) -> Result<SigningKey, StoreError> {
        let invalid = |e: crate::access_token::TokenError| StoreError::Invalid(e.to_string());
        let der = crate::access_token::pkcs8_from_pem(pem).map_err(invalid)?;
        let public_key = SigningKey::pkcs8_public_key(&der).map_err(invalid)?;
        let kid = self.token_key_id(&public_key).await?.ok_or_else(|| {
            StoreError::Invalid(
                "this token key's public key is not in the database: make keys with `token keygen` against the \
                 same --database-url"
                    .to_owned(),
            )
        })?;
        SigningKey::from_pkcs8(&kid, &der).map_err(invalid)
    }

    /// The id under which `public_key` is registered, so that a private
    /// key file is all `serve --token-key` and `token issue` need.
    pub async fn token_key_id(&self, public_key: &[u8; 32]) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT kid FROM token_keys WHERE public_key = $1")
            .bind(hex::encode(public_key))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("kid")).transpose()?)
    }
}
