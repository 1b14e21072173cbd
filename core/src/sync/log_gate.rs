//! How often a lasting failure of the database is logged: the first time,
//! then at gaps doubling from one second to a minute, so an outage of an
//! hour logs about 60 lines, not one per attempt or poll.

use std::time::{Duration, Instant};

/// The longest time between two lines about one failure.
const MAX_GAP: Duration = Duration::from_secs(60);

/// Decides which occurrences of one lasting failure are logged.
#[derive(Debug, Default)]
pub(super) struct LogGate {
    logged_at: Option<Instant>,
    gap: Duration,
}

impl LogGate {
    /// Whether the occurrence at `now` is logged (and, if so, recorded).
    pub(super) fn due(&mut self, now: Instant) -> bool {
        let due = self.logged_at.is_none_or(|at| now.duration_since(at) >= self.gap);
        if due {
            self.gap = if self.logged_at.is_none() {
                Duration::from_secs(1)
            } else {
                (self.gap * 2).min(MAX_GAP)
            };
            self.logged_at = Some(now);
        }
        due
    }

    /// Whether a failure was logged; forgets it (the failure ended).
    pub(super) fn reset(&mut self) -> bool {
        self.gap = Duration::ZERO;
        self.logged_at.take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_double_from_a_second_to_a_minute() {
        let start = Instant::now();
        let mut gate = LogGate::default();
        let logged: Vec<u64> = (0..4000u64)
            .filter(|s| gate.due(start + Duration::from_millis(s * 500)))
            .map(|s| s / 2)
            .collect();
        assert_eq!(&logged[..8], [0, 1, 3, 7, 15, 31, 63, 123], "seconds of each line");
        assert!(logged.windows(2).all(|w| w[1] - w[0] <= 60));
        assert!(logged.len() < 40, "{} lines in 2000 s", logged.len());
        assert!(gate.reset());
        assert!(
            gate.due(start + Duration::from_secs(2001)),
            "a new failure logs at once"
        );
    }
}
