//! One file per subcommand; each a thin shell over the module that does the work.

mod backup;
mod logs;
mod maintain;
pub mod messages;
pub mod snapshot;
mod status;
mod system;
pub mod tools;

use anyhow::Result;

use crate::{
    cli::{Cli, Command},
    context::Ctx,
    exit_codes::ExitCode,
    lock, logging,
};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = Ctx::new(&cli.global)?;
    let changes = cli.command.changes_files(ctx.dry_run);
    // The lock first: a second run must not even touch the sidecar's log.
    let _lock = if changes { Some(lock::acquire(&ctx.data_dir())?) } else { None };
    let _log = if changes || ctx.logs_dir().is_dir() {
        logging::init(&ctx.logs_dir(), &ctx.log_settings)
    } else {
        None
    };
    if _lock.is_some() {
        // A restore killed half way is rolled back before anything else happens.
        for msg in crate::backup::restore::recover_interrupted(&ctx) {
            eprintln!("{msg}");
            tracing::warn!(target: "mhm::sidecar", "{msg}");
        }
    }
    tracing::info!(target: "mhm::sidecar", "run: {:?} (root {}, dry run {})", cli.command, ctx.root.display(), ctx.dry_run);
    let code = match &cli.command {
        Command::Logs(c) => logs::run(&ctx, c),
        Command::Backup(c) => backup::run(&ctx, c),
        Command::System(c) => system::run(&ctx, c),
        Command::Maintain => maintain::run(&ctx),
        Command::Status => status::run(&ctx),
        Command::Messages(c) => messages::run(&ctx, c),
        Command::Tools(c) => tools::run(&ctx, c),
        Command::Snapshot(c) => snapshot::run(&ctx, c),
        Command::Demo(args) => crate::demo::run(&ctx, &args.dir),
    }?;
    tracing::info!(target: "mhm::sidecar", "done: exit code {}", code.code());
    Ok(code)
}
