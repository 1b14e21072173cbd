//! `devicegate device cert …`: device certificates (IDENTITIES.md §3).

use anyhow::Context as _;
use serde_json::json;

use super::ca::with_extension;
use crate::args::CertCommand;
use crate::output::Output;
use devicegate::registry::CredentialKind;
use devicegate::store::Store;
use devicegate_api::{IssueError, issue_device_certificate};
use devicegate_pki::{Ca, CertificateInfo, write_private, write_public};

fn read(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

pub async fn run(out: &Output, store: &Store, command: CertCommand) -> anyhow::Result<()> {
    match command {
        CertCommand::Issue {
            product_key,
            device_key,
            ca_dir,
            out: prefix,
            csr,
            days,
        } => {
            let csr = csr.as_deref().map(read).transpose()?;
            let ca = Ca::load(&ca_dir)?;
            // Without a CSR the CA makes the key, written beside the certificate.
            let cert_path = with_extension(&prefix, "pem");
            let key_path = csr.is_none().then(|| with_extension(&prefix, "key"));
            for path in std::iter::once(&cert_path).chain(key_path.as_ref()) {
                anyhow::ensure!(
                    !path.exists(),
                    "{} exists: remove it or choose another --out",
                    path.display()
                );
            }
            let issued = issue_device_certificate(store, &ca, &product_key, &device_key, csr.as_deref(), days)
                .await
                .map_err(|e| match e {
                    // Unwrapped, so main still finds a StoreError (exit code, database named).
                    IssueError::Store(e) => anyhow::Error::from(e),
                    IssueError::Pki(e) => anyhow::Error::from(e),
                    e @ IssueError::NoGuid => anyhow::Error::from(e),
                })?;
            if let (Some(path), Some(key)) = (&key_path, &issued.key_pem) {
                write_private(path, key)?;
            }
            write_public(&cert_path, &issued.cert_pem)?;
            out.done(
                json!({"certificate": cert_path, "key": key_path, "fingerprint": issued.info.fingerprint,
                       "not_after": issued.info.not_after_ms}),
                &format!(
                    "issued a certificate for device {device_key} of product {product_key}: {}{}\nfingerprint {}",
                    cert_path.display(),
                    key_path
                        .map(|k| format!(" and {} (mode 0600)", k.display()))
                        .unwrap_or_default(),
                    issued.info.fingerprint
                ),
            );
        }
        CertCommand::Add {
            product_key,
            device_key,
            file,
        } => {
            let pem = read(&file)?;
            let info = CertificateInfo::from_pem(&pem).with_context(|| file.display().to_string())?;
            store
                .add_certificate(&product_key, &device_key, &info.fingerprint, &pem, info.not_after_ms)
                .await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "fingerprint": info.fingerprint}),
                &format!(
                    "registered certificate {} for device {device_key} of product {product_key}",
                    info.fingerprint
                ),
            );
        }
        CertCommand::Revoke {
            product_key,
            device_key,
            fingerprint,
        } => {
            let fingerprint = fingerprint.map(|f| f.replace(':', "").to_ascii_lowercase());
            let count = store
                .revoke_credentials(
                    &product_key,
                    &device_key,
                    CredentialKind::Certificate,
                    fingerprint.as_deref(),
                )
                .await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "revoked": count}),
                &format!(
                    "revoked {count} certificate(s) of device {device_key} of product {product_key}; brokers close \
                     the connections that use them"
                ),
            );
        }
    }
    Ok(())
}
