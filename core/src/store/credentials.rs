//! Device credentials besides the secret (IDENTITIES.md §1, §2): create,
//! list and revoke. Each change appends a device change row in the same
//! transaction, so every broker reloads the device and throws off the
//! sessions whose credential went away.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::writes::record_change;
use super::{Store, StoreError};
use crate::clock::now_ms;
use crate::registry::CredentialKind;

/// PSK key length in bytes (written as 64 hex digits).
pub const PSK_KEY_LEN: usize = 32;
/// The longest PSK identity an operator may choose, in bytes.
pub const MAX_PSK_IDENTITY_LEN: usize = 128;

/// A credential as `device show` lists it; never its material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialInfo {
    /// `psk`, `certificate`, `access_key`.
    pub kind: String,
    /// What the device presents.
    pub identity: String,
    /// When it was created, ms since the epoch.
    pub created_at: u64,
    /// When a login first used it, if one did.
    pub first_used_at: Option<u64>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<u64>,
}

/// A PSK just created: the only time its key is shown. `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewPsk {
    /// The PSK identity the device sends in the handshake.
    pub identity: String,
    /// The key, 64 upper-case hex digits.
    pub key: String,
}

impl std::fmt::Debug for NewPsk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewPsk")
            .field("identity", &self.identity)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Refuses a PSK identity an operator chose unless it is 1–128 bytes of
/// printable ASCII without `& | / + #` (IDENTITIES.md §2).
pub fn validate_psk_identity(identity: &str) -> Result<(), StoreError> {
    let ok = !identity.is_empty()
        && identity.len() <= MAX_PSK_IDENTITY_LEN
        && identity.bytes().all(|b| b.is_ascii_graphic() && !b"&|/+#".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "a PSK identity must be 1 to {MAX_PSK_IDENTITY_LEN} printable ASCII characters without spaces or any \
             of `& | / + #`"
        )))
    }
}

pub(super) fn random<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        StoreError::Invalid(format!(
            "cannot generate a credential: the operating system RNG failed: {e}"
        ))
    })?;
    Ok(bytes)
}

/// 22 characters of base64url (16 random bytes, no padding), never
/// starting with `-`, which command lines (`mosquitto_pub --psk-identity`,
/// this CLI) would take for an option.
fn generated_identity() -> Result<String, StoreError> {
    loop {
        let identity = URL_SAFE_NO_PAD.encode(random::<16>()?);
        if !identity.starts_with('-') {
            return Ok(identity);
        }
    }
}

pub(super) async fn require_device(conn: &mut AnyConnection, pk: &str, dk: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 AS one FROM devices WHERE product_key = $1 AND device_key = $2")
        .bind(pk)
        .bind(dk)
        .fetch_optional(conn)
        .await?
        .map(|_| ())
        .ok_or_else(|| StoreError::UnknownDevice(pk.to_owned(), dk.to_owned()))
}

impl Store {
    /// Creates a TLS pre-shared key for a device: the identity given (or
    /// 22 random base64url characters) and 32 random bytes of key.
    pub async fn create_psk(&self, pk: &str, dk: &str, identity: Option<&str>) -> Result<NewPsk, StoreError> {
        let identity = match identity {
            Some(identity) => {
                validate_psk_identity(identity)?;
                identity.to_owned()
            }
            None => generated_identity()?,
        };
        let key = hex::encode_upper(random::<PSK_KEY_LEN>()?);
        let mut tx = self.write_transaction().await?;
        require_device(&mut tx, pk, dk).await?;
        let done = sqlx::query(
            "INSERT INTO credentials (product_key, device_key, kind, identity, material, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, identity) DO NOTHING",
        )
        .bind(pk)
        .bind(dk)
        .bind(CredentialKind::Psk.name())
        .bind(&identity)
        .bind(super::sealing::seal(
            self.keys.as_deref(),
            super::sealing::SealedField::PskKey(&identity),
            &key,
        )?)
        .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "the PSK identity `{identity}` is taken (identities are unique, revoked ones included): choose another \
                 or leave out --identity"
            )));
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(NewPsk { identity, key })
    }

    /// Registers a certificate for a device by its SHA-256 `fingerprint`
    /// (hex); `pem` is kept for CRLs and audits (certificates are public),
    /// `not_after_ms` refuses it once expired. A fingerprint registered
    /// before (to any device, revoked or not) is refused.
    pub async fn add_certificate(
        &self,
        pk: &str,
        dk: &str,
        fingerprint: &str,
        pem: &str,
        not_after_ms: u64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write_transaction().await?;
        require_device(&mut tx, pk, dk).await?;
        let done = sqlx::query(
            "INSERT INTO credentials (product_key, device_key, kind, identity, material, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, identity) DO NOTHING",
        )
        .bind(pk)
        .bind(dk)
        .bind(CredentialKind::Certificate.name())
        .bind(fingerprint)
        .bind(pem)
        .bind(i64::try_from(not_after_ms).unwrap_or(i64::MAX))
        .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "the certificate {fingerprint} is registered already (revoked certificates stay registered): issue \
                 a new one"
            )));
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The device, as `(pk, dk)`, holding the live (not revoked)
    /// certificate credential whose SHA-256 `fingerprint` (hex, as
    /// [`crate::credentials::Fingerprint`] writes it) is given; `None` when
    /// no device holds it or it was revoked. One indexed look-up: what
    /// bootstrap by client certificate asks.
    pub async fn device_by_certificate(&self, fingerprint: &str) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT product_key, device_key FROM credentials \
             WHERE kind = $1 AND identity = $2 AND revoked_at IS NULL",
        )
        .bind(CredentialKind::Certificate.name())
        .bind(fingerprint)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .map(|r| Ok::<_, sqlx::Error>((r.try_get("product_key")?, r.try_get("device_key")?)))
            .transpose()?)
    }

    /// Every revoked certificate still within its validity, as (PEM,
    /// revoked at ms): what a CRL lists.
    pub async fn revoked_certificates(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT material, revoked_at FROM credentials WHERE kind = 'certificate' AND revoked_at IS NOT NULL \
             AND material IS NOT NULL AND (not_after IS NULL OR not_after > $1) ORDER BY id",
        )
        .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    row.try_get::<String, _>("material")?,
                    u64::try_from(row.try_get::<i64, _>("revoked_at")?).unwrap_or(0),
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Revokes the device's live credentials of `kind`: the one with
    /// `identity`, or all. Returns how many were revoked; brokers refuse
    /// them from the next login and close the sessions that used them.
    pub async fn revoke_credentials(
        &self,
        pk: &str,
        dk: &str,
        kind: CredentialKind,
        identity: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.revoke(pk, dk, kind.name(), identity).await
    }

    /// Revokes the device's access keys (IDENTITIES.md §4): the one named
    /// `access_key`, or all. Tokens already issued live until they expire
    /// or `revoke_tokens`.
    pub async fn revoke_access_keys(&self, pk: &str, dk: &str, access_key: Option<&str>) -> Result<u64, StoreError> {
        self.revoke(pk, dk, "access_key", access_key).await
    }

    async fn revoke(&self, pk: &str, dk: &str, kind: &str, identity: Option<&str>) -> Result<u64, StoreError> {
        let now = i64::try_from(now_ms()).unwrap_or(i64::MAX);
        let mut tx = self.write_transaction().await?;
        require_device(&mut tx, pk, dk).await?;
        let done = sqlx::query(
            "UPDATE credentials SET revoked_at = $1 WHERE product_key = $2 AND device_key = $3 AND kind = $4 \
             AND ($5 IS NULL OR identity = $5) AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(pk)
        .bind(dk)
        .bind(kind)
        .bind(identity)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(match identity {
                Some(identity) => format!("device `{dk}` of product `{pk}` has no live {kind} credential `{identity}`"),
                None => format!("device `{dk}` of product `{pk}` has no live {kind} credential"),
            }));
        }
        record_change(&mut tx, "device", Some(pk), Some(dk), None, now_ms()).await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// The device's credentials, live and revoked, oldest first.
    pub async fn credentials(&self, pk: &str, dk: &str) -> Result<Vec<CredentialInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, identity, created_at, first_used_at, revoked_at FROM credentials \
             WHERE product_key = $1 AND device_key = $2 ORDER BY id",
        )
        .bind(pk)
        .bind(dk)
        .fetch_all(&self.pool)
        .await?;
        let millis = |v: i64| u64::try_from(v).unwrap_or(0);
        rows.iter()
            .map(|row| {
                Ok(CredentialInfo {
                    kind: row.try_get("kind")?,
                    identity: row.try_get("identity")?,
                    created_at: millis(row.try_get("created_at")?),
                    first_used_at: row.try_get::<Option<i64>, _>("first_used_at")?.map(millis),
                    revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(millis),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_identities_are_22_base64url_characters() {
        let a = generated_identity().unwrap();
        let b = generated_identity().unwrap();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        for _ in 0..1000 {
            assert!(!generated_identity().unwrap().starts_with('-'));
        }
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        validate_psk_identity(&a).unwrap();
    }

    #[test]
    fn chosen_identities_are_checked() {
        validate_psk_identity("PwjWTw_TyUaVEEGHgtnzJA").unwrap();
        validate_psk_identity("device-0001.psk").unwrap();
        for bad in ["", "a b", "a&b", "a|b", "a/b", "a+b", "a#b", "é", &"x".repeat(129)] {
            assert!(validate_psk_identity(bad).is_err(), "{bad:?}");
        }
    }
}
