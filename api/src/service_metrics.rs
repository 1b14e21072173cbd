//! The service's own counters for `GET /metrics` (issue 12 item 2):
//! requests by route template and status, and the time they took. Route
//! templates (`/v1/{product_key}/agent/devices`), never concrete paths, so
//! the label set stays bounded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use devicegate::metrics::Exposition;

/// Requests served, by (route, status): count and total seconds.
#[derive(Debug, Default)]
pub struct ServiceMetrics {
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
}

impl ServiceMetrics {
    /// Counts one request to `route` answered with `status` in `seconds`.
    pub fn request(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            let entry = requests.entry((route.to_owned(), status)).or_default();
            entry.0 += 1;
            entry.1 += seconds;
        }
    }

    /// Writes the request counters.
    pub fn render(&self, out: &mut Exposition) {
        let Ok(requests) = self.requests.lock() else {
            return;
        };
        out.family(
            "devicegate_http_requests_total",
            "counter",
            "Requests served, by route and status.",
        );
        for ((route, status), (count, _)) in requests.iter() {
            out.sample(
                "devicegate_http_requests_total",
                &[("route", route), ("status", &status.to_string())],
                count,
            );
        }
        out.family(
            "devicegate_http_request_seconds_sum",
            "counter",
            "Time spent answering requests, by route and status.",
        );
        for ((route, status), (_, seconds)) in requests.iter() {
            out.sample(
                "devicegate_http_request_seconds_sum",
                &[("route", route), ("status", &status.to_string())],
                seconds,
            );
        }
    }
}
