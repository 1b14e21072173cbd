//! Bulk device import (`devicegate device import`, the admin API's batch
//! creation): one transaction per batch; every row checked by the same
//! rules as `device create` (`admin::check_new_device`); devices and their
//! secrets written with multi-row INSERTs (`rows_per_insert`); and one
//! change row for the whole batch (entity `devices`), so
//! brokers load just the batch instead of one change per device.

use std::collections::{HashMap, HashSet};

use sqlx::{AnyConnection, Row};

use super::admin::{
    DeviceSpec, ImportRow, ProductSpec, check_new_device, device_exists, insert_devices_sql, insert_secrets_sql,
    new_device_secret, to_i64,
};
use super::sealing::{self, SealedField};
use super::writes::record_devices_change;
use super::{Backend, Store, StoreError, new_guid};
use crate::clock::now_ms;

/// Rows per INSERT statement (6 bound parameters per device). Postgres
/// takes 1,000 (6,000 parameters, its limit is 65,535). sqlx's SQLite
/// driver looks each parameter up by name among all of the statement's,
/// which grows with the square of their number: 74 % of an import's time
/// at 1,000 rows, so SQLite gets statements of 50 rows.
fn rows_per_insert(backend: Backend) -> usize {
    match backend {
        Backend::Postgres => 1000,
        Backend::Sqlite => 50,
    }
}

/// What becomes of one row of a batch: the secret generated for it (to
/// print once), or why it was refused.
pub type ImportResult = Result<Option<String>, String>;

/// A row that passed the checks, waiting for its INSERT.
struct Planned<'a> {
    row: &'a ImportRow,
    generated: Option<String>,
    stored: Option<String>,
}

impl Store {
    /// Imports one batch of product `pk` in one transaction; each row's
    /// result in order. Refused rows (bad key or secret, unknown gateway,
    /// a device that exists or appears twice) do not stop the batch; an
    /// error of the database stops it and writes nothing of it.
    pub async fn import_devices(
        &self,
        pk: &str,
        batch: &[ImportRow],
        allow_weak_secret: bool,
    ) -> Result<Vec<ImportResult>, StoreError> {
        let mut tx = self.write_transaction().await?;
        let product = self.require_product(&mut tx, pk).await?;
        let verdicts = self.plan(&mut tx, &product, batch, allow_weak_secret).await?;
        let planned: Vec<&Planned<'_>> = verdicts.iter().filter_map(|v| v.as_ref().ok()).collect();
        let mut inserted: HashSet<String> = HashSet::with_capacity(planned.len());
        for chunk in planned.chunks(rows_per_insert(self.backend())) {
            let new = insert_devices(&mut tx, pk, chunk).await?;
            let secrets: Vec<(&str, &str)> = chunk
                .iter()
                .filter(|plan| new.contains(&plan.row.device_key))
                .filter_map(|plan| Some((plan.row.device_key.as_str(), plan.stored.as_deref()?)))
                .collect();
            self.insert_secrets(&mut tx, pk, &secrets).await?;
            inserted.extend(new);
        }
        if !inserted.is_empty() {
            let keys: Vec<&str> = planned
                .iter()
                .map(|plan| plan.row.device_key.as_str())
                .filter(|dk| inserted.contains(*dk))
                .collect();
            record_devices_change(&mut tx, pk, &keys, now_ms()).await?;
        }
        tx.commit().await?;
        Ok(verdicts
            .into_iter()
            .map(|verdict| {
                let plan = verdict?;
                if inserted.contains(&plan.row.device_key) {
                    Ok(plan.generated)
                } else {
                    Err(format!("device `{}` already exists", plan.row.device_key))
                }
            })
            .collect())
    }

    /// Checks every row, in order: the row planned with its secrets, or
    /// why it is refused.
    async fn plan<'a>(
        &self,
        conn: &mut AnyConnection,
        product: &ProductSpec,
        batch: &'a [ImportRow],
        allow_weak_secret: bool,
    ) -> Result<Vec<Result<Planned<'a>, String>>, StoreError> {
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut first_line: HashMap<&str, u64> = HashMap::with_capacity(batch.len());
        let mut gateways: HashMap<(String, String), bool> = HashMap::new();
        for row in batch {
            let spec = DeviceSpec {
                secret: row.secret.clone(),
                allow_weak_secret,
                no_secret: false,
                gateway: row.gateway.clone(),
            };
            if let Err(e) = check_new_device(product, &row.device_key, &spec) {
                verdicts.push(Err(e.to_string()));
                continue;
            }
            if let Some(line) = first_line.get(row.device_key.as_str()) {
                verdicts.push(Err(format!(
                    "device `{}` already exists (line {line} of this import)",
                    row.device_key
                )));
                continue;
            }
            if let Some(gateway) = &row.gateway {
                // A gateway earlier in this batch counts: files list gateways first.
                let in_batch = gateway.0 == product.product_key && first_line.contains_key(gateway.1.as_str());
                let exists = match gateways.get(gateway) {
                    Some(known) => *known,
                    None => {
                        let known = device_exists(conn, &gateway.0, &gateway.1).await?;
                        gateways.insert(gateway.clone(), known);
                        known
                    }
                };
                if !in_batch && !exists {
                    verdicts.push(Err(
                        StoreError::UnknownDevice(gateway.0.clone(), gateway.1.clone()).to_string()
                    ));
                    continue;
                }
            }
            match new_device_secret(&spec) {
                Ok((generated, stored)) => {
                    first_line.insert(&row.device_key, row.line);
                    verdicts.push(Ok(Planned { row, generated, stored }));
                }
                Err(e) => verdicts.push(Err(e.to_string())),
            }
        }
        Ok(verdicts)
    }

    /// One multi-row INSERT of device secrets, sealed if the store seals.
    async fn insert_secrets(
        &self,
        conn: &mut AnyConnection,
        pk: &str,
        secrets: &[(&str, &str)],
    ) -> Result<(), StoreError> {
        if secrets.is_empty() {
            return Ok(());
        }
        let sql = insert_secrets_sql(secrets.len());
        let now = to_i64(now_ms());
        let mut query = sqlx::query(&sql);
        for (dk, secret) in secrets {
            let identity = format!("{dk}&{pk}");
            let stored = sealing::seal(self.keys.as_deref(), SealedField::DeviceSecret(&identity), secret)?;
            query = query.bind(pk).bind(*dk).bind(identity).bind(stored).bind(now);
        }
        query.execute(conn).await?;
        Ok(())
    }
}

/// One multi-row INSERT of devices; the device keys it inserted (the
/// others exist already).
async fn insert_devices(
    conn: &mut AnyConnection,
    pk: &str,
    chunk: &[&Planned<'_>],
) -> Result<HashSet<String>, StoreError> {
    let sql = insert_devices_sql(chunk.len());
    let now = to_i64(now_ms());
    let mut query = sqlx::query(&sql);
    for plan in chunk {
        let gateway = plan.row.gateway.as_ref();
        query = query
            .bind(pk)
            .bind(plan.row.device_key.as_str())
            .bind(gateway.map(|g| g.0.clone()))
            .bind(gateway.map(|g| g.1.clone()))
            .bind(now)
            .bind(new_guid());
    }
    let rows = query.fetch_all(conn).await?;
    rows.iter()
        .map(|row| row.try_get::<String, _>("device_key").map_err(StoreError::from))
        .collect()
}
