//! `devicegate`: manage products, devices and principals in the database a
//! broker plugin reads, import devices from CSV, and sign test credentials.
//!
//! This binary is glue: arguments come in through clap (`args.rs`), each
//! command group calls the `devicegate` library's store, and `output.rs`
//! prints tables or JSON. Exit codes: 0 success, 1 refused or failed,
//! 2 bad usage, 3 database unreachable.

mod args;
mod commands;
mod mosquitto_conf;
mod output;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, SecretsCommand};
use devicegate::store::{SecretKeys, Store, StoreError};

/// Exit code when the database cannot be reached.
const EXIT_UNREACHABLE: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service logs its requests at info; the other commands only
    // what went wrong.
    let serving = matches!(cli.command, Command::Serve(_));
    let default_filter = if serving { "info" } else { "warn" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        // The report said it all; the exit code says it to scripts.
        Err(e) if e.is::<commands::doctor::ProblemsFound>() => ExitCode::FAILURE,
        Err(e) => {
            output::error(cli.json, &e);
            let unreachable = e
                .downcast_ref::<StoreError>()
                .is_some_and(|s| matches!(s, StoreError::Unreachable { .. }));
            ExitCode::from(if unreachable { EXIT_UNREACHABLE } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = output::Output { json: cli.json };
    if let Command::Sign(sign) = &cli.command {
        return commands::sign::run(&out, sign);
    }
    if let Command::Ca(cmd) = &cli.command
        && let Some(done) = commands::ca::run_offline(&out, cmd)
    {
        return done;
    }
    if let Command::Completions { shell } = &cli.command {
        return commands::documentation::completions(*shell);
    }
    if let Command::Manual { out: dir } = &cli.command {
        return commands::documentation::manual(&out, dir);
    }
    if let Command::Doctor { config } = &cli.command {
        // The database comes from the configuration, not --database-url.
        return if commands::doctor::run(&out, config).await? {
            Ok(())
        } else {
            Err(commands::doctor::ProblemsFound.into())
        };
    }
    if let Command::Secrets(SecretsCommand::Keygen { out: path, kid }) = &cli.command {
        return commands::secrets::keygen(&out, path, kid.clone());
    }
    let keys = cli
        .secret_key_file
        .as_deref()
        .map(SecretKeys::load)
        .transpose()?
        .map(std::sync::Arc::new);
    let store = Store::connect(&cli.database_url).await?.with_secret_keys(keys);
    let result = match cli.command {
        Command::Product(cmd) => commands::product::run(&out, &store, cmd).await,
        Command::Device(cmd) => commands::device::run(&out, &store, cmd).await,
        Command::Principal(cmd) => commands::principal::run(&out, &store, cmd).await,
        Command::Status => commands::status::run(&out, &store).await,
        Command::Ca(cmd) => commands::ca::run(&out, &store, cmd).await,
        Command::Token(cmd) => commands::token::run(&out, &store, cmd).await,
        Command::Agent(cmd) => commands::agent::run(&out, &store, cmd).await,
        Command::Serve(args) => commands::serve::run(&store, args).await,
        Command::Secrets(cmd) => commands::secrets::run(&out, &store, cmd).await,
        Command::Sign(_) | Command::Doctor { .. } | Command::Completions { .. } | Command::Manual { .. } => Ok(()),
    };
    store.close().await;
    result.map_err(|e| name_the_database(e, &cli.database_url))
}

/// "Does not exist" errors say which database was looked in: the usual
/// cause is a command run against another database than the broker's.
fn name_the_database(error: anyhow::Error, url: &str) -> anyhow::Error {
    let missing = matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::UnknownProduct(_) | StoreError::UnknownDevice(..) | StoreError::UnknownPrincipal(_))
    );
    if missing {
        anyhow::anyhow!(
            "{error} in the database {} (set --database-url or DEVICEGATE_DATABASE_URL to the broker's)",
            devicegate::store::redact_url(url)
        )
    } else {
        error
    }
}
