//! This broker as a node of the fleet (issue 11 item 5): registered with
//! the database at start, heartbeating six times per expiry, sweeping the
//! nodes whose heartbeat is older than the expiry (their devices go
//! offline), and leaving cleanly at shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::log_gate::LogGate;
use crate::clock::now_ms;
use crate::engine::Engine;
use crate::store::{Store, new_node_id};

/// This broker's node.
#[derive(Debug)]
pub(super) struct Node {
    pub(super) id: Arc<str>,
    name: String,
    expiry: Duration,
    /// Whether the node's row was written (a read-only database at start
    /// delays it; logins never wait for it).
    registered: bool,
    failing: LogGate,
}

impl Node {
    /// A new node id for this process, named `name` or `HOST/PID`.
    pub(super) fn new(name: Option<String>, expiry: Duration) -> Node {
        Node {
            id: new_node_id().into(),
            name: name.unwrap_or_else(default_name),
            expiry,
            registered: false,
            failing: LogGate::default(),
        }
    }

    /// How often to heartbeat and sweep.
    pub(super) fn interval(&self) -> Duration {
        (self.expiry / 6).max(Duration::from_millis(100))
    }

    /// One heartbeat and sweep; the first registers the node. If this
    /// node had been expired by others (the database was out of its reach
    /// for longer than the expiry), it registers again and writes its live
    /// devices online anew.
    pub(super) async fn beat(&mut self, store: &Store, engine: &Engine) {
        let now = now_ms();
        let expiry_ms = u64::try_from(self.expiry.as_millis()).unwrap_or(u64::MAX);
        let (id, name, expiry) = (self.id.clone(), self.name.clone(), self.expiry);
        let registered = &mut self.registered;
        let beat = async {
            if !*registered {
                store.register_node(&id, &name, now).await?;
                *registered = true;
            } else if !store.heartbeat(&id, now).await? {
                store.register_node(&id, &name, now).await?;
                tracing::warn!(
                    "devicegate node {} had expired (no heartbeat reached the database for {:?}): its devices were \
                     set offline there; writing them online again",
                    name,
                    expiry
                );
                engine.reassert_presence(now);
            }
            store.expire_nodes(now.saturating_sub(expiry_ms)).await
        };
        match beat.await {
            Ok(0) => {}
            Ok(offline) => tracing::info!(
                "devicegate expired broker nodes without a heartbeat for {:?}: {offline} devices set offline",
                self.expiry
            ),
            Err(e) if self.failing.due(Instant::now()) => {
                tracing::warn!("devicegate cannot record node {}'s heartbeat: {e}", self.name);
            }
            Err(_) => {}
        }
    }

    /// At shutdown: this node's devices go offline and its row goes.
    pub(super) async fn leave(&self, store: &Store) {
        if let Err(e) = store.leave(&self.id).await {
            tracing::warn!(
                "devicegate cannot remove node {} at shutdown: {e}; other nodes expire it within {:?}",
                self.name,
                self.expiry
            );
        }
    }
}

/// `HOST/PID`: unique among brokers on one host.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "broker".to_owned());
    format!("{host}/{}", std::process::id())
}
