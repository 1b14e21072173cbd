//! `devicegate token …`: device-token signing keys and tokens issued by
//! hand (IDENTITIES.md §4).

use anyhow::Context as _;
use serde_json::json;

use crate::args::TokenCommand;
use crate::output::{Output, time};
use devicegate::access_token::{SigningKey, new_kid, pkcs8_to_pem};
use devicegate::store::Store;
use devicegate_pki::write_private;

pub async fn run(out: &Output, store: &Store, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Keygen { out: path, kid } => {
            anyhow::ensure!(
                !path.exists(),
                "{} exists: remove it or choose another --out",
                path.display()
            );
            let kid = kid.unwrap_or_else(new_kid);
            let (key, pkcs8) = SigningKey::generate(&kid)?;
            store.add_token_key(key.kid(), &key.public_key()).await?;
            write_private(&path, &pkcs8_to_pem(&pkcs8))?;
            out.done(
                json!({"kid": key.kid(), "public_key": hex_of(&key.public_key()), "file": path}),
                &format!(
                    "made token key {} (private key in {}, mode 0600; brokers accept its tokens from now on)",
                    key.kid(),
                    path.display()
                ),
            );
        }
        TokenCommand::Issue {
            product_key,
            device_key,
            key,
            ttl,
        } => {
            let pem = std::fs::read_to_string(&key).with_context(|| format!("cannot read {}", key.display()))?;
            let key = store.signing_key(&pem).await?;
            let subject = store.token_subject(&product_key, &device_key).await?;
            anyhow::ensure!(
                subject.enabled,
                "device {device_key} of product {product_key} is disabled: its token would be refused"
            );
            let token = subject.issue(&key, ttl.map(|t| t.as_secs().max(1)));
            out.done(json!({"token": token}), &token);
        }
        TokenCommand::Keys => {
            let keys = store.token_keys().await?;
            out.list(&keys, &["KID", "PUBLIC KEY", "CREATED"], |k| {
                vec![k.kid.clone(), k.public_key.clone(), time(Some(k.created_at))]
            });
        }
        TokenCommand::RemoveKey { kid } => {
            store.remove_token_key(&kid).await?;
            out.done(
                json!({"kid": kid, "removed": true}),
                &format!("removed token key {kid}; brokers refuse its tokens and close the sessions that used one"),
            );
        }
    }
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
