//! Online and offline: disconnects, idle windows, kicks after registry
//! changes, activation bookkeeping, and the tick that drives deadlines.

use std::sync::atomic::Ordering;

use super::connection::Subject;
use super::timers::TimerKind;
use super::{ConnectionId, Effect, Engine, StoreWrite};

/// The most deadlines handled in one tick, so a tick stays short.
const MAX_TIMERS_PER_TICK: usize = 1024;
/// Failure-limiter entries are pruned this often.
const PRUNE_EVERY_MS: u64 = 10_000;

impl Engine {
    pub(super) fn presence(&self, device: &str, online: bool, now_ms: u64, address: Option<&str>) {
        self.push_write(StoreWrite::Presence {
            device: device.into(),
            online,
            at_ms: now_ms,
            address: address.map(Into::into),
        });
    }

    /// Writes every online device's presence again, as online from its
    /// connection's address (background task): after this broker's node
    /// was expired while it could not reach the database, which set its
    /// devices offline there.
    pub fn reassert_presence(&self, now_ms: u64) {
        let online: Vec<(Box<str>, ConnectionId)> = self.online.iter().map(|e| (e.key().clone(), *e.value())).collect();
        for (device, connection) in online {
            let address = self
                .connections
                .get(&connection)
                .and_then(|c| c.address.as_deref().map(str::to_owned));
            self.presence(&device, true, now_ms, address.as_deref());
        }
    }

    pub(super) fn mark_activated(&self, device: &str, now_ms: u64) {
        self.registry.update_device(device, |d| d.activated = true);
        self.push_write(StoreWrite::Activated {
            device: device.into(),
            at_ms: now_ms,
        });
        self.event(now_ms, "activated", Some(device), None, None);
    }

    /// The device proved it holds its pending secret: it becomes the secret.
    pub(super) fn confirm_pending_secret(&self, device: &str, now_ms: u64) {
        self.registry.update_device(device, |d| {
            if let Some(pending) = d.pending_secret.take() {
                d.secret = Some(pending);
            }
            d.activated = true;
        });
        self.push_write(StoreWrite::Activated {
            device: device.into(),
            at_ms: now_ms,
        });
        self.event(now_ms, "activated", Some(device), None, None);
    }

    pub(super) fn disconnect(&self, connection: ConnectionId, now_ms: u64) {
        let Some((_, conn)) = self.connections.remove(&connection) else {
            return;
        };
        self.client_ids.remove_if(&*conn.client_id, |_, c| *c == connection);
        if let Subject::Device { key, gateway, .. } = &conn.subject {
            let was_current = self.online.remove_if(key, |_, c| *c == connection).is_some();
            if was_current {
                self.presence(key, false, now_ms, None);
            }
            for sub in &gateway.sub_devices {
                if self.online.remove_if(sub, |_, c| *c == connection).is_some() {
                    self.presence(sub, false, now_ms, None);
                }
            }
        }
    }

    /// Throws the device off: kicks its own connection, or logs it out of
    /// the gateway it is online through.
    pub(super) fn throw_off(&self, device: &str, now_ms: u64, reason: &'static str) {
        let Some((_, connection)) = self.online.remove(device) else {
            return;
        };
        self.presence(device, false, now_ms, None);
        let (mut kick, mut address) = (None, None);
        if let Some(mut conn) = self.connections.get_mut(&connection) {
            let own = conn.device_key() == Some(device);
            address = conn.address.as_deref().map(str::to_owned);
            if own {
                kick = Some(conn.client_id.to_string());
            } else if let Subject::Device { gateway, .. } = &mut conn.subject {
                gateway.remove(device);
            }
        }
        self.event(now_ms, "kicked", Some(device), address.as_deref(), Some(reason));
        if let Some(client_id) = kick {
            self.metrics().kicked(reason);
            tracing::info!(device, reason, "kicking device");
            self.push_effect(Effect::Kick { connection, client_id });
        }
    }

    pub(super) fn tick(&self, now_ms: u64) {
        for (connection, serial, kind) in self.timers.due(now_ms, MAX_TIMERS_PER_TICK) {
            let live = self.connections.get(&connection).is_some_and(|c| c.serial == serial);
            if !live {
                continue;
            }
            match kind {
                TimerKind::Idle => self.idle_check(connection, serial, now_ms),
                TimerKind::ActivationRetry => self.activation_retry(connection, serial, now_ms),
                TimerKind::Close => self.close_connection(connection),
            }
        }
        let last = self.last_prune_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= PRUNE_EVERY_MS {
            self.last_prune_ms.store(now_ms, Ordering::Relaxed);
            self.limits.prune(now_ms);
        }
    }

    fn idle_check(&self, connection: ConnectionId, serial: u64, now_ms: u64) {
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        let Subject::Device { key, product, .. } = &conn.subject else {
            return;
        };
        let window = u64::from(product.offline_after_secs) * 1000;
        if window == 0 {
            return;
        }
        let last = conn.last_activity_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= window {
            if !conn.idle.swap(true, Ordering::Relaxed) {
                let key = key.clone();
                drop(conn);
                self.presence(&key, false, now_ms, None);
            }
        } else {
            self.timers.schedule(last + window, connection, serial, TimerKind::Idle);
        }
    }

    /// Traffic on a connection that had gone idle: online again, and the
    /// idle check re-armed.
    pub(super) fn back_from_idle(&self, connection: ConnectionId, now_ms: u64) {
        let Some(conn) = self.connections.get(&connection) else {
            return;
        };
        if let Subject::Device { key, product, .. } = &conn.subject {
            let key = key.clone();
            let window = u64::from(product.offline_after_secs) * 1000;
            let serial = conn.serial;
            drop(conn);
            self.presence(&key, true, now_ms, None);
            self.timers
                .schedule(now_ms + window, connection, serial, TimerKind::Idle);
        }
    }

    pub(super) fn close_connection(&self, connection: ConnectionId) {
        if let Some(conn) = self.connections.get(&connection) {
            self.metrics().kicked("session_ended");
            self.push_effect(Effect::Kick {
                connection,
                client_id: conn.client_id.to_string(),
            });
        }
    }
}
