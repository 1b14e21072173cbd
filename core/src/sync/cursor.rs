//! Where the change feed has been read up to, and the ids below that not
//! seen yet. Ids are handed out when a row is inserted, not when its
//! transaction commits: on Postgres a CLI change N can commit after a
//! broker's own change N+1, so "everything after the last id read" would
//! skip N for good (found by the soak, issue 10 item 8). Missing ids below
//! the cursor are kept as gaps and looked for again until they appear or
//! are old enough to be a rolled-back transaction's (the periodic
//! reconciliation covers anything else).

use std::collections::BTreeMap;

/// How long a missing id is looked for.
pub const GAP_TIMEOUT_MS: u64 = 60_000;
/// The widest jump recorded as gaps; a wider one (a bulk change, a
/// database restored from elsewhere) is left to reconciliation.
pub const MAX_GAPS: i64 = 10_000;

/// The change feed's position.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The highest id read.
    pub last: i64,
    /// Ids below `last` not read yet, with when they were first missed (ms).
    gaps: BTreeMap<i64, u64>,
}

impl Cursor {
    /// A cursor at `last` after a full load, given the ids present in the
    /// window just below it when `last` was read: the absent ones are gaps.
    pub fn after_load(last: i64, present: &[i64], now_ms: u64) -> Self {
        let mut cursor = Cursor {
            last,
            gaps: BTreeMap::new(),
        };
        let start = present.iter().copied().min().unwrap_or(last + 1);
        for id in start..last {
            if present.binary_search(&id).is_err() {
                cursor.gaps.insert(id, now_ms);
            }
        }
        cursor
    }

    /// Moves past `id` (read in id order), recording the ids skipped.
    pub fn advance(&mut self, id: i64, now_ms: u64) {
        if id <= self.last {
            return;
        }
        if id - self.last - 1 <= MAX_GAPS {
            for missing in self.last + 1..id {
                self.gaps.insert(missing, now_ms);
            }
        } else {
            tracing::warn!(
                from = self.last,
                to = id,
                "the change feed jumped; reconciliation covers the ids between"
            );
        }
        self.last = id;
    }

    /// Forgets gaps missed longer than [`GAP_TIMEOUT_MS`], and returns the
    /// id range the remaining ones lie in, to read again.
    pub fn gaps_to_read(&mut self, now_ms: u64) -> Option<(i64, i64)> {
        self.gaps
            .retain(|_, since| now_ms.saturating_sub(*since) < GAP_TIMEOUT_MS);
        Some((*self.gaps.keys().next()?, *self.gaps.keys().next_back()?))
    }

    /// Whether `id` was a gap (it is not any more).
    pub fn fill(&mut self, id: i64) -> bool {
        self.gaps.remove(&id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_committed_late_is_read_when_it_appears() {
        let mut cursor = Cursor::after_load(10, &[7, 8, 10], 0);
        assert_eq!(cursor.gaps_to_read(0), Some((9, 9)));
        cursor.advance(13, 0); // 11 and 12 not visible yet
        assert_eq!(cursor.gaps_to_read(0), Some((9, 12)));
        assert!(cursor.fill(11));
        assert!(!cursor.fill(13));
        assert_eq!(cursor.gaps_to_read(1_000), Some((9, 12)));
        // A rolled-back id is given up after the timeout.
        assert_eq!(cursor.gaps_to_read(GAP_TIMEOUT_MS), None);
        cursor.advance(13 + MAX_GAPS + 5, GAP_TIMEOUT_MS);
        assert_eq!(
            cursor.gaps_to_read(GAP_TIMEOUT_MS),
            None,
            "a huge jump is left to reconciliation"
        );
    }
}
