//! Bad input gets a status and `{"errors":{"detail":…}}` naming the field,
//! and the service keeps serving.

use devicegate_test_support::both;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Service, cli, text};

#[tokio::test]
async fn bad_input_gets_a_clear_answer() {
    for db in both().await {
        let url = &db.url;
        cli(url, &["product", "create", "P1bad"]);
        let admin = text(&cli(url, &["agent", "create", "ops", "--admin"]), "token");
        let admin = Some(admin.as_str());
        let service = Service::start(url, &[]).await;
        let raw = |body: &str| {
            let body = body.as_bytes().to_vec();
            let service = &service;
            async move { service.send(Method::POST, "/authenticate", None, Some(body)).await }
        };

        let detail = raw("{\"deviceAuthParameters\": ").await.error(400);
        assert!(detail.contains("not valid JSON"), "{detail}");
        raw("").await.error(400);
        let detail = raw(r#"{"deviceAuthParameters": {"accessKey": "a"}}"#).await.error(400);
        assert!(
            detail.contains("deviceAuthParameters") && detail.contains("secretKey"),
            "{detail}"
        );
        let detail = raw(r#"{"deviceAuthParameters": {"accessKey": "a", "secretKey": "b", "extra": 1}}"#)
            .await
            .error(400);
        assert!(detail.contains("extra"), "{detail}");
        let detail = raw(r#"{"deviceAuthParameters": {"accessKey": 5, "secretKey": "b"}}"#)
            .await
            .error(400);
        assert!(detail.contains("deviceAuthParameters.accessKey"), "{detail}");
        let detail = raw(r#"[1, 2]"#).await.error(400);
        assert!(!detail.is_empty());

        let large = json!({"deviceAuthParameters": {"accessKey": "a".repeat(65 * 1024), "secretKey": "b"}});
        service.post("/authenticate", None, &large).await.error(413);

        // Well-formed, but the service has no token key.
        let good = json!({"deviceAuthParameters": {"accessKey": "a", "secretKey": "b"}});
        let detail = service.post("/authenticate", None, &good).await.error(503);
        assert!(detail.contains("--token-key"), "{detail}");

        // Unknown product, a device key breaking the key rules.
        let register = json!({"data": {"hw_id": "dev1"}});
        service
            .post("/v1/NoSuchProduct/agent/devices", admin, &register)
            .await
            .error(404);
        let detail = service
            .post(
                "/v1/P1bad/agent/devices",
                admin,
                &json!({"data": {"hw_id": "bad key/#"}}),
            )
            .await
            .error(400);
        assert!(detail.starts_with("data.hw_id"), "{detail}");
        let detail = service
            .post("/v1/P1bad/agent/devices", admin, &json!({"data": {}}))
            .await
            .error(400);
        assert!(detail.contains("hw_id"), "{detail}");
        let detail = service.get("/v1/admin/devices?limit=many", admin).await.error(400);
        assert!(detail.contains("limit"), "{detail}");
        service.get("/no/such/route", None).await.error(404);
        service.send(Method::PUT, "/authenticate", None, None).await.error(405);

        assert_eq!(service.get("/healthz", None).await.ok(200)["database"], "up");
        service.stop();
    }
}
