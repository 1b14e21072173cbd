//! `devicegate secrets …`: secrets at rest (issue 10 item 6).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

use anyhow::Context as _;
use serde_json::json;

use crate::args::SecretsCommand;
use crate::output::Output;
use devicegate::access_token::new_kid;
use devicegate::store::{SecretKeys, Store};

/// `secrets keygen`: needs no database.
pub fn keygen(out: &Output, path: &std::path::Path, kid: Option<String>) -> anyhow::Result<()> {
    let kid = kid.unwrap_or_else(new_kid);
    let line = SecretKeys::new_key_line(&kid)?;
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => {
            // Refuses a file others may read, or one that does not parse.
            SecretKeys::load(path)?;
            text
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let next = format!("{line}\n{existing}");
    SecretKeys::parse(&next).map_err(anyhow::Error::msg)?;
    let staged = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    file.write_all(next.as_bytes())?;
    file.sync_all()?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&staged, path).with_context(|| format!("cannot replace {}", path.display()))?;
    out.done(
        json!({"kid": kid, "file": path}),
        &format!(
            "added secret key {kid} to {} (mode 0600; new secrets are sealed with it); run `devicegate secrets seal \
             --secret-key-file {}` to seal the stored ones",
            path.display(),
            path.display()
        ),
    );
    Ok(())
}

pub async fn run(out: &Output, store: &Store, command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Keygen { out: path, kid } => keygen(out, &path, kid),
        SecretsCommand::Seal => {
            let report = store.seal_secrets().await?;
            out.done(
                json!(report),
                &format!(
                    "sealed {} plaintext secret(s), moved {} to the current key, {} already current; every \
                     product now refuses plaintext secrets",
                    report.sealed, report.resealed, report.current
                ),
            );
            Ok(())
        }
    }
}
