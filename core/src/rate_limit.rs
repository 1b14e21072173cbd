//! Failed-login limits per device and per source address (PROTOCOL.md §9 R1).
//!
//! Each key gets a fixed window; once the failures in a window reach the
//! limit, the key is blocked until the window ends, and each further trip
//! doubles the block (back-off), up to an hour. Time comes in as an
//! argument.

use dashmap::DashMap;

const MAX_BLOCK_MS: u64 = 3_600_000;

/// Failure counting for one kind of key.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: u32,
    window_ms: u64,
    entries: DashMap<Box<str>, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    window_start: u64,
    failures: u32,
    blocked_until: u64,
    trips: u32,
}

impl FailureLimiter {
    /// A limiter allowing `limit` failures per `window_ms`; 0 disables it.
    pub fn new(limit: u32, window_ms: u64) -> Self {
        FailureLimiter {
            limit,
            window_ms: window_ms.max(1),
            entries: DashMap::new(),
        }
    }

    /// Whether `key` is blocked at `now_ms`.
    pub fn is_blocked(&self, key: &str, now_ms: u64) -> bool {
        self.limit > 0 && self.entries.get(key).is_some_and(|e| e.blocked_until > now_ms)
    }

    /// Records a failed login for `key`.
    pub fn record_failure(&self, key: &str, now_ms: u64) {
        if self.limit == 0 {
            return;
        }
        let mut entry = self.entries.entry(key.into()).or_insert(Entry {
            window_start: now_ms,
            failures: 0,
            blocked_until: 0,
            trips: 0,
        });
        if now_ms.saturating_sub(entry.window_start) >= self.window_ms {
            entry.window_start = now_ms;
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= self.limit {
            let block = self
                .window_ms
                .saturating_mul(1 << entry.trips.min(16))
                .min(MAX_BLOCK_MS);
            entry.blocked_until = now_ms.saturating_add(block);
            entry.trips = entry.trips.saturating_add(1);
            entry.failures = 0;
            entry.window_start = now_ms;
        }
    }

    /// Forgets `key` after a successful login.
    pub fn record_success(&self, key: &str) {
        self.entries.remove(key);
    }

    /// Drops entries that are neither blocked nor in a live window, so the
    /// map holds only keys that failed recently.
    pub fn prune(&self, now_ms: u64) {
        let idle_after = self.window_ms.saturating_mul(4).max(MAX_BLOCK_MS);
        self.entries
            .retain(|_, e| e.blocked_until > now_ms || now_ms.saturating_sub(e.window_start) < idle_after);
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_backs_off() {
        let l = FailureLimiter::new(3, 1000);
        for t in 0..2 {
            l.record_failure("k", t);
        }
        assert!(!l.is_blocked("k", 2));
        l.record_failure("k", 2);
        assert!(l.is_blocked("k", 3));
        assert!(l.is_blocked("k", 1001));
        assert!(!l.is_blocked("k", 1002));
        for t in 0..3 {
            l.record_failure("k", 1100 + t);
        }
        assert!(l.is_blocked("k", 1102 + 1999), "second trip blocks twice as long");
        assert!(!l.is_blocked("k", 1102 + 2001));
        assert!(!l.is_blocked("other", 0));
    }

    #[test]
    fn failures_in_old_windows_do_not_add_up() {
        let l = FailureLimiter::new(3, 1000);
        l.record_failure("k", 0);
        l.record_failure("k", 1);
        l.record_failure("k", 5000);
        assert!(!l.is_blocked("k", 5001));
    }

    #[test]
    fn success_resets_and_prune_forgets() {
        let l = FailureLimiter::new(2, 1000);
        l.record_failure("k", 0);
        l.record_success("k");
        l.record_failure("k", 1);
        assert!(!l.is_blocked("k", 2));
        l.prune(10_000_000);
        assert!(l.is_empty());
        assert!(!FailureLimiter::new(0, 1).is_blocked("k", 0));
    }
}
