//! `devicegate agent …`: registration agents (IDENTITIES.md §6).

use serde_json::json;

use crate::args::AgentCommand;
use crate::output::{Output, time};
use devicegate::store::Store;

/// `24h`, `30d`, … as milliseconds; `forever` as `None`.
fn ttl_ms(text: &str) -> anyhow::Result<Option<u64>> {
    if text == "forever" {
        return Ok(None);
    }
    let ttl = humantime::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("--ttl `{text}`: {e} (e.g. 30m, 24h, 30d, or forever)"))?;
    Ok(Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))
}

pub async fn run(out: &Output, store: &Store, command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Create {
            name,
            products,
            ttl,
            admin,
        } => {
            let agent = store.create_agent(&name, &products, admin, ttl_ms(&ttl)?).await?;
            let expires = agent
                .expires_at
                .map_or("never".to_owned(), |e| time(Some(i64::try_from(e).unwrap_or(i64::MAX))));
            out.done(
                json!({"name": name, "token": agent.token, "expiresAt": agent.expires_at}),
                &format!(
                    "created agent {name} (expires {expires}); its bearer token (shown once):\n{}",
                    agent.token
                ),
            );
        }
        AgentCommand::List => {
            let agents = store.list_agents().await?;
            out.list(
                &agents,
                &["NAME", "PRODUCTS", "ADMIN", "CREATED", "EXPIRES", "REVOKED"],
                |a| {
                    vec![
                        a.name.clone(),
                        if a.products.is_empty() {
                            "-".to_owned()
                        } else {
                            a.products.join(",")
                        },
                        if a.admin { "yes" } else { "no" }.to_owned(),
                        time(Some(a.created_at)),
                        a.expires_at.map_or("never".to_owned(), |e| time(Some(e))),
                        time(a.revoked_at),
                    ]
                },
            );
        }
        AgentCommand::Revoke { name } => {
            store.revoke_agent(&name).await?;
            out.done(
                json!({"name": name, "revoked": true}),
                &format!("revoked agent {name}; its token is refused from now on"),
            );
        }
    }
    Ok(())
}
