//! `devicegate product …`

use anyhow::Context as _;
use serde_json::json;

use crate::args::{DialectArg, ProductCommand, ProductSettings};
use crate::output::{Output, time, yes_no};
use devicegate::credentials::Dialect;
use devicegate::sign::AlgSet;
use devicegate::store::{ProductInfo, ProductSpec, ProductUpdate, Store};

/// The library's dialect for a command-line value.
pub fn dialect(arg: DialectArg) -> Dialect {
    match arg {
        DialectArg::Enos => Dialect::Enos,
        DialectArg::Aliyun => Dialect::Aliyun,
    }
}

fn sign_methods(list: Option<&str>) -> anyhow::Result<Option<AlgSet>> {
    list.map(|l| AlgSet::parse(l).map_err(anyhow::Error::msg))
        .transpose()
        .context("--sign-methods")
}

pub async fn run(out: &Output, store: &Store, command: ProductCommand) -> anyhow::Result<()> {
    match command {
        ProductCommand::Create {
            product_key,
            dialect: d,
            dynamic_activation,
            free_client_id,
            shared_subscriptions,
            allow_retain,
            auto_register_certs,
            settings,
        } => {
            let mut spec = ProductSpec::new(&product_key, dialect(d));
            spec.auto_register_certs = auto_register_certs;
            spec.secret = settings.secret;
            spec.allow_weak_secret = settings.allow_weak_secret;
            if let Some(set) = sign_methods(settings.sign_methods.as_deref())? {
                spec.sign_methods = set.to_list();
            }
            spec.timestamp_window_secs = settings.timestamp_window.filter(|w| *w > 0);
            spec.offline_after_secs = settings.offline_after.unwrap_or(0);
            spec.max_sub_devices = settings.max_sub_devices;
            spec.extra_topics = settings.topics;
            spec.token_ttl_secs = settings.token_ttl;
            spec.server_url = settings.server.filter(|s| !s.is_empty());
            spec.dynamic_activation = dynamic_activation;
            spec.free_client_id = free_client_id;
            spec.shared_subscriptions = shared_subscriptions;
            spec.allow_retain = allow_retain;
            let generated = store.create_product(spec).await?;
            let mut text = format!("created product {product_key}");
            if let Some(secret) = &generated {
                text.push_str(&format!("\nproduct secret (shown once): {secret}"));
            }
            out.done(json!({"product_key": product_key, "product_secret": generated}), &text);
        }
        ProductCommand::List => {
            let products = store.list_products().await?;
            out.list(
                &products,
                &["PRODUCT", "DIALECT", "SIGN METHODS", "DYNAMIC", "DEVICES", "CREATED"],
                |p| {
                    vec![
                        p.spec.product_key.clone(),
                        p.spec.dialect.clone(),
                        p.spec.sign_methods.clone(),
                        yes_no(p.spec.dynamic_activation),
                        p.devices.to_string(),
                        time(Some(p.created_at)),
                    ]
                },
            );
        }
        ProductCommand::Show { product_key } => {
            let p = store.product_info(&product_key).await?;
            out.show(&p, &fields(&p));
        }
        ProductCommand::Update {
            product_key,
            dialect: d,
            dynamic_activation,
            free_client_id,
            shared_subscriptions,
            allow_retain,
            auto_register_certs,
            clear_topics,
            settings,
        } => {
            let update = update(store, &product_key, d, settings, clear_topics).await?;
            let update = ProductUpdate {
                dynamic_activation,
                free_client_id,
                shared_subscriptions,
                allow_retain,
                auto_register_certs,
                ..update
            };
            store.update_product(&product_key, update).await?;
            out.done(
                json!({"product_key": product_key, "updated": true}),
                &format!("updated product {product_key}"),
            );
        }
        ProductCommand::TrustCa { product_key, file } => {
            let pem =
                std::fs::read_to_string(&file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let fingerprint = store.trust_ca(Some(&product_key), &pem).await?;
            out.done(
                json!({"product_key": product_key, "fingerprint": fingerprint}),
                &format!("product {product_key} trusts the CA {fingerprint} for just-in-time registration"),
            );
        }
        ProductCommand::Delete { product_key } => {
            let devices = store.delete_product(&product_key).await?;
            out.done(
                json!({"product_key": product_key, "deleted": true, "devices_deleted": devices}),
                &format!("deleted product {product_key} and its {devices} devices"),
            );
        }
    }
    Ok(())
}

async fn update(
    store: &Store,
    pk: &str,
    d: Option<DialectArg>,
    settings: ProductSettings,
    clear_topics: bool,
) -> anyhow::Result<ProductUpdate> {
    let extra_topics = if clear_topics || !settings.topics.is_empty() {
        let mut topics = if clear_topics {
            Vec::new()
        } else {
            store.product_info(pk).await?.spec.extra_topics
        };
        topics.extend(settings.topics);
        Some(topics)
    } else {
        None
    };
    Ok(ProductUpdate {
        secret: settings.secret,
        allow_weak_secret: settings.allow_weak_secret,
        dialect: d.map(dialect),
        sign_methods: sign_methods(settings.sign_methods.as_deref())?,
        timestamp_window_secs: settings.timestamp_window,
        offline_after_secs: settings.offline_after,
        max_sub_devices: settings.max_sub_devices,
        extra_topics,
        token_ttl_secs: settings.token_ttl,
        server_url: settings.server,
        ..ProductUpdate::default()
    })
}

fn fields(p: &ProductInfo) -> Vec<(&'static str, String)> {
    let s = &p.spec;
    vec![
        ("product", s.product_key.clone()),
        ("dialect", s.dialect.clone()),
        (
            "product secret",
            if p.has_secret {
                "set".to_owned()
            } else {
                "none".to_owned()
            },
        ),
        ("sign methods", s.sign_methods.clone()),
        (
            "timestamp window",
            s.timestamp_window_secs.map_or("off".to_owned(), |w| format!("{w} s")),
        ),
        ("dynamic activation", yes_no(s.dynamic_activation)),
        ("free client id", yes_no(s.free_client_id)),
        ("shared subscriptions", yes_no(s.shared_subscriptions)),
        ("retain", yes_no(s.allow_retain)),
        ("auto-register certificates", yes_no(s.auto_register_certs)),
        (
            "token TTL",
            format!(
                "{} s",
                s.token_ttl_secs.unwrap_or(devicegate::registry::DEFAULT_TOKEN_TTL_SECS)
            ),
        ),
        (
            "assigned server",
            s.server_url.clone().unwrap_or_else(|| "-".to_owned()),
        ),
        (
            "offline after",
            if s.offline_after_secs == 0 {
                "never".to_owned()
            } else {
                format!("{} s", s.offline_after_secs)
            },
        ),
        (
            "max sub-devices",
            s.max_sub_devices
                .map_or("dialect default".to_owned(), |m| m.to_string()),
        ),
        (
            "extra topics",
            if s.extra_topics.is_empty() {
                "-".to_owned()
            } else {
                s.extra_topics.join(", ")
            },
        ),
        ("devices", p.devices.to_string()),
        ("created", time(Some(p.created_at))),
    ]
}
