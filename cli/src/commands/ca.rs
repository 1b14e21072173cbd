//! `devicegate ca …`: the devicegate CA (IDENTITIES.md §3). `init` and
//! `server-cert` need no database; `crl` reads the revoked certificates.

use anyhow::Context as _;
use serde_json::json;

use crate::args::CaCommand;
use crate::output::Output;
use devicegate::store::Store;
use devicegate_pki::{Ca, CertificateInfo, Revoked, write_private, write_public};

/// `PREFIX.ext`.
pub fn with_extension(prefix: &std::path::Path, ext: &str) -> std::path::PathBuf {
    let mut path = prefix.as_os_str().to_owned();
    path.push(".");
    path.push(ext);
    path.into()
}

/// Runs the commands that need no database; `None` for the others.
pub fn run_offline(out: &Output, command: &CaCommand) -> Option<anyhow::Result<()>> {
    match command {
        CaCommand::ServerCert {
            dir,
            dns,
            ips,
            out: prefix,
            days,
        } => Some((|| {
            let ca = Ca::load(dir)?;
            let issued = ca.server_cert(dns, ips, *days)?;
            let (cert, key) = (with_extension(prefix, "pem"), with_extension(prefix, "key"));
            let key_pem = issued
                .key_pem
                .as_deref()
                .context("a server certificate comes with its key")?;
            write_private(&key, key_pem)?;
            write_public(&cert, &issued.cert_pem)?;
            out.done(
                json!({"certificate": cert, "key": key, "fingerprint": issued.info.fingerprint}),
                &format!("wrote {} and {} (mode 0600)", cert.display(), key.display()),
            );
            Ok(())
        })()),
        CaCommand::Init { .. } | CaCommand::Crl { .. } => None,
    }
}

pub async fn run(out: &Output, store: &Store, command: CaCommand) -> anyhow::Result<()> {
    match command {
        CaCommand::Init { dir } => init(out, store, &dir).await,
        CaCommand::Crl { dir } => crl(out, store, &dir).await,
        CaCommand::ServerCert { .. } => Ok(()),
    }
}

async fn init(out: &Output, store: &Store, dir: &std::path::Path) -> anyhow::Result<()> {
    let ca = Ca::init(dir)?;
    let fingerprint = store
        .trust_ca(None, ca.cert_pem())
        .await
        .context("the CA files are made, but the database did not record the CA")?;
    out.done(
        json!({"ca": dir.join("ca.pem"), "key": dir.join("ca.key"), "fingerprint": fingerprint}),
        &format!(
            "made a CA: {} (give it to brokers as their cafile) and {} (mode 0600: keep it off brokers); \
             --auto-register-certs products trust it",
            dir.join("ca.pem").display(),
            dir.join("ca.key").display()
        ),
    );
    Ok(())
}

async fn crl(out: &Output, store: &Store, dir: &std::path::Path) -> anyhow::Result<()> {
    let ca = Ca::load(dir)?;
    let mut revoked = Vec::new();
    for (pem, at_ms) in store.revoked_certificates().await? {
        let info = CertificateInfo::from_pem(&pem)?;
        if ca.issued(&info) {
            revoked.push(Revoked {
                serial: info.serial,
                at_ms,
            });
        }
    }
    let crl = ca.crl(&revoked)?;
    out.done(json!({"crl": crl, "revoked": revoked.len()}), crl.trim_end());
    Ok(())
}
