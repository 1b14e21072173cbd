//! `devicegate principal …`

use std::io::BufRead as _;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::args::PrincipalCommand;
use crate::output::{Output, time};
use devicegate::principal::{generate_secret, hash_password};
use devicegate::store::Store;

pub async fn run(out: &Output, store: &Store, command: PrincipalCommand) -> anyhow::Result<()> {
    match command {
        PrincipalCommand::Create {
            name,
            password_stdin: true,
            allow,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!("the password read from standard input is empty");
            }
            let hash = hash_password(password.as_bytes()).context("cannot hash the password")?;
            store.create_principal(&name, &hash, &allow).await?;
            out.done(
                json!({"name": name, "rules": allow}),
                &format!("created principal {name}"),
            );
        }
        PrincipalCommand::Create {
            name,
            password_stdin: false,
            allow,
        } => {
            let (secret, hash) = generate_secret().context("cannot generate a secret")?;
            store.create_principal(&name, &hash, &allow).await?;
            let password = secret.expose_str();
            out.done(
                json!({"name": name, "rules": allow, "password": password}),
                &format!("created principal {name}; its password (shown once): {password}"),
            );
        }
        PrincipalCommand::List => {
            let principals = store.list_principals().await?;
            out.list(&principals, &["NAME", "RULES", "CREATED"], |p| {
                vec![p.name.clone(), p.rules.join(" "), time(Some(p.created_at))]
            });
        }
        PrincipalCommand::Delete { name } => {
            store.delete_principal(&name).await?;
            out.done(
                json!({"name": name, "deleted": true}),
                &format!("deleted principal {name}"),
            );
        }
    }
    Ok(())
}
