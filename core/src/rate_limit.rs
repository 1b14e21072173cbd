//! Failed-login limits (PROTOCOL.md §9 R1, DESIGN.md §5), shaped so that
//! nobody can turn them against a device:
//!
//! - per **(subject, address)**: a device or principal that fails from one
//!   address is blocked from that address only;
//! - per **address**: an address that fails for many subjects is blocked
//!   for all of them;
//! - per **subject**, a much higher ceiling: once tripped, the subject is
//!   refused only from addresses that have failed for it themselves, so a
//!   correct login from an address with no failures always gets through,
//!   while an attacker rotating addresses gets one guess per new address.
//!
//! Each key gets a fixed window; once its failures in a window reach the
//! limit it is blocked until the block ends, and each further trip doubles
//! the block (back-off), up to an hour. Time comes in as an argument.

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

    /// Until when `key` is blocked, if it is blocked at `now_ms`.
    pub fn blocked_until(&self, key: &str, now_ms: u64) -> Option<u64> {
        if self.limit == 0 {
            return None;
        }
        self.entries
            .get(key)
            .map(|e| e.blocked_until)
            .filter(|until| *until > now_ms)
    }

    /// Whether `key` is blocked at `now_ms`.
    pub fn is_blocked(&self, key: &str, now_ms: u64) -> bool {
        self.blocked_until(key, now_ms).is_some()
    }

    /// Whether `key` failed in its current window or is blocked.
    pub fn has_failures(&self, key: &str, now_ms: u64) -> bool {
        self.limit > 0
            && self.entries.get(key).is_some_and(|e| {
                e.blocked_until > now_ms || (e.failures > 0 && now_ms.saturating_sub(e.window_start) < self.window_ms)
            })
    }

    /// Records a failed login for `key`; returns the end of the block it
    /// starts, if this failure trips the limit.
    pub fn record_failure(&self, key: &str, now_ms: u64) -> Option<u64> {
        if self.limit == 0 {
            return None;
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
        if entry.failures < self.limit {
            return None;
        }
        let block = self
            .window_ms
            .saturating_mul(1 << entry.trips.min(16))
            .min(MAX_BLOCK_MS);
        entry.blocked_until = now_ms.saturating_add(block);
        entry.trips = entry.trips.saturating_add(1);
        entry.failures = 0;
        entry.window_start = now_ms;
        Some(entry.blocked_until)
    }

    /// Forgets `key` after a successful login.
    pub fn record_success(&self, key: &str) {
        self.entries.remove(key);
    }

    /// Forgets every key `matches` accepts: failures and blocks.
    pub fn forget(&self, matches: impl Fn(&str) -> bool) {
        self.entries.retain(|key, _| !matches(key));
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

/// What a block covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockScope {
    /// Every login from one address.
    Address,
    /// One device or principal, from one address.
    SubjectFromAddress,
    /// One device or principal, from every address that failed for it.
    Subject,
}

impl BlockScope {
    /// A short stable name, for the event table.
    pub fn code(self) -> &'static str {
        match self {
            BlockScope::Address => "address",
            BlockScope::SubjectFromAddress => "device_from_address",
            BlockScope::Subject => "device",
        }
    }
}

impl std::fmt::Display for BlockScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BlockScope::Address => "every login from this address",
            BlockScope::SubjectFromAddress => "this username from this address",
            BlockScope::Subject => "this username from addresses that failed for it",
        })
    }
}

/// A block in force: what it covers and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// What is blocked.
    pub scope: BlockScope,
    /// When the block ends, milliseconds since the UNIX epoch.
    pub until_ms: u64,
}

/// The three limits of a login, as configured in
/// [`crate::engine::EngineConfig`].
#[derive(Debug)]
pub struct LoginLimits {
    subject_from_address: FailureLimiter,
    address: FailureLimiter,
    subject: FailureLimiter,
}

/// The key of a (subject, address) pair; NUL cannot occur in either.
fn pair(subject: &str, address: Option<&str>) -> String {
    let address = address.unwrap_or("");
    let mut key = String::with_capacity(subject.len() + 1 + address.len());
    key.push_str(subject);
    key.push('\0');
    key.push_str(address);
    key
}

impl LoginLimits {
    /// Limits of `per_pair` failures per subject and address, `per_address`
    /// per address, and a ceiling of `per_subject` per subject, each per
    /// `window_ms`; 0 turns a limit off.
    pub fn new(per_pair: u32, per_address: u32, per_subject: u32, window_ms: u64) -> Self {
        LoginLimits {
            subject_from_address: FailureLimiter::new(per_pair, window_ms),
            address: FailureLimiter::new(per_address, window_ms),
            subject: FailureLimiter::new(per_subject, window_ms),
        }
    }

    /// The block that refuses every login from `address`, if any.
    pub fn address_block(&self, address: Option<&str>, now_ms: u64) -> Option<Block> {
        let until_ms = self.address.blocked_until(address?, now_ms)?;
        Some(Block {
            scope: BlockScope::Address,
            until_ms,
        })
    }

    /// The block that refuses `subject` from `address`, if any. A subject
    /// over its ceiling is refused only where its own pair has failures.
    pub fn subject_block(&self, subject: &str, address: Option<&str>, now_ms: u64) -> Option<Block> {
        let pair = pair(subject, address);
        if let Some(until_ms) = self.subject_from_address.blocked_until(&pair, now_ms) {
            return Some(Block {
                scope: BlockScope::SubjectFromAddress,
                until_ms,
            });
        }
        let until_ms = self.subject.blocked_until(subject, now_ms)?;
        self.subject_from_address.has_failures(&pair, now_ms).then_some(Block {
            scope: BlockScope::Subject,
            until_ms,
        })
    }

    /// Records a failed login; returns the blocks it starts (to be logged).
    pub fn record_failure(&self, subject: Option<&str>, address: Option<&str>, now_ms: u64) -> Vec<Block> {
        let mut started = Vec::new();
        let mut note = |scope, until: Option<u64>| {
            if let Some(until_ms) = until {
                started.push(Block { scope, until_ms });
            }
        };
        if let Some(subject) = subject {
            note(
                BlockScope::SubjectFromAddress,
                self.subject_from_address
                    .record_failure(&pair(subject, address), now_ms),
            );
            note(BlockScope::Subject, self.subject.record_failure(subject, now_ms));
        }
        if let Some(address) = address {
            note(BlockScope::Address, self.address.record_failure(address, now_ms));
        }
        started
    }

    /// Forgets the failures of `subject` from `address` after a correct
    /// login. The subject's ceiling and the address's count stay: a correct
    /// login does not buy an attacker elsewhere more guesses.
    pub fn record_success(&self, subject: &str, address: Option<&str>) {
        self.subject_from_address.record_success(&pair(subject, address));
    }

    /// Lifts every block of `subject` and forgets its failures, from every
    /// address (an operator's `device unblock`). Blocks of whole addresses
    /// stay: they are about the address, not the device.
    pub fn unblock_subject(&self, subject: &str) {
        self.subject.forget(|key| key == subject);
        self.subject_from_address
            .forget(|key| key.split_once('\0').is_some_and(|(s, _)| s == subject));
    }

    /// Drops entries no longer needed.
    pub fn prune(&self, now_ms: u64) {
        self.subject_from_address.prune(now_ms);
        self.address.prune(now_ms);
        self.subject.prune(now_ms);
    }
}

/// A budget of expensive operations per second (a token bucket holding at
/// most one second's worth): how many slow password hashes the broker
/// thread may run, so no flood of logins can stall it.
#[derive(Debug)]
pub struct Budget {
    per_sec: u32,
    state: std::sync::Mutex<(f64, u64)>,
}

impl Budget {
    /// `per_sec` operations per second; 0 allows none.
    pub fn new(per_sec: u32) -> Self {
        Budget {
            per_sec,
            state: std::sync::Mutex::new((f64::from(per_sec), 0)),
        }
    }

    /// Takes one operation from the budget at `now_ms`, if one is left.
    pub fn take(&self, now_ms: u64) -> bool {
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        let (tokens, last) = &mut *state;
        let rate = f64::from(self.per_sec);
        let elapsed = now_ms.saturating_sub(*last) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * rate).min(rate);
        *last = now_ms.max(*last);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_limit_and_backs_off() {
        let l = FailureLimiter::new(3, 1000);
        for t in 0..2 {
            assert_eq!(l.record_failure("k", t), None);
        }
        assert!(!l.is_blocked("k", 2));
        assert_eq!(l.record_failure("k", 2), Some(1002));
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
        assert!(l.has_failures("k", 5001));
        assert!(!l.has_failures("k", 6001));
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

    #[test]
    fn a_budget_refills_at_its_rate_and_never_beyond_a_second() {
        let b = Budget::new(4);
        assert_eq!((0..10).filter(|_| b.take(1_000)).count(), 4);
        assert!(!b.take(1_100));
        assert!(b.take(1_250), "a quarter second brings one back");
        assert_eq!(
            (0..10).filter(|_| b.take(60_000)).count(),
            4,
            "never more than a second's worth"
        );
        assert!(!Budget::new(0).take(5_000));
    }

    #[test]
    fn failures_from_one_address_never_block_another() {
        let l = LoginLimits::new(3, 100, 50, 60_000);
        for t in 0..10 {
            l.record_failure(Some("dev&pk"), Some("10.0.0.66"), t);
        }
        let block = l.subject_block("dev&pk", Some("10.0.0.66"), 11).unwrap();
        assert_eq!(block.scope, BlockScope::SubjectFromAddress);
        assert_eq!(l.subject_block("dev&pk", Some("10.0.0.1"), 11), None);
    }

    #[test]
    fn the_ceiling_spares_addresses_without_failures() {
        let l = LoginLimits::new(3, 100, 5, 60_000);
        for i in 0..5 {
            l.record_failure(Some("dev&pk"), Some(&format!("10.0.1.{i}")), i);
        }
        // Over the ceiling: the addresses that failed are refused at once ...
        let block = l.subject_block("dev&pk", Some("10.0.1.0"), 10).unwrap();
        assert_eq!(block.scope, BlockScope::Subject);
        // ... a fresh address gets its one guess, then is refused too ...
        assert_eq!(l.subject_block("dev&pk", Some("10.0.2.1"), 10), None);
        l.record_failure(Some("dev&pk"), Some("10.0.2.1"), 11);
        assert!(l.subject_block("dev&pk", Some("10.0.2.1"), 12).is_some());
        // ... and the device's own address, which never failed, is served.
        assert_eq!(l.subject_block("dev&pk", Some("192.0.2.7"), 12), None);
    }

    #[test]
    fn an_address_failing_for_many_subjects_is_blocked_for_all() {
        let l = LoginLimits::new(3, 4, 50, 60_000);
        let mut started = Vec::new();
        for i in 0..4 {
            started.extend(l.record_failure(Some(&format!("d{i}&pk")), Some("10.9.9.9"), i));
        }
        assert_eq!(started.len(), 1);
        assert_eq!(started[0].scope, BlockScope::Address);
        assert!(l.address_block(Some("10.9.9.9"), 5).is_some());
        assert!(l.address_block(Some("10.9.9.8"), 5).is_none());
        assert!(l.address_block(None, 5).is_none());
    }

    #[test]
    fn a_correct_login_clears_only_its_own_pair() {
        let l = LoginLimits::new(3, 100, 4, 60_000);
        for t in 0..2 {
            l.record_failure(Some("dev&pk"), Some("10.0.0.1"), t);
        }
        l.record_success("dev&pk", Some("10.0.0.1"));
        l.record_failure(Some("dev&pk"), Some("10.0.0.1"), 3);
        assert_eq!(l.subject_block("dev&pk", Some("10.0.0.1"), 4), None);
        l.record_failure(Some("dev&pk"), Some("10.0.0.2"), 5);
        assert!(
            l.subject_block("dev&pk", Some("10.0.0.2"), 6).is_some(),
            "the ceiling counted every failure, before and after the success"
        );
    }
}
