//! `snapshot create | list | verify` (SPEC section 6): a thin shell over [`crate::snapshot`].

use std::{
    io::{self, Write},
    path::PathBuf,
};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::{context::Ctx, exit_codes::ExitCode, snapshot};

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Write a verified DIR/mhm_snapshot_YYYYMMDD_HHMMSS.zip of the project's files.
    Create(SnapshotCreateArgs),
    /// List the snapshots in a folder.
    List(SnapshotDirArgs),
    /// Check a snapshot (zip or folder): every file's digest against the manifest.
    Verify(SnapshotVerifyArgs),
}

#[derive(Debug, Args)]
pub struct SnapshotCreateArgs {
    /// Where snapshots go (relative to the current directory); created when missing.
    #[arg(long, value_name = "DIR")]
    pub archive_dir: PathBuf,
    /// Also store data/ (data/backups/ always left out).
    #[arg(long)]
    pub include_user_data: bool,
    /// Write a folder instead of a zip.
    #[arg(long)]
    pub no_compress: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotDirArgs {
    /// The folder holding the snapshots.
    #[arg(long, value_name = "DIR")]
    pub archive_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SnapshotVerifyArgs {
    /// The snapshot: a .zip file or a snapshot folder.
    pub path: PathBuf,
}

impl SnapshotCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        matches!(self, SnapshotCommand::Create(_))
    }
}

pub fn run(ctx: &Ctx, cmd: &SnapshotCommand) -> Result<ExitCode> {
    match cmd {
        SnapshotCommand::Create(args) => create(ctx, args),
        SnapshotCommand::List(args) => list(ctx, args),
        SnapshotCommand::Verify(args) => verify(ctx, args),
    }
}

fn create(ctx: &Ctx, args: &SnapshotCreateArgs) -> Result<ExitCode> {
    let dir = &args.archive_dir;
    if dir.symlink_metadata().is_ok() && !dir.is_dir() {
        bail!("{}: not a folder", dir.display());
    }
    let options = snapshot::Options {
        include_user_data: args.include_user_data,
        no_compress: args.no_compress,
    };
    let (sources, warnings) = snapshot::collect(ctx, dir, &options)?;
    for w in &warnings {
        eprintln!("warning: {w}");
        tracing::warn!(target: "mhm::sidecar", "snapshot: {w}");
    }
    let stamp = ctx.now_local().format("%Y%m%d_%H%M%S").to_string();
    let name = snapshot::unique_name(dir, &stamp);
    let bytes: u64 = sources.iter().map(|s| s.size).sum();
    if ctx.dry_run {
        let target =
            if args.no_compress { dir.join(&name) } else { dir.join(format!("{name}.zip")) };
        if ctx.json {
            ctx.print_json(&serde_json::json!({
                "would_create": target, "files": sources.len(), "bytes": bytes,
                "entries": sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
            }))?;
        } else {
            let mut out = io::stdout().lock();
            writeln!(
                out,
                "would create {} with {} files ({bytes} bytes)",
                target.display(),
                sources.len()
            )?;
            for s in &sources {
                writeln!(out, "  {}", s.name)?;
            }
        }
        return Ok(ExitCode::Success);
    }
    for p in snapshot::remove_stale_temps(dir) {
        eprintln!("removed leftover {}", p.display());
        tracing::info!(target: "mhm::sidecar", "snapshot: removed leftover {}", p.display());
    }
    let (path, manifest) = snapshot::write(ctx, dir, &name, &options, &sources)?;
    tracing::info!(target: "mhm::sidecar", "snapshot create: {} ({} files, {} bytes)", path.display(), manifest.file_count, manifest.total_bytes);
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "created": path, "snapshot_name": manifest.snapshot_name,
            "created_at": manifest.created_at, "includes": manifest.includes,
            "file_count": manifest.file_count, "total_bytes": manifest.total_bytes,
        }))?;
    } else {
        println!(
            "created {} ({} files, {} bytes)",
            path.display(),
            manifest.file_count,
            manifest.total_bytes
        );
    }
    Ok(ExitCode::Success)
}

fn list(ctx: &Ctx, args: &SnapshotDirArgs) -> Result<ExitCode> {
    let snapshots = snapshot::list(&args.archive_dir)?;
    if ctx.json {
        ctx.print_json(&snapshots)?;
        return Ok(ExitCode::Success);
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "{:<36} {:<6} {:<25} {:>8} {:>12}  includes",
        "name", "kind", "created_at", "files", "size"
    )?;
    for s in &snapshots {
        let inc = match s.includes {
            Some(i) if i.user_data => "code,data",
            Some(_) => "code",
            None => "? (no readable manifest)",
        };
        let files = s.file_count.map(|n| n.to_string()).unwrap_or_else(|| "?".into());
        writeln!(
            out,
            "{:<36} {:<6} {:<25} {files:>8} {:>12}  {inc}",
            s.name,
            s.kind,
            s.created_at.as_deref().unwrap_or("?"),
            s.size
        )?;
    }
    if snapshots.is_empty() {
        writeln!(out, "no snapshots in {}", args.archive_dir.display())?;
    }
    Ok(ExitCode::Success)
}

fn verify(ctx: &Ctx, args: &SnapshotVerifyArgs) -> Result<ExitCode> {
    let report = snapshot::verify(&args.path);
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "snapshot": report.path, "valid": report.ok(), "entries": report.entries,
            "problems": report.problems,
        }))?;
    } else if report.ok() {
        println!("{}: valid ({} files)", report.path, report.entries);
    } else {
        println!("{}: INVALID, {} problem(s):", report.path, report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
    }
    Ok(ExitCode::from_ok(report.ok()))
}
