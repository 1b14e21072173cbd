//! The CA checked by an independent implementation: the `openssl` command
//! verifies chains, reads CSRs it made, and lists CRLs.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use super::*;
use devicegate::credentials::Fingerprint;

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command (apt-get install openssl)")
}

const SUBJECT: DeviceSubject<'static> = DeviceSubject {
    product_key: "Ab3dEf9h",
    device_key: "dev_0001",
    guid: "ed031364-07ec-4ef8-aa76-b3c56b4069a7",
};

#[test]
fn a_ca_is_made_once_with_a_private_key_only_its_owner_reads() {
    let dir = tempfile::tempdir().unwrap();
    Ca::init(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join("ca.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(matches!(Ca::init(dir.path()), Err(PkiError::Exists(_))));
    let text = String::from_utf8(
        openssl(&[
            "x509",
            "-in",
            &dir.path().join("ca.pem").display().to_string(),
            "-noout",
            "-text",
        ])
        .stdout,
    )
    .unwrap();
    assert!(text.contains("CA:TRUE"), "{text}");
    assert!(text.contains("prime256v1"), "{text}");
    Ca::load(dir.path()).unwrap();
}

#[test]
fn device_certificates_chain_to_the_ca_and_name_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path()).unwrap();
    let issued = ca.device_cert(SUBJECT, None, 30).unwrap();
    assert!(issued.key_pem.as_deref().unwrap().contains("PRIVATE KEY"));
    assert_eq!(issued.info.common_name.as_deref(), Some("Ab3dEf9h/dev_0001"));
    assert_eq!(issued.info.fingerprint, Fingerprint::of(&issued.info.der).as_str());
    let cert = dir.path().join("dev.pem");
    write_public(&cert, &issued.cert_pem).unwrap();
    let ca_pem = dir.path().join("ca.pem").display().to_string();
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &ca_pem,
        "-purpose",
        "sslclient",
        &cert.display().to_string(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let text = String::from_utf8(
        openssl(&[
            "x509",
            "-in",
            &cert.display().to_string(),
            "-noout",
            "-text",
            "-fingerprint",
            "-sha256",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        text.contains("URI:urn:uuid:ed031364-07ec-4ef8-aa76-b3c56b4069a7"),
        "{text}"
    );
    assert!(text.contains("TLS Web Client Authentication"), "{text}");
    let colons = issued
        .info
        .fingerprint
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    assert!(text.contains(&colons), "openssl's fingerprint is ours: {text}");
    let loaded = Ca::load(dir.path()).unwrap();
    let again = loaded.device_cert(SUBJECT, None, 1).unwrap();
    assert_ne!(again.info.serial, issued.info.serial);
}

#[test]
fn csrs_are_checked_and_only_their_key_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path()).unwrap();
    let csr_of = |keyopts: &[&str], name: &str| {
        let path = dir.path().join(name);
        let mut args = vec!["req", "-new", "-nodes", "-subj", "/CN=evil/O=other", "-keyout"];
        let key = dir.path().join(format!("{name}.key")).display().to_string();
        args.push(&key);
        args.extend_from_slice(keyopts);
        let out = path.display().to_string();
        args.extend_from_slice(&["-out", &out]);
        let made = openssl(&args);
        assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
        std::fs::read_to_string(path).unwrap()
    };
    let ec = csr_of(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "ec.csr");
    let issued = ca.device_cert(SUBJECT, Some(&ec), 30).unwrap();
    assert!(issued.key_pem.is_none(), "the device keeps its key");
    assert_eq!(
        issued.info.common_name.as_deref(),
        Some("Ab3dEf9h/dev_0001"),
        "not the CSR's subject"
    );
    let rsa = csr_of(&["-newkey", "rsa:2048"], "rsa.csr");
    ca.device_cert(SUBJECT, Some(&rsa), 30).unwrap();

    let weak = csr_of(&["-newkey", "rsa:1024"], "weak.csr");
    let err = ca.device_cert(SUBJECT, Some(&weak), 30).unwrap_err();
    assert!(matches!(err, PkiError::WeakKey(_)), "{err}");
    assert!(err.to_string().contains("1024 bits"), "{err}");
    let small_curve = csr_of(&["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp192k1"], "k1.csr");
    assert!(matches!(
        ca.device_cert(SUBJECT, Some(&small_curve), 30),
        Err(PkiError::WeakKey(_))
    ));

    // One byte of the signature changed.
    let block: String = ec.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64_decode(&block);
    let last = der.len() - 3;
    der[last] ^= 0x01;
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64_encode(&der)
    );
    assert!(matches!(
        ca.device_cert(SUBJECT, Some(&tampered), 30),
        Err(PkiError::BadCsrSignature)
    ));
    for junk in ["", "hello", &issued.cert_pem] {
        let err = ca.device_cert(SUBJECT, Some(junk), 30).unwrap_err();
        assert!(matches!(err, PkiError::Malformed(_)), "{junk:?}: {err}");
    }
}

#[test]
fn a_crl_lists_revoked_serials() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path()).unwrap();
    let issued = ca.device_cert(SUBJECT, None, 30).unwrap();
    let crl = ca
        .crl(&[Revoked {
            serial: issued.info.serial.clone(),
            at_ms: 1_796_000_000_000,
        }])
        .unwrap();
    let path = dir.path().join("crl.pem");
    write_public(&path, &crl).unwrap();
    let ca_pem = dir.path().join("ca.pem").display().to_string();
    let listed = openssl(&[
        "crl",
        "-in",
        &path.display().to_string(),
        "-CAfile",
        &ca_pem,
        "-noout",
        "-text",
    ]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8_lossy(&listed.stdout).to_uppercase();
    let serial = hex::encode_upper(&issued.info.serial);
    assert!(text.contains(serial.trim_start_matches('0')), "{serial} in {text}");
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("verify OK") || text.contains("REVOKED"),
        "{text}"
    );
}

#[test]
fn server_certificates_name_their_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::init(dir.path()).unwrap();
    let issued = ca
        .server_cert(&["broker.example".to_owned()], &["127.0.0.1".parse().unwrap()], 365)
        .unwrap();
    let cert = dir.path().join("server.pem");
    write_public(&cert, &issued.cert_pem).unwrap();
    let ca_pem = dir.path().join("ca.pem").display().to_string();
    let verified = openssl(&[
        "verify",
        "-CAfile",
        &ca_pem,
        "-purpose",
        "sslserver",
        "-verify_ip",
        "127.0.0.1",
        &cert.display().to_string(),
    ]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(ca.server_cert(&[], &[], 365).is_err());
}

fn base64_decode(text: &str) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(["base64", "-d", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    out.stdout
}

fn base64_encode(bytes: &[u8]) -> String {
    let out = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(bytes)?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}
