//! `GET /metrics` counts the requests the test made, by route template
//! and status, says the database is up and counts devices by state.

use devicegate_test_support::sqlite;
use serde_json::json;

use crate::harness::{Service, cli};

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let db = sqlite();
    cli(&db.url, &["product", "create", "P1metric"]);
    cli(&db.url, &["device", "create", "P1metric", "dev1"]);
    cli(&db.url, &["device", "create", "P1metric", "dev2"]);
    cli(&db.url, &["device", "disable", "P1metric", "dev2"]);
    let service = Service::start(&db.url, &[]).await;
    for _ in 0..3 {
        service.get("/healthz", None).await.ok(200);
    }
    let refused = json!({"deviceAuthParameters": {"accessKey": "a", "secretKey": "b"}});
    for _ in 0..2 {
        let status = service.post("/authenticate", None, &refused).await.status;
        assert!(status == 401 || status == 503, "{status}");
    }
    service.get("/no/such/route", None).await.error(404);
    let text = reqwest::get(format!("{}/metrics", service.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |sample: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|r| r.strip_prefix(' ')))
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert!(
        value("devicegate_http_requests_total{route=\"/healthz\",status=\"200\"}") >= Some(3.0),
        "{text}"
    );
    let authenticate_refusals = ["401", "503"]
        .iter()
        .filter_map(|s| {
            value(&format!(
                "devicegate_http_requests_total{{route=\"/authenticate\",status=\"{s}\"}}"
            ))
        })
        .sum::<f64>();
    assert_eq!(authenticate_refusals, 2.0, "{text}");
    assert_eq!(
        value("devicegate_http_requests_total{route=\"unmatched\",status=\"404\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(value("devicegate_database_up"), Some(1.0), "{text}");
    assert_eq!(
        value("devicegate_devices{product=\"P1metric\",state=\"total\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value("devicegate_devices{product=\"P1metric\",state=\"disabled\"}"),
        Some(1.0),
        "{text}"
    );
}
