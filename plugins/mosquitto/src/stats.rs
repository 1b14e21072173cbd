//! Optional callback timing (`plugin_opt_stats_interval_secs`): how long
//! each callback held the broker's thread, logged as percentiles once per
//! interval. This is how DESIGN.md §6's "broker thread stall" is measured,
//! and how an operator checks that the plugin never stalls the broker.
//! Off by default; then the cost is one atomic load per callback.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The report interval in milliseconds; 0 = timing off.
static INTERVAL_MS: AtomicU64 = AtomicU64::new(0);
/// Whether each report is logged (`plugin_opt_stats_interval_secs`), as
/// opposed to kept for the metrics endpoint only.
static LOG_REPORTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The last report's wall-clock figures, ns: p50, p99, p99.9, max, calls.
static LAST: std::sync::Mutex<Option<[u64; 5]>> = std::sync::Mutex::new(None);

/// Sub-buckets per power of two: 1/8 relative precision.
const SUB: usize = 8;
const BUCKETS: usize = 64 * SUB;

/// Durations in nanoseconds, log-linear buckets.
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
    /// The callback that took `max_ns`.
    max_name: &'static str,
    since: Instant,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max_ns: 0,
            max_name: "-",
            since: Instant::now(),
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < SUB as u64 {
            return ns as usize;
        }
        let power = 63 - ns.leading_zeros() as usize;
        let fraction = ((ns >> (power - 3)) & (SUB as u64 - 1)) as usize;
        (power - 2) * SUB + fraction
    }

    /// The smallest duration that bucket `index` holds.
    fn floor(index: usize) -> u64 {
        if index < SUB {
            return index as u64;
        }
        let (power, fraction) = (index / SUB + 2, (index % SUB) as u64);
        (1u64 << power) + (fraction << (power - 3))
    }

    fn record(&mut self, name: &'static str, ns: u64) {
        if let Some(c) = self.counts.get_mut(Self::bucket(ns)) {
            *c += 1;
        }
        self.total += 1;
        if ns > self.max_ns {
            self.max_ns = ns;
            self.max_name = name;
        }
    }

    /// The upper edge of the bucket holding quantile `q` (an upper bound, within 1/8).
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((self.total as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank.max(1) {
                return Self::floor(i + 1).min(self.max_ns);
            }
        }
        self.max_ns
    }
}

thread_local! {
    /// Wall-clock time per callback: what the broker's other clients wait.
    static HISTOGRAM: RefCell<Histogram> = RefCell::new(Histogram::new());
    /// On-CPU time per callback: the plugin's own work, without the time
    /// the thread was preempted (which wall-clock figures include).
    static CPU: RefCell<Histogram> = RefCell::new(Histogram::new());
}

/// This thread's CPU time in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec).unwrap_or(0).saturating_mul(1_000_000_000) + u64::try_from(ts.tv_nsec).unwrap_or(0)
}

/// Turns timing on with a report every `secs` seconds (0 turns it off).
pub fn enable(secs: u64) {
    INTERVAL_MS.store(secs.saturating_mul(1000), Ordering::Relaxed);
    LOG_REPORTS.store(secs > 0, Ordering::Relaxed);
}

/// Turns timing on for the metrics endpoint: figures every 10 s, not
/// logged unless `plugin_opt_stats_interval_secs` asks for that.
pub fn enable_for_metrics() {
    let _ = INTERVAL_MS.compare_exchange(0, 10_000, Ordering::Relaxed, Ordering::Relaxed);
}

/// Writes the last report's callback times as gauges (seconds).
pub fn render(out: &mut devicegate::metrics::Exposition) {
    let Some([p50, p99, p999, max, calls]) = LAST.lock().ok().and_then(|l| *l) else {
        return;
    };
    out.family(
        "devicegate_callback_seconds",
        "gauge",
        "How long plugin callbacks held the broker thread over the last interval (wall clock).",
    );
    for (quantile, ns) in [("0.5", p50), ("0.99", p99), ("0.999", p999), ("1", max)] {
        out.sample(
            "devicegate_callback_seconds",
            &[("quantile", quantile)],
            ns as f64 / 1e9,
        );
    }
    out.family(
        "devicegate_callback_calls",
        "gauge",
        "Plugin callbacks in the last interval.",
    );
    out.sample("devicegate_callback_calls", &[], calls);
}

/// Runs the callback `name`'s `body`, recording its duration when timing is on.
pub fn timed<R>(name: &'static str, body: impl FnOnce() -> R) -> R {
    if INTERVAL_MS.load(Ordering::Relaxed) == 0 {
        return body();
    }
    let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
    let result = body();
    let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let cpu_ns = thread_cpu_ns().saturating_sub(cpu_start);
    HISTOGRAM.with(|h| h.borrow_mut().record(name, ns));
    CPU.with(|h| h.borrow_mut().record(name, cpu_ns));
    result
}

fn micros(ns: u64) -> String {
    format!("{:.1} µs", ns as f64 / 1000.0)
}

/// Logs and resets the figures once the interval has passed. Broker thread.
pub fn report_if_due() {
    let interval = INTERVAL_MS.load(Ordering::Relaxed);
    if interval == 0 {
        return;
    }
    HISTOGRAM.with(|h| {
        let mut h = h.borrow_mut();
        if h.since.elapsed().as_millis() < u128::from(interval) {
            return;
        }
        let (cpu_p999, cpu_max, cpu_max_name) = CPU.with(|c| {
            let mut c = c.borrow_mut();
            let figures = (c.quantile(0.999), c.max_ns, c.max_name);
            *c = Histogram::new();
            figures
        });
        if let Ok(mut last) = LAST.lock() {
            *last = Some([h.quantile(0.5), h.quantile(0.99), h.quantile(0.999), h.max_ns, h.total]);
        }
        if !LOG_REPORTS.load(Ordering::Relaxed) {
            *h = Histogram::new();
            return;
        }
        tracing::info!(
            "callback time over the last {:.1} s: {} calls, p50 {}, p99 {}, p99.9 {}, max {} in {} (on CPU: p99.9 {}, max {} in {})",
            h.since.elapsed().as_secs_f64(),
            h.total,
            micros(h.quantile(0.5)),
            micros(h.quantile(0.99)),
            micros(h.quantile(0.999)),
            micros(h.max_ns),
            h.max_name,
            micros(cpu_p999),
            micros(cpu_max),
            cpu_max_name
        );
        *h = Histogram::new();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_quantiles_bound_the_values() {
        let mut last = 0;
        for ns in [0, 1, 7, 8, 9, 15, 16, 100, 1_000, 999_999, 1_000_000, u64::MAX / 2] {
            let b = Histogram::bucket(ns);
            assert!(b >= last, "{ns}");
            assert!(
                Histogram::floor(b) <= ns && ns < Histogram::floor(b + 1).max(ns + 1),
                "{ns}"
            );
            last = b;
        }
        let mut h = Histogram::new();
        for ns in 1..=1000u64 {
            h.record("test", ns * 1000);
        }
        let p50 = h.quantile(0.5);
        assert!((500_000..=570_000).contains(&p50), "{p50}");
        assert!(h.quantile(0.999) >= 999_000);
        assert_eq!(h.quantile(1.0), 1_000_000);
    }
}
