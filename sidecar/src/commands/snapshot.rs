//! `snapshot create | list | verify` (SPEC section 6): a thin shell over `mhm_sidecar::snapshot`.

use std::io::{self, Write};

use anyhow::Result;
use mhm_sidecar::snapshot;

use super::json::{print_json, with_shown_paths};
use super::run::Run;
use crate::{
    cli::{SnapshotCommand, SnapshotCreateArgs, SnapshotDirArgs, SnapshotVerifyArgs},
    exit_codes::ExitCode,
    out::{self, Table},
};

pub fn run(ctx: &Run, cmd: &SnapshotCommand) -> Result<ExitCode> {
    match cmd {
        SnapshotCommand::Create(args) => create(ctx, args),
        SnapshotCommand::List(args) => list(ctx, args),
        SnapshotCommand::Verify(args) => verify(ctx, args),
    }
}

fn create(ctx: &Run, args: &SnapshotCreateArgs) -> Result<ExitCode> {
    let options = snapshot::Options {
        include_user_data: args.include_user_data,
        no_compress: args.no_compress,
    };
    let (created, warnings) = snapshot::create(ctx, &args.archive_dir, &options, ctx.dry_run)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    match created {
        snapshot::Created::Would { target, sources } => {
            let bytes: u64 = sources.iter().map(|s| s.size).sum();
            if ctx.json {
                print_json(&serde_json::json!({
                    "would_create": ctx.show(&target), "files": sources.len(), "bytes": bytes,
                    "entries": sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
                }))?;
            } else {
                let mut out = io::stdout().lock();
                writeln!(
                    out,
                    "would create {} with {} files ({})",
                    ctx.show(&target),
                    sources.len(),
                    crate::out::size(bytes)
                )?;
                for s in &sources {
                    writeln!(out, "  {}", s.name)?;
                }
            }
        }
        snapshot::Created::Written { path, manifest, removed } => {
            for p in &removed {
                eprintln!("removed leftover {}", ctx.show(p));
            }
            if ctx.json {
                print_json(&serde_json::json!({
                    "created": ctx.show(&path), "snapshot_name": manifest.snapshot_name,
                    "created_at": manifest.created_at, "includes": manifest.includes,
                    "file_count": manifest.file_count, "total_bytes": manifest.total_bytes,
                }))?;
            } else {
                println!(
                    "created {} ({} files, {})",
                    ctx.show(&path),
                    manifest.file_count,
                    out::size(manifest.total_bytes)
                );
            }
        }
    }
    Ok(ExitCode::Success)
}

fn list(ctx: &Run, args: &SnapshotDirArgs) -> Result<ExitCode> {
    let snapshots = snapshot::list(ctx, &args.archive_dir)?;
    if ctx.json {
        print_json(&with_shown_paths(ctx, &snapshots, "path", |s| &s.path)?)?;
        return Ok(ExitCode::Success);
    }
    let mut table = Table::new(&["name", "kind", "created", ">files", ">size", "includes"]);
    for s in &snapshots {
        let inc = match s.includes {
            Some(i) if i.user_data => "code,data",
            Some(_) => "code",
            None => "? (no readable manifest)",
        };
        let created = s
            .created_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| "?".into(), |t| out::time(&t));
        table.row(vec![
            s.name.clone(),
            s.kind.to_string(),
            created,
            s.file_count.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            out::size(s.size),
            inc.into(),
        ]);
    }
    if snapshots.is_empty() {
        println!("no snapshots in {}", ctx.show(&args.archive_dir));
    } else {
        table.print();
    }
    Ok(ExitCode::Success)
}

fn verify(ctx: &Run, args: &SnapshotVerifyArgs) -> Result<ExitCode> {
    let report = snapshot::verify::snapshot(&args.path);
    let path = ctx.show(&args.path);
    if ctx.json {
        print_json(&serde_json::json!({
            "snapshot": path.to_string(), "valid": report.ok(), "entries": report.entries,
            "problems": report.problems,
        }))?;
    } else if report.ok() {
        // Counted as `snapshot create` counts them: the files, the manifest apart.
        let files = report.entries.saturating_sub(usize::from(report.manifest.is_some()));
        println!("{path}: valid ({files} files and the manifest)");
    } else {
        println!("{path}: INVALID, {} problem(s):", report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
    }
    Ok(ExitCode::from_ok(report.ok()))
}
