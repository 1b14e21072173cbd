//! Registration agents (IDENTITIES.md §6): bearer tokens scoped to
//! products, or to the admin API, stored as their SHA-256. What an agent
//! may register goes through [`Store::register_device`], the CLI's rule.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::Row;

use super::admin::{check_key, to_i64};
use super::credentials::random;
use super::{Store, StoreError};
use crate::clock::now_ms;
use crate::credentials::KeyKind;

/// An agent's bearer token just created: the only time it is shown.
/// `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct NewAgent {
    /// The bearer token, 43 characters of base64url.
    pub token: String,
    /// When it expires, ms since the epoch, if it does.
    #[serde(rename = "expiresAt")]
    pub expires_at: Option<u64>,
}

impl std::fmt::Debug for NewAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAgent")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// An agent as listed; never its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentInfo {
    /// Its name.
    pub name: String,
    /// The products it may register devices of.
    pub products: Vec<String>,
    /// Whether it may use the admin API.
    pub admin: bool,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Expiry, ms since the epoch, if any.
    pub expires_at: Option<i64>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// An authenticated agent: what its token lets it do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// Its name.
    pub name: String,
    /// The products it may register devices of.
    pub products: Vec<String>,
    /// Whether it may use the admin API (and act on every product).
    pub admin: bool,
}

impl Agent {
    /// Refuses unless the agent may act on product `pk`.
    pub fn require_product(&self, pk: &str) -> Result<(), StoreError> {
        if self.admin || self.products.iter().any(|p| p == pk) {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!(
                "agent `{}` is not allowed to register devices of product `{pk}`",
                self.name
            )))
        }
    }

    /// Refuses unless the agent was created with `--admin`.
    pub fn require_admin(&self) -> Result<(), StoreError> {
        if self.admin {
            Ok(())
        } else {
            Err(StoreError::Forbidden(format!(
                "agent `{}` is not an admin agent (agent create --admin)",
                self.name
            )))
        }
    }
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn agent_info(row: &sqlx::any::AnyRow) -> Result<AgentInfo, sqlx::Error> {
    let products: String = row.try_get("products")?;
    Ok(AgentInfo {
        name: row.try_get("name")?,
        products: products.lines().map(str::to_owned).collect(),
        admin: super::rows::flag(row, "admin")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    })
}

impl Store {
    /// Creates an agent named `name` for `products` (or, `admin`, for the
    /// admin API), living `ttl_ms` (forever when `None`); returns its token.
    pub async fn create_agent(
        &self,
        name: &str,
        products: &[String],
        admin: bool,
        ttl_ms: Option<u64>,
    ) -> Result<NewAgent, StoreError> {
        check_key(KeyKind::Device, name).map_err(|e| StoreError::Invalid(format!("agent name: {e}")))?;
        if products.is_empty() && !admin {
            return Err(StoreError::Invalid(
                "an agent needs --products PK[,PK…] (or --admin for the admin API)".to_owned(),
            ));
        }
        let token = URL_SAFE_NO_PAD.encode(random::<32>()?);
        let now = now_ms();
        let expires_at = ttl_ms.map(|ttl| now.saturating_add(ttl));
        let mut tx = self.write_transaction().await?;
        for pk in products {
            let found = sqlx::query("SELECT 1 AS one FROM products WHERE product_key = $1")
                .bind(pk)
                .fetch_optional(&mut *tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::UnknownProduct(pk.clone()));
            }
        }
        let exists = sqlx::query("SELECT 1 AS one FROM agents WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(StoreError::Invalid(format!(
                "agent `{name}` exists: `agent revoke {name}` and create it again, or choose another name"
            )));
        }
        sqlx::query(
            "INSERT INTO agents (name, token_hash, products, admin, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(name)
        .bind(token_hash(&token))
        .bind(products.join("\n"))
        .bind(i64::from(admin))
        .bind(to_i64(now))
        .bind(expires_at.map(to_i64))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(NewAgent { token, expires_at })
    }

    /// Every agent, by name.
    pub async fn list_agents(&self) -> Result<Vec<AgentInfo>, StoreError> {
        let rows =
            sqlx::query("SELECT name, products, admin, created_at, expires_at, revoked_at FROM agents ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.iter().map(agent_info).collect::<Result<_, _>>()?)
    }

    /// Revokes the agent `name`: its token is refused from now on.
    pub async fn revoke_agent(&self, name: &str) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE agents SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(to_i64(now_ms()))
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Invalid(format!(
                "no live agent named `{name}` (agent list shows them)"
            )));
        }
        Ok(())
    }

    /// The agent holding the bearer token `token`, unless it is unknown,
    /// expired or revoked (all refused alike).
    pub async fn agent_by_token(&self, token: &str) -> Result<Agent, StoreError> {
        let row = sqlx::query(
            "SELECT name, products, admin, created_at, expires_at, revoked_at FROM agents WHERE token_hash = $1",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        let now = to_i64(now_ms());
        let info = row.as_ref().map(agent_info).transpose()?;
        match info {
            Some(info) if info.revoked_at.is_none() && info.expires_at.is_none_or(|e| e > now) => Ok(Agent {
                name: info.name,
                products: info.products,
                admin: info.admin,
            }),
            _ => Err(StoreError::NotAuthenticated(
                "missing, unknown, expired or revoked agent token",
            )),
        }
    }
}
