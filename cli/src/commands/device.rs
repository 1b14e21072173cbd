//! `devicegate device …`

use serde_json::json;

use crate::args::DeviceCommand;
use crate::output::{Output, time, yes_no};
use devicegate::store::{DeviceInfo, DeviceSpec, Store};

/// Splits `GWPK/GWDK`.
pub fn gateway(text: &str) -> anyhow::Result<(String, String)> {
    devicegate::store::parse_gateway(text).map_err(anyhow::Error::msg)
}

pub async fn run(out: &Output, store: &Store, command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Create {
            product_key,
            device_key,
            secret,
            allow_weak_secret,
            no_secret,
            gateway: gw,
        } => {
            let spec = DeviceSpec {
                secret,
                allow_weak_secret,
                no_secret,
                gateway: gw.as_deref().map(gateway).transpose()?,
            };
            let generated = store.create_device(&product_key, &device_key, spec).await?;
            let mut text = format!("created device {device_key} of product {product_key}");
            match &generated {
                Some(secret) => text.push_str(&format!("\ndevice secret (shown once): {secret}")),
                None if no_secret => text.push_str("\nno secret: it waits for dynamic activation"),
                None => {}
            }
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "device_secret": generated}),
                &text,
            );
        }
        DeviceCommand::List { product_key } => {
            let devices = store.list_devices(product_key.as_deref()).await?;
            out.list(
                &devices,
                &[
                    "PRODUCT",
                    "DEVICE",
                    "ENABLED",
                    "ACTIVATED",
                    "ONLINE",
                    "LAST SEEN",
                    "GATEWAY",
                ],
                |d| {
                    vec![
                        d.product_key.clone(),
                        d.device_key.clone(),
                        yes_no(d.enabled),
                        yes_no(d.activated_at.is_some()),
                        yes_no(d.online),
                        time(d.last_seen_at),
                        d.gateway.clone().unwrap_or_else(|| "-".to_owned()),
                    ]
                },
            );
        }
        DeviceCommand::Show {
            product_key,
            device_key,
        } => {
            let d = store.device_info(&product_key, &device_key).await?;
            let credentials = store.credentials(&product_key, &device_key).await?;
            let mut lines = fields(&d);
            lines.extend(credentials.iter().map(|c| {
                let state = match (c.revoked_at, c.first_used_at) {
                    (Some(t), _) => format!("revoked {}", time(i64::try_from(t).ok())),
                    (None, Some(t)) => format!("live, first used {}", time(i64::try_from(t).ok())),
                    (None, None) => "live, never used".to_owned(),
                };
                ("credential", format!("{} {} ({state})", c.kind, c.identity))
            }));
            let blocks = store.device_blocks(&product_key, &device_key).await?;
            lines.extend(blocks.iter().map(|b| {
                (
                    "blocked",
                    format!(
                        "{} (after failures from {}) until {}; lift with `devicegate device unblock {product_key} \
                         {device_key}`",
                        match b.scope.as_str() {
                            "device_from_address" => "from that address",
                            _ => "from every address that failed for it",
                        },
                        b.address.as_deref().unwrap_or("-"),
                        time(Some(b.until))
                    ),
                )
            }));
            let mut shown = serde_json::to_value(&d)?;
            shown["credentials"] = json!(credentials);
            shown["blocks"] = json!(blocks);
            out.show(&shown, &lines);
        }
        DeviceCommand::Enable {
            product_key,
            device_key,
        } => {
            store.set_device_enabled(&product_key, &device_key, true).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "enabled": true}),
                &format!("enabled device {device_key} of product {product_key}"),
            );
        }
        DeviceCommand::Disable {
            product_key,
            device_key,
        } => {
            store.set_device_enabled(&product_key, &device_key, false).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "enabled": false}),
                &format!("disabled device {device_key} of product {product_key}; brokers throw it off"),
            );
        }
        DeviceCommand::Delete {
            product_key,
            device_key,
        } => {
            store.delete_device(&product_key, &device_key).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "deleted": true}),
                &format!("deleted device {device_key} of product {product_key}"),
            );
        }
        DeviceCommand::ResetActivation {
            product_key,
            device_key,
        } => {
            store.reset_activation(&product_key, &device_key).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "activated": false}),
                &format!("device {device_key} of product {product_key} is inactive again"),
            );
        }
        DeviceCommand::Register {
            product_key,
            device_key,
        } => {
            let secret = store.register_device(&product_key, &device_key).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "device_secret": secret}),
                &format!(
                    "registered device {device_key} of product {product_key}\ndevice secret (shown once): {secret}"
                ),
            );
        }
        DeviceCommand::AccessKey {
            product_key,
            device_key,
            revoke: Some(access_key),
        } => {
            let count = store
                .revoke_access_keys(
                    &product_key,
                    &device_key,
                    Some(access_key.as_str()).filter(|a| !a.is_empty()),
                )
                .await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "revoked": count}),
                &format!(
                    "revoked {count} access key(s) of device {device_key} of product {product_key}; tokens already \
                     issued live until they expire (device revoke-tokens ends them now)"
                ),
            );
        }
        DeviceCommand::AccessKey {
            product_key,
            device_key,
            revoke: None,
        } => {
            let pair = store.create_access_key(&product_key, &device_key).await?;
            out.done(
                json!({"accessKey": pair.access_key, "secretKey": pair.secret_key}),
                &format!(
                    "created an access key for device {device_key} of product {product_key} (the secret key is \
                     shown once)\naccessKey: {}\nsecretKey: {}",
                    pair.access_key, pair.secret_key
                ),
            );
        }
        DeviceCommand::Unblock {
            product_key,
            device_key,
        } => {
            store.unblock_device(&product_key, &device_key).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "unblocked": true}),
                &format!(
                    "lifted the failed-login blocks of device {device_key} of product {product_key} on every broker"
                ),
            );
        }
        DeviceCommand::RevokeTokens {
            product_key,
            device_key,
        } => {
            store.revoke_tokens(&product_key, &device_key).await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "tokens_revoked": true}),
                &format!(
                    "revoked every token of device {device_key} of product {product_key}; brokers close its token \
                     sessions"
                ),
            );
        }
        DeviceCommand::Assign {
            product_key,
            device_key,
            server,
            clear: _,
        } => {
            store
                .assign_server(&product_key, &device_key, server.as_deref())
                .await?;
            out.done(
                json!({"product_key": product_key, "device_key": device_key, "server": server}),
                &match &server {
                    Some(url) => format!("assigned device {device_key} of product {product_key} to {url}"),
                    None => format!("device {device_key} of product {product_key} follows its product's assignment"),
                },
            );
        }
        DeviceCommand::Psk(args) => super::psk::run(out, store, args).await?,
        DeviceCommand::Cert(cmd) => super::cert::run(out, store, cmd).await?,
        DeviceCommand::Import {
            product_key,
            file,
            batch_size,
            allow_weak_secret,
        } => {
            super::import::run(out, store, &product_key, &file, batch_size as usize, allow_weak_secret).await?;
        }
    }
    Ok(())
}

fn fields(d: &DeviceInfo) -> Vec<(&'static str, String)> {
    vec![
        ("product", d.product_key.clone()),
        ("device", d.device_key.clone()),
        ("guid", d.guid.clone().unwrap_or_else(|| "-".to_owned())),
        ("enabled", yes_no(d.enabled)),
        (
            "activated",
            d.activated_at
                .map_or("no".to_owned(), |t| format!("yes, {}", time(Some(t)))),
        ),
        ("online", yes_no(d.online)),
        ("node", d.node.clone().unwrap_or_else(|| "-".to_owned())),
        ("last seen", time(d.last_seen_at)),
        ("last address", d.last_address.clone().unwrap_or_else(|| "-".to_owned())),
        ("gateway", d.gateway.clone().unwrap_or_else(|| "-".to_owned())),
        ("secret", if d.has_secret { "set" } else { "none" }.to_owned()),
        ("pending activation", yes_no(d.pending_activation)),
        ("created", time(Some(d.created_at))),
    ]
}
