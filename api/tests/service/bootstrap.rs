//! Bootstrap by signature (vector B1's rule, a fresh timestamp): the
//! assigned server; bad, stale and malformed requests; per-address limit.

use devicegate::bootstrap::bootstrap_sign;
use devicegate::clock::now_ms;
use devicegate_test_support::both;
use serde_json::{Value, json};

use crate::harness::{Service, cli};

const SECRET: &str = "S3cretDevice0001";

fn request(pk: &str, dk: &str, timestamp: u64, secret: &str) -> Value {
    let ts = timestamp.to_string();
    json!({
        "productKey": pk,
        "deviceKey": dk,
        "timestamp": ts,
        "signMethod": "sha256",
        "sign": bootstrap_sign(pk, dk, &ts, secret.as_bytes()),
    })
}

#[tokio::test]
async fn bootstrap_answers_the_assigned_server() {
    for db in both().await {
        let url = &db.url;
        cli(url, &["product", "create", "Ab3dEf9h"]);
        for dk in ["dev_0001", "dev_0002", "dev_0003"] {
            cli(url, &["device", "create", "Ab3dEf9h", dk, "--secret", SECRET]);
        }
        cli(
            url,
            &["device", "assign", "Ab3dEf9h", "dev_0001", "--server", "mqtts://b:8883"],
        );
        cli(
            url,
            &["device", "assign", "Ab3dEf9h", "dev_0003", "--server", "mqtt://c:1883"],
        );
        cli(url, &["device", "disable", "Ab3dEf9h", "dev_0003"]);
        let service = Service::start(url, &[]).await;

        let answer = service
            .post("/bootstrap", None, &request("Ab3dEf9h", "dev_0001", now_ms(), SECRET))
            .await;
        let body = answer.ok(200);
        assert_eq!(body["server"], "mqtts://b:8883");
        assert!(body["caCertificate"].is_null());

        let bad_sign = request("Ab3dEf9h", "dev_0001", now_ms(), "S3cretDevice0002");
        service.post("/bootstrap", None, &bad_sign).await.error(401);
        let unknown = request("Ab3dEf9h", "dev_9999", now_ms(), SECRET);
        let unknown = service.post("/bootstrap", None, &unknown).await.error(401);
        let bad = service.post("/bootstrap", None, &bad_sign).await.error(401);
        assert_eq!(unknown, bad, "unknown device and bad sign alike");
        let stale = request("Ab3dEf9h", "dev_0001", now_ms() - 11 * 60 * 1000, SECRET);
        service.post("/bootstrap", None, &stale).await.error(401);
        let mut malformed = request("Ab3dEf9h", "dev_0001", now_ms(), SECRET);
        malformed["timestamp"] = json!("soon");
        let detail = service.post("/bootstrap", None, &malformed).await.error(400);
        assert!(detail.starts_with("timestamp"), "{detail}");
        malformed["timestamp"] = json!(1796000000000u64);
        let detail = service.post("/bootstrap", None, &malformed).await.error(400);
        assert!(detail.starts_with("timestamp"), "{detail}");

        let unassigned = request("Ab3dEf9h", "dev_0002", now_ms(), SECRET);
        service.post("/bootstrap", None, &unassigned).await.error(404);
        let disabled = request("Ab3dEf9h", "dev_0003", now_ms(), SECRET);
        service.post("/bootstrap", None, &disabled).await.error(403);
        service.stop();

        // The service's default broker for the unassigned.
        let service = Service::start(url, &["--default-server", "mqtt://default:1883"]).await;
        let answer = service.post("/bootstrap", None, &unassigned).await;
        assert_eq!(answer.ok(200)["server"], "mqtt://default:1883");

        // Refusals from one address are limited: 429 with Retry-After.
        let mut refusals = 0;
        let blocked = loop {
            let answer = service.post("/bootstrap", None, &bad_sign).await;
            if answer.status == 429 {
                break answer;
            }
            answer.error(401);
            refusals += 1;
            assert!(refusals <= 20, "no limit after {refusals} refusals");
        };
        blocked.error(429);
        let retry_after: u64 = blocked.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry_after > 0);
        service.post("/bootstrap", None, &unassigned).await.error(429);
        assert_eq!(service.get("/healthz", None).await.ok(200)["database"], "up");
        service.stop();
    }
}
