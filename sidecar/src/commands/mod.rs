//! One file per subcommand, each a shell over one library call that renders its report as
//! a table or JSON: the only code of the sidecar that prints.

mod backup;
mod demo;
mod json;
mod logging;
mod logs;
mod maintain;
mod messages;
mod progress;
mod remote;
mod run;
mod schedule;
mod snapshot;
mod status;
mod system;
mod tools;

use std::{
    io::{self, IsTerminal, Write},
    path::PathBuf,
    sync::Arc,
};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use mhm_sidecar::{error::usage, lock, recover, Ctx};

pub use json::emit_json;
use run::Run;

use crate::{
    cli::{Cli, Command, RemoteCommand},
    exit_codes::ExitCode,
};

/// Writes `bytes` to stdout as they are; a closed stdout ends the command quietly.
fn print_bytes(bytes: &[u8]) -> Result<ExitCode> {
    match io::stdout().lock().write_all(bytes) {
        Err(e) if crate::out::closed(&e) => Ok(ExitCode::Success),
        other => other.context("writing to stdout").map(|()| ExitCode::Success),
    }
}

/// The run's time: `--now`/`MHM_NOW` (RFC 3339), else the system clock.
fn parse_now(now: Option<&str>) -> Result<DateTime<Utc>> {
    match now {
        Some(s) => Ok(DateTime::parse_from_rfc3339(s.trim())
            .map_err(|e| {
                usage(format!(
                    "invalid value {s:?} for --now/MHM_NOW: expected RFC 3339, e.g. 2026-11-26T02:00:00Z ({e})"
                ))
            })?
            .with_timezone(&Utc)),
        None => Ok(Utc::now()),
    }
}

/// Refuses a folder that is not an MHM root (none of `data/`, `logs/`, `.env`), naming it
/// and where it came from, before anything is created: a scheduler entry that forgot
/// `MHM_ROOT` must fail loudly, not make empty backups in a home folder forever.
fn check_root(root: &std::path::Path, given: bool) -> Result<()> {
    let is_dir = root.is_dir();
    if is_dir && ["data", "logs", ".env"].iter().any(|p| root.join(p).exists()) {
        return Ok(());
    }
    let from = if !given {
        "the current directory (no --root, no MHM_ROOT)"
    } else if std::env::args_os()
        .any(|a| a == "--root" || a.to_string_lossy().starts_with("--root="))
    {
        "--root"
    } else {
        "MHM_ROOT"
    };
    let what = if is_dir {
        "is not an MHM root (it has none of data/, logs/, .env)"
    } else {
        "is not a folder"
    };
    Err(usage(format!(
        "{} {what}; it was taken from {from}; give the root with --root DIR or MHM_ROOT",
        root.display()
    )))
}

/// Runs the parsed command line; with `--json`, prints its one JSON object (an error
/// included) whatever the outcome. Returns the exit code, or the error for `main` to show.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let json = cli.global.json && !matches!(cli.command, Command::Completions(_) | Command::Man);
    let command = cli.command.describe();
    let result = run_command(cli);
    if json {
        let (code, error) = match &result {
            Ok(code) => (*code, None),
            Err(e) => (crate::exit_codes::of_error(e), Some(format!("{e:#}"))),
        };
        emit_json(&command, code, error.as_deref())?;
    }
    result
}

fn run_command(cli: Cli) -> Result<ExitCode> {
    // Made from the command line's own definitions; no root needed.
    match &cli.command {
        Command::Completions(args) => {
            let mut out = Vec::new();
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "mhm-sidecar", &mut out);
            return print_bytes(&out);
        }
        Command::Man => {
            let mut out = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut out)
                .context("rendering the manual page")?;
            return print_bytes(&out);
        }
        _ => {}
    }
    let root: PathBuf = match &cli.global.root {
        Some(root) => root.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let now = parse_now(cli.global.now.as_deref())?;
    // `remote restore` is the way back to an empty machine: it takes an empty or missing
    // folder as the root (and makes it).
    let fire_drill = matches!(&cli.command, Command::Remote(r) if matches!(r.command, RemoteCommand::Restore(_)));
    let empty = root.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
    // A key pair needs no root (it is made once, anywhere, and kept off the machine).
    let keygen =
        matches!(&cli.command, Command::Remote(r) if matches!(r.command, RemoteCommand::Keygen(_)));
    if fire_drill && !root.exists() {
        std::fs::create_dir_all(&root)
            .with_context(|| format!("making the root {}", root.display()))?;
    } else if !(matches!(cli.command, Command::Demo(_)) || fire_drill && empty || keygen) {
        check_root(&root, cli.global.root.is_some())?;
    }
    let json = cli.global.json;
    let mut ctx = Ctx::new(&root, now)?;
    if !json && io::stderr().is_terminal() {
        ctx = ctx.with_progress(Arc::new(progress::Bars));
    }
    let run = Run { ctx, json, dry_run: cli.global.dry_run };
    // Every bad setting at once, named by every command: `status` reports them as reasons
    // it is unhealthy, `maintain` runs the jobs that do not depend on them (and exits 2).
    // Any other command stops (exit 2) naming them all when one is a LOG_* setting (every
    // run that changes files logs through the writer, and the `logs` commands read them;
    // no flag replaces them); otherwise it names them and stops only if it reads one it
    // needs (a flag given in its place wins, as always).
    // A `.env` line that does not parse and holds no setting the sidecar reads is named
    // (`status` lists it among its warnings) and stops nothing, as python-dotenv skips it.
    // One whose key could not be read may hold any setting: it stops these commands too.
    if !matches!(cli.command, Command::Status | Command::Demo(_)) {
        for w in run.settings.warnings() {
            eprintln!("warning: {w}");
        }
    }
    if !matches!(cli.command, Command::Status | Command::Maintain | Command::Demo(_)) {
        let bad = run.settings.bad();
        if !mhm_sidecar::settings::among(&bad, &["LOG_", "DISABLE_LOG_ROTATION"]).is_empty()
            || bad.iter().any(|b| b.name.is_empty())
        {
            let all: Vec<String> = bad.iter().map(ToString::to_string).collect();
            return Err(usage(all.join("\nerror: ")));
        }
        for b in &bad {
            eprintln!("error: {b}");
        }
    }
    let changes = cli.command.changes_files(run.dry_run);
    // The lock first: a second run must not even touch the sidecar's log.
    let _lock = if changes { Some(lock::acquire(&run)?) } else { None };
    // Only a run that changes files logs (its actions): read-only commands (`status`,
    // `list`, `verify`, `validate`, `logs cat`, dry runs) create and change no file, not
    // even `logs/sidecar.log` and the writer's hidden files beside it.
    let _log = if changes { logging::init(&run) } else { None };
    if _lock.is_some() {
        // A restore killed half way is rolled back, and dead runs' temporary files go,
        // before anything else happens.
        for msg in recover::after_crash(&run) {
            eprintln!("{msg}");
            tracing::warn!(target: "mhm::sidecar", "{msg}");
        }
    }
    tracing::info!(target: "mhm::sidecar", "mhm-sidecar {} (root {}{})", cli.command.describe(), run.root.display(), if run.dry_run { ", dry run" } else { "" });
    let code = match &cli.command {
        Command::Logs(c) => logs::run(&run, c),
        Command::Backup(c) => backup::run(&run, c),
        Command::System(c) => system::run(&run, c),
        Command::Maintain => maintain::run(&run),
        Command::Status => status::run(&run),
        Command::Messages(c) => messages::run(&run, c),
        Command::Tools(c) => tools::run(&run, c),
        Command::Snapshot(c) => snapshot::run(&run, c),
        Command::Demo(args) => demo::run(&run, &args.dir),
        Command::Remote(args) => remote::run(&run, args),
        Command::Schedule(c) => schedule::run(&run, c),
        Command::Completions(_) | Command::Man => Ok(ExitCode::Success),
    }?;
    tracing::info!(target: "mhm::sidecar", "done: exit code {}", code.code());
    Ok(code)
}
