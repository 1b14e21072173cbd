//! The admin API: products, devices (paged), credentials, status, held
//! to admin agents.

use devicegate_test_support::both;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Service, cli, text};

#[tokio::test]
async fn admin_agents_manage_products_devices_and_credentials() {
    for db in both().await {
        let url = &db.url;
        cli(url, &["product", "create", "Seed1"]);
        let admin = text(&cli(url, &["agent", "create", "ops", "--admin"]), "token");
        let plain = text(
            &cli(url, &["agent", "create", "factory", "--products", "Seed1"]),
            "token",
        );
        let service = Service::start(url, &[]).await;
        let admin = Some(admin.as_str());

        // Products.
        let created = service
            .post(
                "/v1/admin/products",
                admin,
                &json!({"product_key": "Adm1", "token_ttl_secs": 60}),
            )
            .await;
        assert_eq!(created.ok(201)["product"]["product_key"], "Adm1");
        assert_eq!(created.body["product"]["token_ttl_secs"], 60);
        service
            .post("/v1/admin/products", admin, &json!({"product_key": "Adm1"}))
            .await
            .error(409);
        let detail = service
            .post(
                "/v1/admin/products",
                admin,
                &json!({"product_key": "Adm2", "dialect": "mqtt"}),
            )
            .await
            .error(400);
        assert!(detail.starts_with("dialect:"), "{detail}");
        let products = service.get("/v1/admin/products", admin).await;
        assert_eq!(products.ok(200)["products"].as_array().unwrap().len(), 2);
        let patched = service
            .send(
                Method::PATCH,
                "/v1/admin/products/Adm1",
                admin,
                Some(json!({"server_url": "mqtts://b:8883"}).to_string().into_bytes()),
            )
            .await;
        assert_eq!(patched.ok(200)["server_url"], "mqtts://b:8883");
        service.get("/v1/admin/products/Nope1", admin).await.error(404);

        // Devices, paged.
        let device = service
            .post(
                "/v1/admin/devices",
                admin,
                &json!({"product_key": "Adm1", "device_key": "dev0"}),
            )
            .await;
        let device = device.ok(201);
        assert_eq!(device["secret"].as_str().map(str::len), Some(32), "{device}");
        let guid = text(&device["device"], "guid");
        for i in 1..5 {
            let body = json!({"product_key": "Adm1", "device_key": format!("dev{i}"), "secret": "0123456789abcdef"});
            let created = service.post("/v1/admin/devices", admin, &body).await;
            assert!(created.ok(201)["secret"].is_null(), "a given secret is not echoed");
        }
        service
            .post(
                "/v1/admin/devices",
                admin,
                &json!({"product_key": "Adm1", "device_key": "dev1"}),
            )
            .await
            .error(409);
        let mut seen = Vec::new();
        let mut offset = Some(0);
        while let Some(at) = offset {
            let page = service
                .get(
                    &format!("/v1/admin/devices?product_key=Adm1&limit=2&offset={at}"),
                    admin,
                )
                .await;
            let page = page.ok(200);
            assert_eq!(page["total"], 5);
            let devices = page["devices"].as_array().unwrap();
            assert!(devices.len() <= 2);
            seen.extend(devices.iter().map(|d| text(d, "device_key")));
            offset = page["next_offset"].as_u64();
        }
        assert_eq!(seen, ["dev0", "dev1", "dev2", "dev3", "dev4"]);
        service.get("/v1/admin/devices?limit=0", admin).await.error(400);
        let by_guid = service.get(&format!("/v1/admin/devices/by-guid/{guid}"), admin).await;
        assert_eq!(by_guid.ok(200)["device_key"], "dev0");
        service.get("/v1/admin/devices/Adm1/nope", admin).await.error(404);

        // Credentials.
        let psk = service.post("/v1/admin/devices/Adm1/dev0/psk", admin, &json!({})).await;
        let psk = psk.ok(201).clone();
        assert_eq!(text(&psk, "key").len(), 64);
        let access = service
            .send(Method::POST, "/v1/admin/devices/Adm1/dev0/access-keys", admin, None)
            .await;
        let access = access.ok(201);
        assert_eq!(text(access, "accessKey").len(), 64);
        assert_eq!(text(access, "secretKey").len(), 64);
        let listed = service.get("/v1/admin/devices/Adm1/dev0/credentials", admin).await;
        let kinds: Vec<String> = listed.ok(200)["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| text(c, "kind"))
            .collect();
        assert!(
            kinds.contains(&"psk".to_owned()) && kinds.contains(&"access_key".to_owned()),
            "{kinds:?}"
        );
        let revoke = json!({"kind": "psk", "identity": text(&psk, "identity")});
        let revoked = service
            .post("/v1/admin/devices/Adm1/dev0/credentials/revoke", admin, &revoke)
            .await;
        assert_eq!(revoked.ok(200)["revoked"], 1);
        service
            .post("/v1/admin/devices/Adm1/dev0/credentials/revoke", admin, &revoke)
            .await
            .error(400);
        let detail = service
            .post(
                "/v1/admin/devices/Adm1/dev0/credentials/revoke",
                admin,
                &json!({"kind": "password"}),
            )
            .await
            .error(400);
        assert!(detail.starts_with("kind:"), "{detail}");
        let detail = service
            .post("/v1/admin/devices/Adm1/dev0/certificates", admin, &json!({"csr": "x"}))
            .await
            .error(503);
        assert!(detail.contains("--ca-dir"), "{detail}");

        // Enable, disable, delete, status.
        let disabled = service
            .send(Method::POST, "/v1/admin/devices/Adm1/dev1/disable", admin, None)
            .await;
        assert_eq!(disabled.ok(200)["enabled"], false);
        let status = service.get("/v1/admin/status", admin).await;
        let adm1 = status.ok(200)["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product_key"] == "Adm1")
            .cloned()
            .unwrap();
        assert_eq!((adm1["total"].as_i64(), adm1["disabled"].as_i64()), (Some(5), Some(1)));
        let enabled = service
            .send(Method::POST, "/v1/admin/devices/Adm1/dev1/enable", admin, None)
            .await;
        assert_eq!(enabled.ok(200)["enabled"], true);
        let deleted = service
            .send(Method::DELETE, "/v1/admin/devices/Adm1/dev4", admin, None)
            .await;
        assert_eq!(deleted.status, 204, "{deleted:?}");
        let deleted = service
            .send(Method::DELETE, "/v1/admin/products/Adm1", admin, None)
            .await;
        assert_eq!(deleted.ok(200)["devices_deleted"], 4);

        // Only admin agents.
        service.get("/v1/admin/status", Some(&plain)).await.error(403);
        service.get("/v1/admin/products", None).await.error(401);
        service
            .post("/v1/admin/products", Some(&plain), &json!({"product_key": "Adm3"}))
            .await
            .error(403);
        service.stop();
    }
}
