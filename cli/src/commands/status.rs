//! `devicegate status`: device counts by state, per product.

use crate::output::Output;
use devicegate::store::Store;

pub async fn run(out: &Output, store: &Store) -> anyhow::Result<()> {
    let status = store.status().await?;
    out.list(
        &status,
        &[
            "PRODUCT",
            "DEVICES",
            "ENABLED",
            "DISABLED",
            "ACTIVATED",
            "INACTIVE",
            "ONLINE",
        ],
        |s| {
            [s.total, s.enabled, s.disabled, s.activated, s.inactive, s.online]
                .iter()
                .fold(vec![s.product_key.clone()], |mut row, n| {
                    row.push(n.to_string());
                    row
                })
        },
    );
    Ok(())
}
