//! `devicegate device psk …`: TLS pre-shared keys (IDENTITIES.md §2).

use serde_json::json;

use crate::args::{PskAction, PskArgs};
use crate::output::Output;
use devicegate::registry::CredentialKind;
use devicegate::store::Store;

pub async fn run(out: &Output, store: &Store, args: PskArgs) -> anyhow::Result<()> {
    match args.action {
        Some(PskAction::Revoke {
            product_key,
            device_key,
            identity,
        }) => {
            let count = store
                .revoke_credentials(&product_key, &device_key, CredentialKind::Psk, identity.as_deref())
                .await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "revoked": count}),
                &format!(
                    "revoked {count} PSK(s) of device {device_key} of product {product_key}; brokers close the \
                     connections that use them"
                ),
            );
        }
        None => {
            let (Some(product_key), Some(device_key)) = (args.product_key, args.device_key) else {
                anyhow::bail!("usage: devicegate device psk PRODUCT_KEY DEVICE_KEY [--identity ID]");
            };
            let psk = store
                .create_psk(&product_key, &device_key, args.identity.as_deref())
                .await?;
            out.done(
                json!({"identity": psk.identity, "key": psk.key}),
                &format!(
                    "created a PSK for device {device_key} of product {product_key} (the key is shown once)\n\
                     identity: {}\nkey:      {}",
                    psk.identity, psk.key
                ),
            );
        }
    }
    Ok(())
}
