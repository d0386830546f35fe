//! `logs archive | list | cat | restore` (SPEC section 2).

use std::io::{self, Write};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use mhm_sidecar::{
    archival::{self, CopyError, LogDir},
    error::usage,
    paths,
};

use super::json::print_json;
use super::run::Run;
use crate::{
    cli::{CatArgs, LogRestoreArgs, LogsCommand},
    exit_codes::ExitCode,
    out::{self, Table},
};

pub fn run(ctx: &Run, cmd: &LogsCommand) -> Result<ExitCode> {
    match cmd {
        LogsCommand::Archive(args) => archive(ctx, &archival::log_dirs(ctx, &args.dirs)?),
        LogsCommand::List(args) => list(ctx, &archival::log_dirs(ctx, &args.dirs)?),
        LogsCommand::Cat(args) => cat(ctx, args),
        LogsCommand::Restore(args) => restore(ctx, args),
    }
}

fn archive(ctx: &Run, dirs: &[LogDir]) -> Result<ExitCode> {
    let report = archival::archive(ctx, dirs, ctx.dry_run)?;
    if ctx.json {
        print_json(&report)?;
    } else {
        let mut out = io::stdout().lock();
        for p in &report.temps_removed {
            writeln!(out, "removed leftover {p}")?;
        }
        for s in &report.steps {
            let verb =
                if ctx.dry_run { format!("would {}", s.action) } else { s.action.to_string() };
            match &s.to {
                Some(to) => writeln!(out, "{verb} {} -> {to} ({})", s.from, s.why)?,
                None => writeln!(out, "{verb} {} ({})", s.from, s.why)?,
            }
        }
        if report.steps.is_empty() {
            writeln!(out, "nothing to archive")?;
        }
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
        tracing::warn!(target: "mhm::sidecar", "logs archive: {p}");
    }
    Ok(ExitCode::from_ok(report.problems.is_empty()))
}

fn list(ctx: &Run, dirs: &[LogDir]) -> Result<ExitCode> {
    let logs = archival::list(ctx, dirs)?;
    if ctx.json {
        print_json(&logs)?;
        return Ok(ExitCode::Success);
    }
    let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    let mut table =
        Table::new(&["log", ">active", ">backups", ">archive", ">copies", "oldest", "newest"]);
    for l in &logs {
        let name = if l.dir == "logs" { l.name.clone() } else { format!("{}/{}", l.dir, l.name) };
        table.row(vec![
            paths::printable(&name).into_owned(),
            l.active_bytes.map_or("-".into(), out::size),
            l.backups.to_string(),
            l.archives.to_string(),
            out::size(l.copies_bytes),
            day(l.oldest),
            day(l.newest),
        ]);
    }
    if logs.is_empty() {
        println!(
            "no logs in {}",
            dirs.iter().map(|d| ctx.show(&d.dir)).collect::<Vec<_>>().join(", ")
        );
    } else {
        table.print();
    }
    Ok(ExitCode::Success)
}

fn parse_day(flag: &str, s: &Option<String>) -> Result<Option<NaiveDate>> {
    s.as_deref()
        .map(|v| {
            NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
                usage(format!("invalid value {v:?} for {flag}: expected a day as YYYY-MM-DD"))
            })
        })
        .transpose()
}

fn cat(ctx: &Run, args: &CatArgs) -> Result<ExitCode> {
    if ctx.json {
        return Err(usage(
            "logs cat prints the log itself, not a report: it has no --json (for the logs \
             and their copies as JSON: `logs list --json`)",
        ));
    }
    let log = archival::log_file_name(&args.name)?;
    let since = parse_day("--since", &args.since)?;
    let until = parse_day("--until", &args.until)?;
    let dir = archival::log_dir(ctx, args.dir.as_deref())?;
    let sources = archival::history(ctx, &dir, &log, since, until)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut problems = 0;
    // Once the reader has gone away (`| head`), the copies left are still read, into
    // nothing, so the exit code is the one a whole read would have had.
    let mut closed = false;
    for (path, gz) in sources {
        let read = |out: &mut dyn Write| archival::copy_out(ctx, &path, gz, out);
        let first = if closed { read(&mut io::sink()) } else { read(&mut out) };
        let result = match first {
            // This copy again from its start: the part not yet read may hold a problem.
            Err(CopyError::Write(e)) if crate::out::closed(&e) => {
                closed = true;
                read(&mut io::sink())
            }
            other => other,
        };
        match result {
            Ok(_) => {}
            Err(CopyError::Read(msg)) => {
                if !closed {
                    closed = flushed_or_closed(&mut out)?;
                }
                eprintln!("problem: {msg}");
                problems += 1;
            }
            Err(CopyError::Write(e)) => return Err(e).context("writing to stdout"),
        }
    }
    if !closed {
        flushed_or_closed(&mut out)?;
    }
    Ok(ExitCode::from_ok(problems == 0))
}

/// Flushes `out`: `Ok(true)` when its reader has gone away.
fn flushed_or_closed(out: &mut impl Write) -> Result<bool> {
    match out.flush() {
        Ok(()) => Ok(false),
        Err(e) if crate::out::closed(&e) => Ok(true),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

fn restore(ctx: &Run, args: &LogRestoreArgs) -> Result<ExitCode> {
    let dir = archival::log_dir(ctx, args.dir.as_deref())?;
    let r = archival::restore_copy(ctx, &dir, &args.copy, ctx.dry_run)?;
    if ctx.dry_run {
        println!("would restore {} -> {}", r.copy, r.restored);
    } else if ctx.json {
        print_json(&r)?;
    } else {
        println!("restored {} -> {}", r.copy, r.restored);
    }
    Ok(ExitCode::Success)
}
