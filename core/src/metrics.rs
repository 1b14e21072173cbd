//! Counters an operator alerts on (issue 12 item 2), in the Prometheus text
//! exposition format: logins accepted and refused by reason, denials by
//! kind, kicks by reason, plus gauges read when scraped (connections by
//! product, registry size, the write queue; the background task adds the
//! database and the change feed).
//!
//! Counting is one relaxed atomic add on the hot path (a map lookup by a
//! static name for the labelled ones); rendering happens on the scraper's
//! thread, never the broker's.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

/// What was denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// A PUBLISH.
    Publish,
    /// A SUBSCRIBE filter.
    Subscribe,
    /// A message the subject may not receive.
    Delivery,
}

/// The engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    logins_accepted: AtomicU64,
    logins_refused: DashMap<&'static str, AtomicU64>,
    denials: [AtomicU64; 3],
    kicks: DashMap<&'static str, AtomicU64>,
}

fn bump(map: &DashMap<&'static str, AtomicU64>, label: &'static str) {
    if let Some(counter) = map.get(label) {
        counter.fetch_add(1, Ordering::Relaxed);
        return;
    }
    map.entry(label).or_default().fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// A login was accepted.
    pub fn login_accepted(&self) {
        self.logins_accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// A login was refused with the reason code `reason`.
    pub fn login_refused(&self, reason: &'static str) {
        bump(&self.logins_refused, reason);
    }

    /// A publish, subscription or delivery was denied.
    pub fn denied(&self, kind: DenialKind) {
        let index = match kind {
            DenialKind::Publish => 0,
            DenialKind::Subscribe => 1,
            DenialKind::Delivery => 2,
        };
        if let Some(counter) = self.denials.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A session was closed by devicegate for `reason`.
    pub fn kicked(&self, reason: &'static str) {
        bump(&self.kicks, reason);
    }

    /// Writes the counters to `out`.
    pub fn render(&self, out: &mut Exposition) {
        out.family("devicegate_logins_accepted_total", "counter", "Logins accepted.");
        out.sample(
            "devicegate_logins_accepted_total",
            &[],
            self.logins_accepted.load(Ordering::Relaxed),
        );
        out.family(
            "devicegate_logins_refused_total",
            "counter",
            "Logins refused, by reason.",
        );
        for entry in sorted(&self.logins_refused) {
            out.sample("devicegate_logins_refused_total", &[("reason", entry.0)], entry.1);
        }
        out.family(
            "devicegate_denials_total",
            "counter",
            "Publishes, subscriptions and deliveries denied, by kind.",
        );
        for (kind, counter) in ["publish", "subscribe", "delivery"].iter().zip(&self.denials) {
            out.sample(
                "devicegate_denials_total",
                &[("kind", kind)],
                counter.load(Ordering::Relaxed),
            );
        }
        out.family(
            "devicegate_kicks_total",
            "counter",
            "Sessions devicegate closed, by reason.",
        );
        for entry in sorted(&self.kicks) {
            out.sample("devicegate_kicks_total", &[("reason", entry.0)], entry.1);
        }
    }
}

fn sorted(map: &DashMap<&'static str, AtomicU64>) -> Vec<(&'static str, u64)> {
    let mut entries: Vec<(&'static str, u64)> = map
        .iter()
        .map(|e| (*e.key(), e.value().load(Ordering::Relaxed)))
        .collect();
    entries.sort_unstable();
    entries
}

/// A Prometheus text exposition being written: `# HELP`/`# TYPE` once per
/// family, then samples with escaped label values.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Exposition::default()
    }

    /// Starts the family `name` of `kind` (`counter`, `gauge`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of `name` with `labels`.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let escaped = val.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                let _ = write!(self.text, "{key}=\"{escaped}\"");
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    /// The text, ready to serve as `text/plain; version=0.0.4`.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Metrics::default();
        m.login_accepted();
        m.login_refused("bad_signature");
        m.login_refused("bad_signature");
        m.denied(DenialKind::Subscribe);
        m.kicked("device_changed");
        let mut out = Exposition::new();
        m.render(&mut out);
        out.sample("x", &[("product", "a\"b")], 1);
        let text = out.finish();
        assert!(text.contains("devicegate_logins_accepted_total 1\n"), "{text}");
        assert!(
            text.contains("devicegate_logins_refused_total{reason=\"bad_signature\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("devicegate_denials_total{kind=\"subscribe\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("devicegate_kicks_total{reason=\"device_changed\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE devicegate_kicks_total counter\n"), "{text}");
        assert!(text.contains("x{product=\"a\\\"b\"} 1\n"), "{text}");
    }
}
