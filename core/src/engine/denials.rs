//! Denied publishes and subscriptions in the log (issue: operators must
//! see them): one warning line each with who, what and the rule that
//! refused it, at most [`DENIALS_LOGGED_PER_WINDOW`] per connection per
//! [`DENIAL_WINDOW_MS`], so a misbehaving device cannot flood the log; a
//! summary line counts the ones left out.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::connection::Connection;
use super::login::{LOG_FIELD_MAX, shorten};

/// Denials logged per connection per window.
pub const DENIALS_LOGGED_PER_WINDOW: u32 = 10;
/// The window of [`DENIALS_LOGGED_PER_WINDOW`].
pub const DENIAL_WINDOW_MS: u64 = 60_000;

/// Why a publish or subscription was denied: the rule family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DenialReason {
    /// The topic or filter reaches beyond the subject's topic families.
    OutsideFamilies,
    /// The product does not allow devices retained publishes.
    RetainNotAllowed,
    /// The product does not allow devices `$share/` subscriptions.
    SharedNotAllowed,
    /// A `$share/` filter without a group or filter.
    MalformedShared,
}

impl DenialReason {
    fn text(self) -> &'static str {
        match self {
            DenialReason::OutsideFamilies => "outside its topic families",
            DenialReason::RetainNotAllowed => "retained publishes are off for the product (allow_retain)",
            DenialReason::SharedNotAllowed => "shared subscriptions are off for the product (shared_subscriptions)",
            DenialReason::MalformedShared => "malformed $share/ filter",
        }
    }
}

/// A connection's count of denials in the current window.
#[derive(Debug, Default)]
pub(super) struct DenialLog {
    window_start_ms: AtomicU64,
    in_window: AtomicU32,
}

impl Connection {
    /// Logs a denied `what` (`publish`, `subscribe`) of `topic`, within
    /// the connection's budget.
    pub(super) fn log_denial(&self, what: &str, topic: &str, reason: DenialReason, now_ms: u64) {
        let log = &self.denials;
        let start = log.window_start_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(start) >= DENIAL_WINDOW_MS
            && log
                .window_start_ms
                .compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let previous = log.in_window.swap(0, Ordering::Relaxed);
            if previous > DENIALS_LOGGED_PER_WINDOW {
                tracing::warn!(
                    subject = self.subject_name(),
                    client_id = shorten(&self.client_id, LOG_FIELD_MAX).as_ref(),
                    "{} more denied publishes or subscriptions were not logged in the last {} s",
                    previous - DENIALS_LOGGED_PER_WINDOW,
                    DENIAL_WINDOW_MS / 1000
                );
            }
        }
        if log.in_window.fetch_add(1, Ordering::Relaxed) < DENIALS_LOGGED_PER_WINDOW {
            tracing::warn!(
                subject = self.subject_name(),
                client_id = shorten(&self.client_id, LOG_FIELD_MAX).as_ref(),
                topic = shorten(topic, LOG_FIELD_MAX).as_ref(),
                "{what} denied: {}",
                reason.text()
            );
        }
    }

    fn subject_name(&self) -> &str {
        self.device_key().or(self.principal_name()).unwrap_or("-")
    }
}
