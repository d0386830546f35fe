//! `logs archive | list | cat | restore` (SPEC section 2).

use std::{
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use mhm_log::{naming::CopyName, retention};

use crate::{
    archival::{self, CopyError, LogDir},
    cli::{CatArgs, LogRestoreArgs, LogsCommand},
    context::Ctx,
    errors::usage,
    exit_codes::ExitCode,
    fsutil,
};

pub fn run(ctx: &Ctx, cmd: &LogsCommand) -> Result<ExitCode> {
    match cmd {
        LogsCommand::Archive(args) => archive(ctx, &archival::log_dirs(ctx, &args.dirs)?),
        LogsCommand::List(args) => list(ctx, &archival::log_dirs(ctx, &args.dirs)?),
        LogsCommand::Cat(args) => cat(ctx, args),
        LogsCommand::Restore(args) => restore(ctx, args),
    }
}

fn archive(ctx: &Ctx, dirs: &[LogDir]) -> Result<ExitCode> {
    let report = archival::archive(ctx, dirs)?;
    if ctx.json {
        ctx.print_json(&report)?;
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

fn list(ctx: &Ctx, dirs: &[LogDir]) -> Result<ExitCode> {
    let logs = archival::list(ctx, dirs)?;
    if ctx.json {
        ctx.print_json(&logs)?;
        return Ok(ExitCode::Success);
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{:<28} {:>12} {:>7} {:>7}  {:<10}  {:<10}",
        "log", "active", "backups", "archive", "oldest", "newest"
    )?;
    let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
    for l in &logs {
        let name = if l.dir == "logs" { l.name.clone() } else { format!("{}/{}", l.dir, l.name) };
        let active = l.active_bytes.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
        writeln!(
            out,
            "{name:<28} {active:>12} {:>7} {:>7}  {:<10}  {:<10}",
            l.backups,
            l.archives,
            day(l.oldest),
            day(l.newest)
        )?;
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

fn log_dir(ctx: &Ctx, dir: &Option<PathBuf>) -> Result<LogDir> {
    match dir {
        Some(d) => Ok(archival::log_dirs(ctx, std::slice::from_ref(d))?
            .pop()
            .unwrap_or_else(|| LogDir::new(ctx.logs_dir(), &ctx.log_settings))),
        None => Ok(LogDir::new(ctx.logs_dir(), &ctx.log_settings)),
    }
}

fn cat(ctx: &Ctx, args: &CatArgs) -> Result<ExitCode> {
    let log = archival::log_file_name(&args.name)?;
    let since = parse_day("--since", &args.since)?;
    let until = parse_day("--until", &args.until)?;
    let dir = log_dir(ctx, &args.dir)?;
    let copies = dir.copies(&log, ctx)?;
    let active = dir.dir.join(&log);
    if copies.backups.is_empty() && copies.archive.is_empty() && !active.is_file() {
        return Err(usage(format!(
            "no log named {log} in {} (no active file, no copies)",
            dir.dir.display()
        )));
    }
    let wanted = |day: NaiveDate| since.is_none_or(|s| day >= s) && until.is_none_or(|u| day <= u);
    let today = ctx.zone().day(ctx.now_nanos());
    let mut sources: Vec<(PathBuf, bool)> = copies
        .archive
        .iter()
        .chain(&copies.backups)
        .filter(|c| wanted(c.day))
        .map(|c| (c.path.clone(), c.name.gz))
        .collect();
    if active.is_file() && wanted(today) {
        sources.push((active, false));
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut problems = 0;
    for (path, gz) in sources {
        match archival::copy_out(&path, gz, &mut out) {
            Ok(_) => {}
            Err(CopyError::Read(msg)) => {
                out.flush().context("writing to stdout")?;
                eprintln!("problem: {msg}");
                problems += 1;
            }
            Err(CopyError::Write(e)) => return Err(e).context("writing to stdout"),
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(ExitCode::from_ok(problems == 0))
}

fn restore(ctx: &Ctx, args: &LogRestoreArgs) -> Result<ExitCode> {
    let dir = log_dir(ctx, &args.dir)?;
    let src = find_copy(ctx, &dir, &args.copy)?;
    let file_name = src.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(name) = CopyName::parse(file_name) else {
        return Err(usage(format!(
            "{} is not a log copy (expected <name>.log.<YYYY-MM-DD>[.N][.gz])",
            src.display()
        )));
    };
    let target = fsutil::unique_path(&dir.dir.join(format!("{}.restored", name.log)));
    if ctx.dry_run {
        println!("would restore {} -> {}", ctx.show(&src), ctx.show(&target));
        return Ok(ExitCode::Success);
    }
    fs::create_dir_all(&dir.dir).with_context(|| format!("creating {}", dir.dir.display()))?;
    let tmp = retention::temp_path(&target);
    let result = (|| -> Result<()> {
        let mut out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        match archival::copy_out(&src, name.gz, &mut out) {
            Ok(_) => {}
            Err(CopyError::Read(msg)) => anyhow::bail!("{msg}"),
            Err(CopyError::Write(e)) => {
                return Err(e).with_context(|| format!("writing {}", tmp.display()))
            }
        }
        out.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        drop(out);
        // We hold the sidecar lock, and only the sidecar writes `.restored` files.
        if target.symlink_metadata().is_ok() {
            anyhow::bail!("{} appeared while restoring", target.display());
        }
        fs::rename(&tmp, &target)
            .with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
        retention::sync_dir(&target);
        Ok(())
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!("restoring {}", src.display())));
    }
    tracing::info!(target: "mhm::sidecar", "logs restore: {} -> {}", src.display(), target.display());
    if ctx.json {
        ctx.print_json(
            &serde_json::json!({"copy": ctx.show(&src), "restored": ctx.show(&target)}),
        )?;
    } else {
        println!("restored {} -> {}", ctx.show(&src), ctx.show(&target));
    }
    Ok(ExitCode::Success)
}

/// A copy given as a path (absolute, or relative to the current folder or the root), or
/// as a file name found in `backups/` or `archive/`.
fn find_copy(ctx: &Ctx, dir: &LogDir, copy: &str) -> Result<PathBuf> {
    let as_path = Path::new(copy);
    let mut candidates = vec![as_path.to_path_buf(), ctx.root.join(as_path)];
    if !copy.contains(['/', '\\']) {
        candidates.push(dir.backups.join(copy));
        candidates.push(dir.archive.join(copy));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        usage(format!(
            "no copy {copy:?}: not a file, and not found in {} or {}",
            dir.backups.display(),
            dir.archive.display()
        ))
    })
}
