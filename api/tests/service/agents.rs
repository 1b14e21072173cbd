//! Seed 004: registration agents register a device until it first logs
//! in, unregister it, and are held to their products.

use devicegate::clock::now_ms;
use devicegate::engine::StoreWrite;
use devicegate::store::Store;
use devicegate_test_support::both;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Service, cli, text};

#[tokio::test]
async fn agents_register_until_first_login() {
    for db in both().await {
        let url = &db.url;
        cli(url, &["product", "create", "P1agents"]);
        cli(url, &["product", "create", "P2agents"]);
        let a1 = text(&cli(url, &["agent", "create", "a1", "--products", "P1agents"]), "token");
        let a2 = text(&cli(url, &["agent", "create", "a2", "--products", "P2agents"]), "token");
        let service = Service::start(url, &[]).await;
        let register = json!({"data": {"hw_id": "dev1"}});
        let path = "/v1/P1agents/agent/devices";

        let first = service.post(path, Some(&a1), &register).await;
        let first = text(&first.ok(201)["data"], "credentials_secret");
        let second = service.post(path, Some(&a1), &register).await;
        let second = text(&second.ok(201)["data"], "credentials_secret");
        assert_ne!(first, second, "a fresh secret every time");
        let store = Store::connect(url).await.unwrap();
        assert_eq!(
            store.device_secret("P1agents", "dev1").await.unwrap().as_deref(),
            Some(second.as_str()),
            "the last secret issued is the device's"
        );

        // The device's first login, as a broker records it.
        store
            .apply_writes(vec![StoreWrite::Activated {
                device: "dev1&P1agents".into(),
                at_ms: now_ms(),
            }])
            .await
            .unwrap();
        let refused = service.post(path, Some(&a1), &register).await.error(422);
        assert_eq!(refused, "device already registered");

        let unregister = service
            .send(Method::DELETE, "/v1/P1agents/agent/devices/dev1", Some(&a1), None)
            .await;
        assert_eq!(unregister.status, 204, "{unregister:?}");
        service.post(path, Some(&a1), &register).await.ok(201);

        service.post(path, Some(&a2), &register).await.error(403);
        service
            .send(Method::DELETE, "/v1/P1agents/agent/devices/dev1", Some(&a2), None)
            .await
            .error(403);
        service.post(path, None, &register).await.error(401);
        service.post(path, Some("not-a-token"), &register).await.error(401);
        cli(url, &["agent", "revoke", "a1"]);
        service.post(path, Some(&a1), &register).await.error(401);
        store.close().await;
        service.stop();
    }
}
