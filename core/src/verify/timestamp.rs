//! The timestamp parameter of a signed login (PROTOCOL.md §3.4).

use crate::registry::TimestampPolicy;

/// Whether `timestamp` passes `policy` at `now_ms` (PROTOCOL.md §3.4).
pub fn timestamp_fresh(policy: TimestampPolicy, timestamp: Option<&str>, now_ms: u64) -> bool {
    let TimestampPolicy::Enforce { window_secs } = policy else {
        return true;
    };
    let Some(ts_ms) = timestamp.and_then(parse_timestamp_ms) else {
        return false;
    };
    now_ms.abs_diff(ts_ms) <= u64::from(window_secs) * 1000
}

/// The timestamp in milliseconds: `^[0-9]{1,16}(\.[0-9]{1,9})?$`; 12 or more integer digits mean ms.
fn parse_timestamp_ms(ts: &str) -> Option<u64> {
    let (int, frac) = match ts.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (ts, None),
    };
    let digits = |s: &str, max: usize| !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int, 16) || !frac.is_none_or(|f| digits(f, 9)) {
        return None;
    }
    let value: u64 = int.parse().ok()?;
    if int.len() >= 12 {
        return Some(value);
    }
    let millis = frac.map_or(0, |f| {
        f.bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'))
    });
    value.checked_mul(1000)?.checked_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("1795320666.3600545"), Some(1_795_320_666_360));
        assert_eq!(parse_timestamp_ms("1795320550912.803"), Some(1_795_320_550_912));
        for bad in ["", "abc", "1.", ".5", "1e9", "12345678901234567", "1.1234567890"] {
            assert_eq!(parse_timestamp_ms(bad), None, "{bad}");
        }
        let enforce = TimestampPolicy::Enforce { window_secs: 900 };
        assert!(timestamp_fresh(enforce, Some("1700000000"), 1_700_000_899_000));
        assert!(!timestamp_fresh(enforce, Some("1700000000"), 1_700_000_901_000));
        assert!(!timestamp_fresh(enforce, None, 0));
        assert!(timestamp_fresh(TimestampPolicy::Off, Some("2524608000000"), 0));
    }
}
