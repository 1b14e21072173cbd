//! HTTPS with a certificate made in the test, certificates issued from a
//! CSR through the admin API, and bootstrap by a device's client
//! certificate alone.

use devicegate_test_support::sqlite;
use reqwest::Method;
use serde_json::json;

use crate::harness::{Service, cli, path_in, text};

#[tokio::test]
async fn https_and_bootstrap_by_client_certificate() {
    let db = sqlite();
    let url = &db.url;
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = path_in(dir.path(), "ca");
    cli(url, &["ca", "init", "--dir", &ca_dir]);
    let server = path_in(dir.path(), "server");
    cli(
        url,
        &[
            "ca",
            "server-cert",
            "--dir",
            &ca_dir,
            "--ip",
            "127.0.0.1",
            "--out",
            &server,
        ],
    );
    cli(url, &["product", "create", "P1tls"]);
    cli(url, &["device", "create", "P1tls", "dev1"]);
    cli(url, &["device", "create", "P1tls", "dev2"]);
    cli(
        url,
        &["device", "assign", "P1tls", "dev1", "--server", "mqtts://b:8883"],
    );
    let admin = text(&cli(url, &["agent", "create", "ops", "--admin"]), "token");
    let device = path_in(dir.path(), "dev1");
    let issued = cli(
        url,
        &[
            "device", "cert", "issue", "P1tls", "dev1", "--ca-dir", &ca_dir, "--out", &device,
        ],
    );
    assert_eq!(text(&issued, "fingerprint").len(), 64);

    let ca_pem = std::fs::read(format!("{ca_dir}/ca.pem")).unwrap();
    let trust = || {
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
    };
    let client_with = |identity: &[u8]| {
        trust()
            .identity(reqwest::Identity::from_pem(identity).unwrap())
            .build()
            .unwrap()
    };
    let tls_args = [
        "--tls-cert",
        &format!("{server}.pem"),
        "--tls-key",
        &format!("{server}.key"),
        "--client-ca",
        &format!("{ca_dir}/ca.pem"),
        "--ca-dir",
        &ca_dir,
        "--default-server",
        "mqtt://d:1883",
    ];
    let mut service = Service::start_tls(url, &tls_args, trust().build().unwrap()).await;
    assert!(service.base.starts_with("https://"));

    // Without a client certificate the body must prove the device.
    service
        .send(Method::POST, "/bootstrap", None, Some(b"{}".to_vec()))
        .await
        .error(400);

    // A certificate for dev2's own key, from its CSR, through the admin API.
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let path = "/v1/admin/devices/P1tls/dev2/certificates";
    let answer = service.post(path, Some(&admin), &json!({"csr": csr, "days": 30})).await;
    let certificate = answer.ok(201);
    assert_eq!(text(certificate, "fingerprint").len(), 64);
    assert_eq!(text(certificate, "ca_certificate").as_bytes(), ca_pem.as_slice());
    let detail = service
        .post(path, Some(&admin), &json!({"csr": "not a CSR"}))
        .await
        .error(400);
    assert!(detail.starts_with("csr:"), "{detail}");

    // Each device's certificate alone is enough for bootstrap.
    let mut dev1 = std::fs::read(format!("{device}.pem")).unwrap();
    dev1.extend(std::fs::read(format!("{device}.key")).unwrap());
    service.use_client(client_with(&dev1));
    let answer = service.send(Method::POST, "/bootstrap", None, Some(Vec::new())).await;
    let body = answer.ok(200);
    assert_eq!(body["server"], "mqtts://b:8883");
    assert_eq!(body["caCertificate"].as_str().unwrap().as_bytes(), ca_pem.as_slice());

    let dev2 = format!("{}{}", text(certificate, "certificate"), key.serialize_pem());
    service.use_client(client_with(dev2.as_bytes()));
    let answer = service.send(Method::POST, "/bootstrap", None, Some(Vec::new())).await;
    assert_eq!(answer.ok(200)["server"], "mqtt://d:1883");

    // A revoked certificate proves nothing.
    let revoke = json!({"kind": "certificate", "identity": text(certificate, "fingerprint")});
    service.use_client(trust().build().unwrap());
    service
        .post("/v1/admin/devices/P1tls/dev2/credentials/revoke", Some(&admin), &revoke)
        .await
        .ok(200);
    service.use_client(client_with(dev2.as_bytes()));
    service
        .send(Method::POST, "/bootstrap", None, Some(Vec::new()))
        .await
        .error(401);
    service.stop();
}
