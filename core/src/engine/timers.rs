//! Deadlines per connection (idle window, activation retries, session
//! limits) in a min-heap, so a tick only touches what is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Mutex;

use super::ConnectionId;

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    /// Check whether the connection has been idle past its product's window.
    Idle,
    /// Push the activation secret again if it is still unconfirmed.
    ActivationRetry,
    /// Close the connection (activation or registration session over).
    Close,
}

/// A deadline: when, for which connection (and serial), for what.
type Deadline = Reverse<(u64, ConnectionId, u64, TimerKind)>;

/// The timer heap. Entries carry the connection's serial, so a deadline of
/// an ended connection never fires for a later one with the same id.
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: Mutex<BinaryHeap<Deadline>>,
}

impl Timers {
    pub(super) fn schedule(&self, at_ms: u64, connection: ConnectionId, serial: u64, kind: TimerKind) {
        if let Ok(mut heap) = self.heap.lock() {
            heap.push(Reverse((at_ms, connection, serial, kind)));
        }
    }

    /// Removes and returns every deadline at or before `now_ms`, at most `max`.
    pub(super) fn due(&self, now_ms: u64, max: usize) -> Vec<(ConnectionId, u64, TimerKind)> {
        let mut out = Vec::new();
        let Ok(mut heap) = self.heap.lock() else {
            return out;
        };
        while out.len() < max {
            match heap.peek() {
                Some(Reverse((at, ..))) if *at <= now_ms => {}
                _ => break,
            }
            if let Some(Reverse((_, connection, serial, kind))) = heap.pop() {
                out.push((connection, serial, kind));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_due_deadlines_in_order() {
        let t = Timers::default();
        t.schedule(30, ConnectionId(1), 1, TimerKind::Close);
        t.schedule(10, ConnectionId(2), 2, TimerKind::Idle);
        t.schedule(20, ConnectionId(3), 3, TimerKind::ActivationRetry);
        assert_eq!(t.due(5, 10), vec![]);
        assert_eq!(
            t.due(25, 10),
            vec![
                (ConnectionId(2), 2, TimerKind::Idle),
                (ConnectionId(3), 3, TimerKind::ActivationRetry)
            ]
        );
        assert_eq!(t.due(100, 0), vec![]);
        assert_eq!(t.due(100, 10).len(), 1);
    }
}
