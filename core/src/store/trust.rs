//! The CAs just-in-time certificate registration trusts (IDENTITIES.md
//! §3): one product's (`product trust-ca`) and the devicegate CA every
//! product with `auto_register_certs` trusts (`ca init`).

use std::collections::HashMap;

use sqlx::Row;
use x509_parser::pem::parse_x509_pem;

use super::writes::record_change;
use super::{Store, StoreError};
use crate::clock::now_ms;
use crate::credentials::Fingerprint;

/// The scope of the devicegate CA, trusted by every product.
const EVERY_PRODUCT: &str = "*";

/// The DER of a PEM CA certificate, refused unless it is one.
fn ca_der(pem: &str) -> Result<Vec<u8>, StoreError> {
    let (_, block) = parse_x509_pem(pem.as_bytes()).map_err(|_| {
        StoreError::Invalid("not a PEM certificate: expected a `-----BEGIN CERTIFICATE-----` block".to_owned())
    })?;
    let cert = block
        .parse_x509()
        .map_err(|e| StoreError::Invalid(format!("the certificate does not parse as X.509: {e}")))?;
    if !cert.is_ca() {
        return Err(StoreError::Invalid(
            "the certificate is not a CA certificate (basicConstraints CA:TRUE)".to_owned(),
        ));
    }
    Ok(block.contents)
}

impl Store {
    /// Trusts the CA certificate `pem` for just-in-time registration by
    /// product `pk`, or by every product when `pk` is `None` (the
    /// devicegate CA). Trusting it twice changes nothing.
    pub async fn trust_ca(&self, pk: Option<&str>, pem: &str) -> Result<String, StoreError> {
        let der = ca_der(pem)?;
        let fingerprint = Fingerprint::of(&der).as_str().to_owned();
        let mut tx = self.write_transaction().await?;
        let products: Vec<String> = match pk {
            Some(pk) => {
                let found = sqlx::query("SELECT product_key FROM products WHERE product_key = $1")
                    .bind(pk)
                    .fetch_optional(&mut *tx)
                    .await?;
                if found.is_none() {
                    return Err(StoreError::UnknownProduct(pk.to_owned()));
                }
                vec![pk.to_owned()]
            }
            None => sqlx::query("SELECT product_key FROM products")
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get("product_key"))
                .collect::<Result<_, _>>()?,
        };
        sqlx::query(
            "INSERT INTO trusted_cas (scope, fingerprint, pem, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, fingerprint) DO NOTHING",
        )
        .bind(pk.unwrap_or(EVERY_PRODUCT))
        .bind(&fingerprint)
        .bind(pem)
        .bind(i64::try_from(now_ms()).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        for product in &products {
            record_change(&mut tx, "product", Some(product), None, None, now_ms()).await?;
        }
        tx.commit().await?;
        Ok(fingerprint)
    }

    /// The trusted CAs (DER) by scope: a product key, or `*`.
    pub(super) async fn trusted_cas(&self, pk: Option<&str>) -> Result<HashMap<String, Vec<Box<[u8]>>>, StoreError> {
        let rows = match pk {
            Some(pk) => {
                sqlx::query("SELECT scope, pem FROM trusted_cas WHERE scope = $1 OR scope = $2")
                    .bind(pk)
                    .bind(EVERY_PRODUCT)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT scope, pem FROM trusted_cas")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        let mut by_scope: HashMap<String, Vec<Box<[u8]>>> = HashMap::new();
        for row in rows {
            let pem: String = row.try_get("pem")?;
            match ca_der(&pem) {
                Ok(der) => by_scope.entry(row.try_get("scope")?).or_default().push(der.into()),
                Err(e) => tracing::warn!("skipping a stored trusted CA: {e}"),
            }
        }
        Ok(by_scope)
    }

    /// Attaches to each product the CAs it trusts.
    pub(super) fn attach_trusted_cas(
        products: &mut [crate::registry::Product],
        by_scope: &HashMap<String, Vec<Box<[u8]>>>,
    ) {
        let every = by_scope.get(EVERY_PRODUCT).cloned().unwrap_or_default();
        for product in products {
            product.trusted_cas = every.clone();
            if let Some(own) = by_scope.get(&*product.key) {
                product.trusted_cas.extend(own.iter().cloned());
            }
        }
    }
}
