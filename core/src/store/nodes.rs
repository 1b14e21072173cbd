//! Broker nodes (issue 11 item 5): every broker process registers itself
//! with a heartbeat, and a device's online state names the node it is on
//! (`devices.node_id`, written by presence writes). A node that stops
//! heartbeating — killed, crashed, cut off — is expired by whichever node
//! sweeps next: its devices go offline and its row is removed.

use sqlx::Row;

use super::admin::to_i64;
use super::{Store, StoreError};

/// A node's random id: unique per broker process, so a restarted broker
/// never inherits the online devices of its previous run.
pub fn new_node_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Store {
    /// Registers node `id` named `name` (for people: `device show`),
    /// heartbeating now.
    pub async fn register_node(&self, id: &str, name: &str, now_ms: u64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, name, started_at, heartbeat_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
        )
        .bind(id)
        .bind(name)
        .bind(to_i64(now_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records node `id`'s heartbeat. False when its row is gone: other
    /// nodes expired it (it was cut off longer than the expiry), so its
    /// devices were set offline and the caller registers again and writes
    /// its live devices' presence anew.
    pub async fn heartbeat(&self, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE nodes SET heartbeat_at = $1 WHERE id = $2")
            .bind(to_i64(now_ms))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Expires every node whose last heartbeat is before `cutoff_ms`: its
    /// devices go offline and its row goes. Devices naming a node that is
    /// not registered (expired earlier while its late writes still came
    /// in) go offline too: a node registers before its first presence
    /// write. Returns how many devices went offline.
    pub async fn expire_nodes(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let offline = sqlx::query(
            "UPDATE devices SET online = 0, node_id = NULL WHERE node_id IS NOT NULL \
             AND (node_id IN (SELECT id FROM nodes WHERE heartbeat_at < $1) \
             OR node_id NOT IN (SELECT id FROM nodes))",
        )
        .bind(to_i64(cutoff_ms))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM nodes WHERE heartbeat_at < $1")
            .bind(to_i64(cutoff_ms))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(offline)
    }

    /// A node stopping cleanly: its devices go offline and its row goes.
    pub async fn leave(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE devices SET online = 0, node_id = NULL WHERE node_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The name of node `id`, if it is registered.
    pub async fn node_name(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT name FROM nodes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("name")).transpose()?)
    }
}
