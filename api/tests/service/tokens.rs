//! Seed 003: an access key from the CLI, `POST /authenticate` returns a
//! token naming the device, signed by the key `token keygen` made.

use devicegate::access_token::{AUDIENCE, ParsedToken};
use devicegate_test_support::both;
use serde_json::json;

use crate::harness::{Service, cli, path_in, text};

#[tokio::test]
async fn access_key_is_exchanged_for_a_token() {
    for db in both().await {
        let url = &db.url;
        let dir = tempfile::tempdir().unwrap();
        let key_file = path_in(dir.path(), "token.key");
        let key = cli(url, &["token", "keygen", "--out", &key_file, "--kid", "k1"]);
        let public_key: [u8; 32] = hex_decode(&text(&key, "public_key"));
        cli(url, &["product", "create", "P1tokens"]);
        cli(url, &["device", "create", "P1tokens", "dev1"]);
        let pair = cli(url, &["device", "access-key", "P1tokens", "dev1"]);
        let device = cli(url, &["device", "show", "P1tokens", "dev1"]);
        let device_guid = text(&device, "guid");

        let service = Service::start(url, &["--token-key", &key_file]).await;
        let request = |secret: &str| json!({"deviceAuthParameters": {"accessKey": text(&pair, "accessKey"), "secretKey": secret}});
        let answer = service
            .post("/authenticate", None, &request(&text(&pair, "secretKey")))
            .await;
        let body = answer.ok(200);
        assert_eq!(text(body, "deviceGUID"), device_guid);
        let token = text(body, "token");
        let parsed = ParsedToken::parse(token.as_bytes()).expect("a well-formed JWT");
        assert_eq!(parsed.kid, "k1");
        assert!(parsed.signature_valid(&public_key), "signed by the keygen key");
        assert_eq!(parsed.claims.di, device_guid);
        assert_eq!(parsed.claims.pi, text(body, "productGUID"));
        assert_eq!(parsed.claims.aud, AUDIENCE);
        assert_eq!(parsed.claims.sub, format!("{}:{}", parsed.claims.pi, parsed.claims.di));
        assert_eq!(parsed.claims.exp - parsed.claims.iat, 3600);

        let wrong = format!("{}0", &text(&pair, "secretKey")[1..]);
        service.post("/authenticate", None, &request(&wrong)).await.error(401);
        let unknown = json!({"deviceAuthParameters": {"accessKey": "00", "secretKey": "00"}});
        service.post("/authenticate", None, &unknown).await.error(401);

        cli(url, &["device", "disable", "P1tokens", "dev1"]);
        service
            .post("/authenticate", None, &request(&text(&pair, "secretKey")))
            .await
            .error(403);
        service.stop();
    }
}

fn hex_decode<const N: usize>(hex: &str) -> [u8; N] {
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
