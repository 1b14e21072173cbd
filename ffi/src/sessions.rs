//! VerneMQ names a session by its subscriber id `{mountpoint, client id}`;
//! the engine names it by connection. This map joins the two, so hooks that
//! only carry a subscriber id reach the right connection, and effects for a
//! connection reach the right session.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use devicegate::engine::ConnectionId;

/// A session as the broker names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscriber {
    pub mountpoint: Box<str>,
    pub client_id: Box<str>,
}

#[derive(Debug)]
struct Binding {
    mountpoint: Box<str>,
    connection: ConnectionId,
}

/// The subscriber ids of accepted logins and their connections.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    /// Client id to its sessions (one per mountpoint in use).
    by_client: DashMap<Box<str>, Vec<Binding>>,
    by_connection: DashMap<ConnectionId, Subscriber>,
    /// Sessions the broker has not confirmed yet, with when they were
    /// accepted: kept apart so the periodic sweep reads only these.
    unconfirmed: DashMap<ConnectionId, u64>,
    next: AtomicU64,
}

impl Sessions {
    /// A connection handle never used before.
    pub fn new_connection(&self) -> ConnectionId {
        ConnectionId(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Binds `subscriber` to `connection`, unconfirmed since `now_ms`;
    /// returns the connection it replaces (the broker takes that session
    /// over, without telling any hook).
    pub fn bind(&self, subscriber: Subscriber, connection: ConnectionId, now_ms: u64) -> Option<ConnectionId> {
        let mut replaced = None;
        {
            let mut bindings = self.by_client.entry(subscriber.client_id.clone()).or_default();
            match bindings.iter_mut().find(|b| b.mountpoint == subscriber.mountpoint) {
                Some(binding) => replaced = Some(std::mem::replace(&mut binding.connection, connection)),
                None => bindings.push(Binding {
                    mountpoint: subscriber.mountpoint.clone(),
                    connection,
                }),
            }
        }
        if let Some(old) = replaced {
            self.by_connection.remove(&old);
            self.unconfirmed.remove(&old);
        }
        self.by_connection.insert(connection, subscriber);
        self.unconfirmed.insert(connection, now_ms);
        replaced
    }

    /// The connection of the session `{mountpoint, client_id}`.
    pub fn find(&self, mountpoint: &str, client_id: &str) -> Option<ConnectionId> {
        let bindings = self.by_client.get(client_id)?;
        bindings
            .iter()
            .find(|b| &*b.mountpoint == mountpoint)
            .map(|b| b.connection)
    }

    /// The broker registered the session: it is no longer at risk of being
    /// dropped by [`Sessions::unconfirmed_since`]. False if unknown.
    pub fn confirm(&self, mountpoint: &str, client_id: &str) -> bool {
        let Some(connection) = self.find(mountpoint, client_id) else {
            return false;
        };
        self.unconfirmed.remove(&connection);
        self.by_connection.contains_key(&connection)
    }

    /// Forgets the session `{mountpoint, client_id}`; returns its connection.
    pub fn unbind(&self, mountpoint: &str, client_id: &str) -> Option<ConnectionId> {
        let connection = {
            let mut bindings = self.by_client.get_mut(client_id)?;
            let at = bindings.iter().position(|b| &*b.mountpoint == mountpoint)?;
            bindings.swap_remove(at).connection
        };
        self.by_client.remove_if(client_id, |_, bindings| bindings.is_empty());
        self.by_connection.remove(&connection);
        self.unconfirmed.remove(&connection);
        Some(connection)
    }

    /// The session a connection belongs to, if it is still bound.
    pub fn subscriber(&self, connection: ConnectionId) -> Option<Subscriber> {
        self.by_connection.get(&connection).map(|s| s.clone())
    }

    /// Sessions accepted before `cutoff_ms` that the broker never confirmed.
    pub fn unconfirmed_since(&self, cutoff_ms: u64) -> Vec<Subscriber> {
        let late: Vec<ConnectionId> = self
            .unconfirmed
            .iter()
            .filter(|entry| *entry.value() < cutoff_ms)
            .map(|entry| *entry.key())
            .collect();
        late.iter().filter_map(|c| self.subscriber(*c)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscriber(mp: &str, id: &str) -> Subscriber {
        Subscriber {
            mountpoint: mp.into(),
            client_id: id.into(),
        }
    }

    #[test]
    fn sessions_follow_bind_takeover_and_unbind() {
        let sessions = Sessions::default();
        let (a, b, c) = (
            sessions.new_connection(),
            sessions.new_connection(),
            sessions.new_connection(),
        );
        assert_ne!(a, b);
        assert_eq!(sessions.bind(subscriber("", "dev&pk"), a, 10), None);
        assert_eq!(sessions.bind(subscriber("tenant", "dev&pk"), c, 10), None);
        assert_eq!(sessions.find("", "dev&pk"), Some(a));
        assert_eq!(sessions.find("tenant", "dev&pk"), Some(c));
        assert_eq!(sessions.unconfirmed_since(11).len(), 2);
        assert!(sessions.confirm("", "dev&pk"));
        assert_eq!(sessions.unconfirmed_since(11), [subscriber("tenant", "dev&pk")]);
        // A second login with the same subscriber id takes the session over.
        assert_eq!(sessions.bind(subscriber("", "dev&pk"), b, 20), Some(a));
        assert_eq!(sessions.subscriber(a), None);
        assert_eq!(sessions.subscriber(b), Some(subscriber("", "dev&pk")));
        assert_eq!(sessions.unbind("", "dev&pk"), Some(b));
        assert_eq!(sessions.unbind("", "dev&pk"), None);
        assert_eq!(sessions.find("tenant", "dev&pk"), Some(c));
        assert!(!sessions.confirm("", "other"));
    }
}
