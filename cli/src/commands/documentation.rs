//! `devicegate completions` and `devicegate manual`: shell completion
//! scripts and man pages, generated from the clap definitions in `args.rs`
//! so they never drift from what the binary accepts. The Debian package
//! (`scripts/package.sh`) ships both.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use serde_json::json;

use crate::args::Cli;
use crate::output::Output;

/// Writes the completion script for `shell` to standard output.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    // clap_complete panics when its writer fails (a closed pipe), so the
    // script is made in memory and written here, where a failure is an error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "devicegate", &mut script);
    std::io::stdout()
        .write_all(&script)
        .context("cannot write the completion script to standard output")
}

/// Writes `devicegate.1` and one page per subcommand (`devicegate-device-create.1`, …) into `dir`.
pub fn manual(out: &Output, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let command = Cli::command();
    clap_mangen::generate_to(command, dir).with_context(|| format!("cannot write man pages into {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".1"))
        .count();
    out.done(
        json!({"directory": dir, "pages": pages}),
        &format!("wrote {pages} man pages into {}", dir.display()),
    );
    Ok(())
}
