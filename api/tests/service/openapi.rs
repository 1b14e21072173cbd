//! `/openapi.json` is an OpenAPI 3 document listing every route.

use devicegate_test_support::sqlite;

use crate::harness::Service;

const ROUTES: &[(&str, &str)] = &[
    ("/healthz", "get"),
    ("/metrics", "get"),
    ("/openapi.json", "get"),
    ("/authenticate", "post"),
    ("/bootstrap", "post"),
    ("/v1/{productKey}/agent/devices", "post"),
    ("/v1/{productKey}/agent/devices/{deviceKey}", "delete"),
    ("/v1/admin/products", "get"),
    ("/v1/admin/products", "post"),
    ("/v1/admin/products/{productKey}", "get"),
    ("/v1/admin/products/{productKey}", "patch"),
    ("/v1/admin/products/{productKey}", "delete"),
    ("/v1/admin/devices", "get"),
    ("/v1/admin/devices", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}", "get"),
    ("/v1/admin/devices/{productKey}/{deviceKey}", "delete"),
    ("/v1/admin/devices/by-guid/{guid}", "get"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/enable", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/disable", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/credentials", "get"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/psk", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/certificates", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/access-keys", "post"),
    ("/v1/admin/devices/{productKey}/{deviceKey}/credentials/revoke", "post"),
    ("/v1/admin/status", "get"),
];

#[tokio::test]
async fn openapi_document_lists_every_route() {
    let db = sqlite();
    let service = Service::start(&db.url, &[]).await;
    let document = service.get("/openapi.json", None).await;
    let document = document.ok(200);
    let version = document["openapi"].as_str().expect("an `openapi` version");
    assert!(version.starts_with("3."), "{version}");
    assert!(document["info"]["title"].is_string());
    let paths = document["paths"].as_object().expect("paths");
    for (path, method) in ROUTES {
        let operation = &paths.get(*path).unwrap_or_else(|| panic!("{path} is not documented"))[*method];
        assert!(operation["responses"].is_object(), "{method} {path} is not documented");
    }
    let documented: usize = paths.values().map(|p| p.as_object().map_or(0, |o| o.len())).sum();
    assert_eq!(documented, ROUTES.len(), "every documented operation is listed here");
    assert_eq!(
        devicegate_api::openapi().paths.paths.len(),
        paths.len(),
        "the library's document is the one served"
    );
    service.stop();
}
