//! Rows to registry values. Column lists live here next to their decoders.

use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::sealing::{self, SealedField, SecretKeys};
use crate::acl::{TopicRule, TopicRules};
use crate::credentials::Dialect;
use crate::principal::Principal;
use crate::registry::{Credential, CredentialKind, DeviceRecord, Product, TimestampPolicy};
use crate::secret::Secret;
use crate::sign::AlgSet;

/// The product columns [`product`] reads.
pub(super) const PRODUCT_COLUMNS: &str = "product_key, product_secret, dialect, sign_methods, timestamp_window_secs, \
     dynamic_activation, free_client_id, shared_subscriptions, allow_retain, offline_after_secs, max_sub_devices, \
     extra_topics, created_at, auto_register_certs, guid, token_ttl_secs, server_url, secrets_sealed";

/// The device columns [`device`] reads, from [`DEVICES_WITH_SECRETS`].
pub(super) const DEVICE_COLUMNS: &str = "devices.product_key, devices.device_key, \
     secrets.material AS device_secret, secrets.first_used_at AS secret_first_used_at, \
     pending_secret, token_hash, gateway_product_key, gateway_device_key, enabled, activated_at, secret_version, \
     devices.guid, tokens_revoked_at, devices.server_url, sealing.secrets_sealed AS product_sealed, unblocked_at";

/// Devices with their live secret from the credentials table (one join;
/// filter on `devices.product_key` and `devices.device_key`).
pub(super) const DEVICES_WITH_SECRETS: &str = "devices LEFT JOIN credentials secrets \
     ON secrets.product_key = devices.product_key AND secrets.device_key = devices.device_key \
     AND secrets.kind = 'secret' AND secrets.revoked_at IS NULL \
     JOIN products sealing ON sealing.product_key = devices.product_key";

/// The `guid` column, absent when it does not hold a UUID.
fn guid(row: &AnyRow) -> Result<Option<Uuid>, sqlx::Error> {
    Ok(row
        .try_get::<Option<String>, _>("guid")?
        .and_then(|g| Uuid::try_parse(&g).ok()))
}

pub(super) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Parses the stored extra topic rules, one per line. A line that no longer
/// parses is skipped with a warning (the CLI validates before writing).
pub(super) fn parse_rules(pk: &str, text: &str, principal: bool) -> Vec<TopicRule> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .filter_map(|line| {
            let parsed = if principal {
                TopicRule::parse_principal(line)
            } else {
                TopicRule::parse(line)
            };
            parsed
                .map_err(|e| tracing::warn!(owner = pk, "skipping stored topic rule: {e}"))
                .ok()
        })
        .collect()
}

pub(super) fn product(row: &AnyRow, keys: Option<&SecretKeys>) -> Result<Product, sqlx::Error> {
    let key: String = row.try_get("product_key")?;
    let dialect_name: String = row.try_get("dialect")?;
    let dialect = Dialect::from_name(&dialect_name).unwrap_or_default();
    let mut p = Product::new(&key, dialect);
    p.secret = sealing::open(
        keys,
        SealedField::ProductSecret(&key),
        row.try_get("product_secret")?,
        flag(row, "secrets_sealed")?,
    )
    .map(|s| Secret::new(s.into_bytes()));
    let methods: String = row.try_get("sign_methods")?;
    p.sign_methods = AlgSet::parse(&methods).unwrap_or_default();
    p.timestamp_policy = match row.try_get::<Option<i64>, _>("timestamp_window_secs")? {
        Some(w) => TimestampPolicy::Enforce {
            window_secs: u32::try_from(w).unwrap_or(u32::MAX),
        },
        None => TimestampPolicy::Off,
    };
    p.dynamic_activation = flag(row, "dynamic_activation")?;
    p.free_client_id = flag(row, "free_client_id")?;
    p.shared_subscriptions = flag(row, "shared_subscriptions")?;
    p.allow_retain = flag(row, "allow_retain")?;
    p.offline_after_secs = u32::try_from(row.try_get::<i64, _>("offline_after_secs")?).unwrap_or(0);
    if let Some(max) = row.try_get::<Option<i64>, _>("max_sub_devices")? {
        p.max_sub_devices = u32::try_from(max).unwrap_or(u32::MAX);
    }
    let extra: String = row.try_get("extra_topics")?;
    p.extra_rules = parse_rules(&key, &extra, false);
    p.auto_register_certs = flag(row, "auto_register_certs")?;
    p.guid = guid(row)?;
    if let Some(ttl) = row.try_get::<Option<i64>, _>("token_ttl_secs")? {
        p.token_ttl_secs = u32::try_from(ttl).unwrap_or(u32::MAX);
    }
    p.server_url = row.try_get::<Option<String>, _>("server_url")?.map(Into::into);
    p.rebuild_rules();
    Ok(p)
}

/// `({dk}&{pk}, record)` of a device row.
pub(super) fn device(row: &AnyRow, keys: Option<&SecretKeys>) -> Result<(String, DeviceRecord), sqlx::Error> {
    let pk: String = row.try_get("product_key")?;
    let dk: String = row.try_get("device_key")?;
    let key = format!("{dk}&{pk}");
    let product_sealed = flag(row, "product_sealed")?;
    let secret = |col: &str| -> Result<Option<Secret>, sqlx::Error> {
        let field = if col == "pending_secret" {
            SealedField::PendingSecret(&key)
        } else {
            SealedField::DeviceSecret(&key)
        };
        Ok(sealing::open(keys, field, row.try_get(col)?, product_sealed).map(|s| Secret::new(s.into_bytes())))
    };
    let token_hash = row.try_get::<Option<String>, _>("token_hash")?.and_then(|h| {
        let mut out = [0u8; 32];
        hex::decode_to_slice(h, &mut out).ok().map(|()| Box::new(out))
    });
    let gateway = match (
        row.try_get::<Option<String>, _>("gateway_product_key")?,
        row.try_get::<Option<String>, _>("gateway_device_key")?,
    ) {
        (Some(gpk), Some(gdk)) => Some(format!("{gdk}&{gpk}").into_boxed_str()),
        _ => None,
    };
    let record = DeviceRecord {
        secret: secret("device_secret")?,
        pending_secret: secret("pending_secret")?,
        token_hash,
        gateway,
        enabled: flag(row, "enabled")?,
        activated: row.try_get::<Option<i64>, _>("activated_at")?.is_some(),
        secret_version: u32::try_from(row.try_get::<i64, _>("secret_version")?).unwrap_or(0),
        credentials: Vec::new(),
        secret_used: row.try_get::<Option<i64>, _>("secret_first_used_at")?.is_some(),
        guid: guid(row)?,
        tokens_revoked_at_ms: u64::try_from(row.try_get::<Option<i64>, _>("tokens_revoked_at")?.unwrap_or(0))
            .unwrap_or(0),
        server_url: row.try_get::<Option<String>, _>("server_url")?.map(Into::into),
        unblocked_at_ms: u64::try_from(row.try_get::<Option<i64>, _>("unblocked_at")?.unwrap_or(0)).unwrap_or(0),
    };
    Ok((key, record))
}

/// The live-credential columns [`credential`] reads. A certificate's PEM
/// stays in the database: the fingerprint is the whole check at login.
pub(super) const CREDENTIAL_COLUMNS: &str = "product_key, device_key, kind, identity, CASE WHEN kind = 'psk' THEN material END AS material, not_after, \
     first_used_at";

/// `({dk}&{pk}, credential)` of a credential row, or `None` for a kind this
/// version does not use at login.
pub(super) fn credential(row: &AnyRow, keys: Option<&SecretKeys>) -> Result<Option<(String, Credential)>, sqlx::Error> {
    let pk: String = row.try_get("product_key")?;
    let dk: String = row.try_get("device_key")?;
    let kind: String = row.try_get("kind")?;
    let Some(kind) = CredentialKind::from_name(&kind) else {
        return Ok(None);
    };
    let identity: String = row.try_get("identity")?;
    // PSK keys written before sealing was configured stay usable in
    // plaintext; `secrets seal` seals them.
    let material = sealing::open(keys, SealedField::PskKey(&identity), row.try_get("material")?, false);
    Ok(Some((
        format!("{dk}&{pk}"),
        Credential {
            kind,
            identity: identity.into(),
            material: Secret::new(material.unwrap_or_default().into_bytes()),
            not_after_ms: row
                .try_get::<Option<i64>, _>("not_after")?
                .map(|t| u64::try_from(t).unwrap_or(0)),
            used: row.try_get::<Option<i64>, _>("first_used_at")?.is_some(),
        },
    )))
}

pub(super) fn principal(row: &AnyRow) -> Result<Principal, sqlx::Error> {
    let name: String = row.try_get("name")?;
    let hash: String = row.try_get("password_hash")?;
    let rules: String = row.try_get("rules")?;
    let parsed = TopicRules::new(parse_rules(&name, &rules, true));
    Ok(Principal::new(&name, &hash, parsed))
}
