//! Write-behind: the engine's state changes (presence, activation, issued
//! secrets, audit events), applied in batches, one transaction per batch.
//!
//! A batch stopped by a condition of the database (unreachable, read-only,
//! full, permissions, file gone, locked: see `condition.rs`) is handed
//! back, to be retried in order. A batch the database refuses because of
//! a row is replayed write by write, so one bad write cannot hold the rest
//! back; only a write refused on its own for a row fault (its device was
//! deleted) is logged with what it was, then dropped.
//!
//! Writes replayed from the spool carry an id; each is recorded in
//! `applied_writes` in the same transaction and skipped if already there,
//! so replaying twice writes once.

use sha2::{Digest as _, Sha256};
use sqlx::{AnyConnection, Row};

use super::sealing::{SealedField, SecretKeys};
use super::{Store, StoreError};
use crate::engine::{ConnectionId, IssueKind, StoreWrite};
use crate::registry::identity_of;
use crate::secret::Secret;
use crate::spool::Spooled;

/// What a batch achieved.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    /// Secrets now committed, to hand to `Engine::handle_issue_committed`
    /// (no connection for writes replayed from an earlier process's spool).
    pub committed_issues: Vec<(Option<ConnectionId>, String, IssueKind, Secret)>,
    /// Writes the database refused on their own (logged).
    pub dropped: usize,
    /// Ids of the change rows these writes added: the writer already
    /// knows them, so its own follower need not reload them.
    pub own_changes: Vec<i64>,
}

/// A batch interrupted by a condition of the database: what was committed
/// before it stopped, and the writes to retry, in order.
#[derive(Debug)]
pub struct WriteFailure {
    /// Why the batch stopped.
    pub error: StoreError,
    /// What the writes committed before the failure achieved.
    pub done: WriteOutcome,
    /// The writes not in the database, oldest first.
    pub unwritten: Vec<StoreWrite>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Appends a change row so that every broker reloads the entity; returns its id.
pub(super) async fn record_change(
    conn: &mut AnyConnection,
    entity: &str,
    pk: Option<&str>,
    dk: Option<&str>,
    name: Option<&str>,
    at_ms: u64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO changes (entity, product_key, device_key, name, at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(entity)
    .bind(pk)
    .bind(dk)
    .bind(name)
    .bind(to_i64(at_ms))
    .fetch_one(conn)
    .await?;
    sqlx::Row::try_get::<i64, _>(&row, "id")
}

/// Appends one change row for devices of product `pk` written together
/// (a bulk import batch): brokers load those devices, nothing else.
pub(super) async fn record_devices_change(
    conn: &mut AnyConnection,
    pk: &str,
    device_keys: &[&str],
    at_ms: u64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO changes (entity, product_key, device_keys, at) VALUES ('devices', $1, $2, $3) RETURNING id",
    )
    .bind(pk)
    .bind(device_keys.join("\n"))
    .bind(to_i64(at_ms))
    .fetch_one(conn)
    .await?;
    sqlx::Row::try_get::<i64, _>(&row, "id")
}

/// Applies one write; returns the id of the change row it added, if any.
/// With an `id` (a spooled write), a write already applied is skipped.
/// `node`: the node this process writes presence as (`Some`), or `None`
/// for a write an earlier process spooled, whose connections are gone.
async fn apply_one(
    conn: &mut AnyConnection,
    sealing: Option<&SecretKeys>,
    node: Option<Option<&str>>,
    write: &StoreWrite,
    id: Option<&str>,
) -> Result<Option<i64>, sqlx::Error> {
    if let Some(id) = id {
        let fresh = sqlx::query("INSERT INTO applied_writes (id, at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING")
            .bind(id)
            .bind(to_i64(crate::clock::now_ms()))
            .execute(&mut *conn)
            .await?;
        if fresh.rows_affected() == 0 {
            return Ok(None);
        }
    }
    let keys = |device: &str| identity_of(device).map(|id| (id.product_key.to_owned(), id.device_key.to_owned()));
    match write {
        StoreWrite::Presence {
            device,
            online,
            at_ms,
            address,
        } => {
            let Some((pk, dk)) = keys(device) else {
                return Ok(None);
            };
            // Online belongs to the node the device is on: going online
            // moves it here; going offline clears only a device still
            // here, so a late offline from the node it left cannot undo
            // its login on the next one. An earlier process's online only
            // stamps the time and address.
            let (sql, node) = match (*online, node) {
                (true, None) => (
                    "UPDATE devices SET last_seen_at = $1, last_address = COALESCE($2, last_address) \
                     WHERE product_key = $3 AND device_key = $4",
                    None,
                ),
                (true, Some(node)) => (
                    "UPDATE devices SET online = 1, node_id = $5, last_seen_at = $1, \
                     last_address = COALESCE($2, last_address) WHERE product_key = $3 AND device_key = $4",
                    Some(node),
                ),
                (false, node) => (
                    "UPDATE devices SET online = CASE WHEN node_id IS NULL OR node_id = $5 THEN 0 ELSE online END, \
                     node_id = CASE WHEN node_id = $5 THEN NULL ELSE node_id END, last_seen_at = $1, \
                     last_address = COALESCE($2, last_address) WHERE product_key = $3 AND device_key = $4",
                    Some(node.flatten()),
                ),
            };
            let mut query = sqlx::query(sql)
                .bind(to_i64(*at_ms))
                .bind(address.as_deref())
                .bind(pk)
                .bind(dk);
            if let Some(node) = node {
                query = query.bind(node);
            }
            query.execute(conn).await?;
        }
        StoreWrite::Activated { device, at_ms } => {
            let Some((pk, dk)) = keys(device) else {
                return Ok(None);
            };
            let pending = sqlx::query("SELECT pending_secret FROM devices WHERE product_key = $1 AND device_key = $2")
                .bind(&pk)
                .bind(&dk)
                .fetch_optional(&mut *conn)
                .await?
                .map(|row| row.try_get::<Option<String>, _>("pending_secret"))
                .transpose()?
                .flatten();
            let pending = match pending {
                // A sealed pending secret that does not open is kept, and
                // the write retried, until the key file is fixed: the
                // device holds that secret.
                Some(stored) if super::sealing::is_sealed(&stored) => Some(
                    sealing
                        .ok_or_else(|| sqlx::Error::Protocol("no secret key file to open a pending secret".into()))?
                        .open(SealedField::PendingSecret(device), &stored)
                        .map_err(|e| sqlx::Error::Protocol(format!("pending secret of {device}: {e}")))?,
                ),
                other => other,
            };
            if let Some(pending) = pending {
                super::admin::set_secret(conn, sealing, &pk, &dk, &pending).await?;
            }
            sqlx::query(
                "UPDATE devices SET pending_secret = NULL, activated_at = COALESCE(activated_at, $1) \
                 WHERE product_key = $2 AND device_key = $3",
            )
            .bind(to_i64(*at_ms))
            .bind(&pk)
            .bind(&dk)
            .execute(&mut *conn)
            .await?;
            return Ok(Some(
                record_change(conn, "device", Some(&pk), Some(&dk), None, *at_ms).await?,
            ));
        }
        StoreWrite::Issue {
            device, kind, secret, ..
        } => {
            let Some((pk, dk)) = keys(device) else {
                return Ok(None);
            };
            let now = crate::clock::now_ms();
            match kind {
                IssueKind::Activation | IssueKind::Register => {
                    let stored =
                        super::sealing::seal(sealing, SealedField::PendingSecret(device), &secret.expose_str())
                            .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                    sqlx::query("UPDATE devices SET pending_secret = $1 WHERE product_key = $2 AND device_key = $3")
                        .bind(stored)
                        .bind(&pk)
                        .bind(&dk)
                        .execute(&mut *conn)
                        .await?;
                }
                IssueKind::Regnwl => {
                    let hash = hex::encode(Sha256::digest(secret.expose()));
                    sqlx::query(
                        "INSERT INTO devices (product_key, device_key, token_hash, created_at, guid) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (product_key, device_key) DO UPDATE SET token_hash = excluded.token_hash",
                    )
                    .bind(&pk)
                    .bind(&dk)
                    .bind(hash)
                    .bind(to_i64(now))
                    .bind(super::new_guid())
                    .execute(&mut *conn)
                    .await?;
                }
            }
            return Ok(Some(
                record_change(conn, "device", Some(&pk), Some(&dk), None, now).await?,
            ));
        }
        StoreWrite::RegisterCertificate {
            product_key,
            device_key,
            fingerprint,
            der,
            not_after_ms,
        } => {
            let now = crate::clock::now_ms();
            let created = sqlx::query(
                "INSERT INTO devices (product_key, device_key, created_at, guid) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (product_key, device_key) DO NOTHING",
            )
            .bind(product_key.as_ref())
            .bind(device_key.as_ref())
            .bind(to_i64(now))
            .bind(super::new_guid())
            .execute(&mut *conn)
            .await?;
            if created.rows_affected() == 0 {
                tracing::warn!(
                    device = %format!("{device_key}&{product_key}"),
                    "a certificate registered just in time names a device created meanwhile: not registered; \
                     add it with `devicegate device cert add` if it belongs to that device"
                );
                return Ok(None);
            }
            sqlx::query(
                "INSERT INTO credentials (product_key, device_key, kind, identity, material, not_after, created_at) \
                 VALUES ($1, $2, 'certificate', $3, $4, $5, $6) ON CONFLICT (kind, identity) DO NOTHING",
            )
            .bind(product_key.as_ref())
            .bind(device_key.as_ref())
            .bind(fingerprint.as_ref())
            .bind(pem(der))
            .bind(to_i64(*not_after_ms))
            .bind(to_i64(now))
            .execute(&mut *conn)
            .await?;
            // Not an own change: the engine learns of the new device from
            // the feed like any broker, so its next login finds it.
            record_change(conn, "device", Some(product_key), Some(device_key), None, now).await?;
        }
        StoreWrite::CredentialUsed {
            device,
            kind,
            identity,
            at_ms,
        } => {
            let Some((pk, dk)) = keys(device) else {
                return Ok(None);
            };
            sqlx::query(
                "UPDATE credentials SET first_used_at = COALESCE(first_used_at, $1) \
                 WHERE product_key = $2 AND device_key = $3 AND kind = $4 AND identity = $5",
            )
            .bind(to_i64(*at_ms))
            .bind(pk)
            .bind(dk)
            .bind(*kind)
            .bind(identity.as_ref())
            .execute(conn)
            .await?;
        }
        StoreWrite::Event {
            at_ms,
            kind,
            subject,
            address,
            reason,
        } => {
            sqlx::query("INSERT INTO events (at, kind, subject, address, reason) VALUES ($1, $2, $3, $4, $5)")
                .bind(to_i64(*at_ms))
                .bind(kind.as_ref())
                .bind(subject.as_deref())
                .bind(address.as_deref())
                .bind(reason.as_deref())
                .execute(conn)
                .await?;
        }
    }
    Ok(None)
}

/// A certificate's DER as PEM, for the credentials table.
fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn describe(write: &StoreWrite) -> String {
    match write {
        StoreWrite::Presence { device, online, .. } => {
            format!("presence (online={online}) of {device}")
        }
        StoreWrite::Activated { device, .. } => format!("activation of {device}"),
        StoreWrite::Issue { device, kind, .. } => format!("issued secret ({kind:?}) for {device}"),
        StoreWrite::RegisterCertificate {
            product_key,
            device_key,
            fingerprint,
            ..
        } => format!("certificate {fingerprint} registered just in time for {device_key}&{product_key}"),
        StoreWrite::CredentialUsed { device, kind, .. } => format!("first use of a {kind} of {device}"),
        StoreWrite::Event { kind, subject, .. } => {
            format!("event {kind} for {}", subject.as_deref().unwrap_or("-"))
        }
    }
}

fn committed(write: &StoreWrite, own: bool, outcome: &mut WriteOutcome) {
    if let StoreWrite::Issue {
        device,
        kind,
        secret,
        connection,
    } = write
    {
        outcome
            .committed_issues
            .push((own.then_some(*connection), device.to_string(), *kind, secret.clone()));
    }
}

/// One write to apply: its spool id if it has one, whether this process
/// made it (then its connection is still the one that asked), the write.
type Item<'a> = (Option<&'a str>, bool, &'a StoreWrite);

/// Where a batch stopped: the error, what was achieved before, and the
/// index of the first write not applied.
type Stopped = (StoreError, WriteOutcome, usize);

impl Store {
    async fn apply_batch(&self, batch: &[Item<'_>]) -> Result<Vec<i64>, StoreError> {
        // Failing to get a connection at all means the database is away,
        // whatever the driver's error says: retry later.
        let mut conn = self.pool.acquire().await.map_err(|source| self.unreachable(source))?;
        let mut tx = match self.backend {
            // The write lock at BEGIN: a batch may read before it writes.
            super::Backend::Sqlite => sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?,
            super::Backend::Postgres => sqlx::Connection::begin(&mut *conn).await?,
        };
        let mut changes = Vec::new();
        for (id, own, write) in batch {
            // A presence of an earlier process (replayed from its spool)
            // belongs to no live node: it must not put a device online here.
            let node = if *own { Some(self.node.as_deref()) } else { None };
            changes.extend(apply_one(&mut tx, self.keys.as_deref(), node, write, *id).await?);
        }
        tx.commit().await?;
        Ok(changes)
    }

    /// Applies `items` in one transaction, or write by write when a row
    /// spoils the batch; stops at the first condition of the database.
    async fn apply_items(&self, items: &[Item<'_>]) -> Result<WriteOutcome, Stopped> {
        let mut outcome = WriteOutcome::default();
        match self.apply_batch(items).await {
            Ok(changes) => {
                for (_, own, write) in items {
                    committed(write, *own, &mut outcome);
                }
                outcome.own_changes = changes;
                return Ok(outcome);
            }
            Err(error) if !error.is_row_fault() => return Err((error, outcome, 0)),
            Err(_) => {}
        }
        for (index, item) in items.iter().enumerate() {
            match self.apply_batch(std::slice::from_ref(item)).await {
                Ok(changes) => {
                    committed(item.2, item.1, &mut outcome);
                    outcome.own_changes.extend(changes);
                }
                Err(error) if !error.is_row_fault() => return Err((error, outcome, index)),
                Err(e) => {
                    tracing::error!(
                        "dropping a state write its row makes impossible: {}: {e}",
                        describe(item.2)
                    );
                    outcome.dropped += 1;
                }
            }
        }
        Ok(outcome)
    }

    /// Applies `batch`. When a condition of the database stops it, the
    /// writes not applied come back with the error, to be retried in order.
    pub async fn apply_writes(&self, batch: Vec<StoreWrite>) -> Result<WriteOutcome, WriteFailure> {
        let items: Vec<Item<'_>> = batch.iter().map(|w| (None, true, w)).collect();
        match self.apply_items(&items).await {
            Ok(outcome) => Ok(outcome),
            Err((error, done, index)) => {
                drop(items);
                let unwritten = batch.into_iter().skip(index).collect();
                Err(WriteFailure { error, done, unwritten })
            }
        }
    }

    /// Applies writes replayed from the spool, each at most once. On a
    /// condition of the database, says how many were applied (or dropped
    /// for their row) before it, with the error.
    pub async fn apply_spooled(&self, batch: &[Spooled]) -> Result<WriteOutcome, (StoreError, WriteOutcome, usize)> {
        let items: Vec<Item<'_>> = batch
            .iter()
            .map(|s| (Some(s.id.as_str()), s.from_this_process, &s.write))
            .collect();
        self.apply_items(&items).await
    }

    /// Deletes spool ids recorded before `before_ms`; returns how many.
    pub async fn prune_applied_writes(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM applied_writes WHERE at < $1")
            .bind(to_i64(before_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes audit events older than `before_ms`; returns how many.
    pub async fn prune_events(&self, before_ms: u64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM events WHERE at < $1")
            .bind(to_i64(before_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
