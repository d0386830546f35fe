//! `backup create | weekly | list | verify | prune | restore` (SPEC section 3).

use std::io::Write;

use anyhow::{Context, Result};
use mhm_sidecar::{
    backup::{self, create, manifest::Includes, PrunePolicy},
    paths, remote, restore, validate,
};

use super::json::{print_json, with_shown_paths};
use super::run::Run;
use crate::{
    cli::{BackupCommand, CreateArgs, RestoreArgs},
    exit_codes::ExitCode,
    out::{self, Table},
};

pub fn run(ctx: &Run, cmd: &BackupCommand) -> Result<ExitCode> {
    match cmd {
        BackupCommand::Create(args) => create_cmd(ctx, args),
        BackupCommand::Weekly => weekly(ctx),
        BackupCommand::List => list(ctx),
        BackupCommand::Verify(t) => verify_cmd(ctx, &t.backup),
        BackupCommand::Prune(args) => {
            let policy = PrunePolicy::from_settings(ctx, args.retention_days, args.max_count)?;
            prune(ctx, policy)
        }
        BackupCommand::Restore(args) => restore_cmd(ctx, args),
    }
}

/// Makes one backup (and prunes after it). `name` is final.
fn make(ctx: &Run, name: &str, includes: Includes, format: create::Format) -> Result<ExitCode> {
    // Settings are checked before any work.
    let policy = PrunePolicy::from_settings(ctx, None, None)?;
    if ctx.dry_run {
        let options = create::Options { includes, format };
        let (sources, skipped) = create::collect(ctx, &options)?;
        for w in &skipped.warnings {
            eprintln!("warning: {w}");
        }
        for w in &skipped.left_out {
            eprintln!("error: the backup would leave out user data: {w}");
        }
        let target = match format {
            create::Format::Zip => ctx.backups_dir().join(format!("{name}.zip")),
            create::Format::Directory => ctx.backups_dir().join(name),
        };
        let bytes: u64 = sources.iter().map(|s| s.size).sum();
        if ctx.json {
            print_json(&serde_json::json!({
                "would_create": ctx.show(&target), "files": sources.len(), "bytes": bytes,
                "entries": sources.iter().map(|s| &s.name).collect::<Vec<_>>(),
                "left_out": skipped.left_out,
            }))?;
        } else {
            println!(
                "would create {} with {} files ({})",
                ctx.show(&target),
                sources.len(),
                out::size(bytes)
            );
            for s in &sources {
                println!("  {}", s.name);
            }
        }
        return Ok(ExitCode::from_ok(skipped.left_out.is_empty()));
    }
    let backup::Made { path, manifest, pruned, warnings, left_out } =
        backup::make(ctx, name, includes, format, policy, &remote::FromSettings)?;
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    for w in &left_out {
        eprintln!("error: {} leaves out user data: {w}", ctx.show(&path));
    }
    // A zip's size on disk; a folder's, its files added up.
    let size = if path.is_dir() {
        mhm_sidecar::files::folder_size(&path)
    } else {
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
    };
    let stored =
        if path.is_dir() { String::new() } else { format!(", stored in {}", out::size(size)) };
    if ctx.json {
        print_json(&serde_json::json!({
            "created": ctx.show(&path), "size": size, "manifest": {
                "backup_name": manifest.backup_name, "created_at": manifest.created_at,
                "includes": manifest.includes, "system_info": manifest.system_info,
            }, "pruned": pruned, "left_out": left_out,
        }))?;
    } else {
        println!(
            "created {} ({} files, {}{stored})",
            ctx.show(&path),
            manifest.system_info.file_count,
            out::size(manifest.system_info.total_bytes)
        );
        for p in &pruned {
            println!("prune: {} {} ({})", p.result, p.name, p.why);
        }
    }
    Ok(ExitCode::from_ok(left_out.is_empty() && pruned.iter().all(|p| !p.failed())))
}

fn create_cmd(ctx: &Run, args: &CreateArgs) -> Result<ExitCode> {
    let includes = Includes {
        users: !args.no_users,
        config: !args.no_config,
        logs: args.include_logs,
        code: args.include_code,
    };
    let format = ctx.settings.backup_format(args.format.as_deref())?;
    let name = match &args.name {
        Some(n) => {
            let n = n.strip_suffix(".zip").unwrap_or(n);
            backup::check_name(n)?;
            n.to_string()
        }
        None => backup::unique_name(&ctx.backups_dir(), backup::MANUAL_PREFIX, &ctx.stamp()),
    };
    make(ctx, &name, includes, format)
}

fn weekly(ctx: &Run) -> Result<ExitCode> {
    match backup::weekly_due(ctx)? {
        backup::Weekly::NotDue { newest, age_days } => {
            if ctx.json {
                print_json(&serde_json::json!({"created": null, "newest_weekly": newest}))?;
            } else {
                println!("newest weekly backup {newest} is {age_days} day(s) old; nothing to do");
            }
            Ok(ExitCode::Success)
        }
        backup::Weekly::Due(name) => make(ctx, &name, backup::WEEKLY_INCLUDES, create::Format::Zip),
    }
}

fn list(ctx: &Run) -> Result<ExitCode> {
    let backups = backup::list(ctx)?;
    if ctx.json {
        print_json(&with_shown_paths(ctx, &backups, "path", |b| &b.path)?)?;
        return Ok(ExitCode::Success);
    }
    let mut table = Table::new(&["name", "kind", "created", ">size", "includes", "valid"]);
    for b in &backups {
        let inc = b
            .includes
            .map(|i| {
                [("users", i.users), ("config", i.config), ("logs", i.logs), ("code", i.code)]
                    .iter()
                    .filter(|(_, on)| *on)
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_else(|| match backup::user::user_of(&b.name) {
                Some(user) => format!("user {user}"),
                None => "?".into(),
            });
        let created = b.created_at.map(|t| out::time(&t)).unwrap_or_else(|| "?".into());
        let kind = format!("{:?}", b.kind).to_lowercase();
        let valid = if b.valid { "yes" } else { "NO" };
        table.row(vec![
            paths::printable(&b.name).into_owned(),
            kind,
            created,
            out::size(b.size),
            inc,
            valid.into(),
        ]);
    }
    let mut out = std::io::stdout().lock();
    if !backups.is_empty() {
        table.print();
    }
    if backups.is_empty() {
        writeln!(out, "no backups in {}", ctx.show(&ctx.backups_dir()))?;
    }
    Ok(ExitCode::Success)
}

fn verify_cmd(ctx: &Run, spec: &str) -> Result<ExitCode> {
    let path = match backup::resolve(ctx, spec) {
        Ok(p) => p,
        Err(e) => {
            // Not a corrupt backup: none of that name. Said so, with the next step.
            let problem = mhm_sidecar::Problem::at(spec, format!("{e:#}"))
                .of_kind(mhm_sidecar::ProblemKind::Missing);
            if ctx.json {
                print_json(
                    &serde_json::json!({"backup": spec, "valid": false, "entries": 0, "problems": [problem]}),
                )?;
            } else {
                println!("{e:#}");
            }
            return Ok(ExitCode::Failure);
        }
    };
    // A bar over the zip's compressed bytes (on a terminal only: `ctx.progress`).
    let total = if path.is_file() { std::fs::metadata(&path).map_or(0, |m| m.len()) } else { 0 };
    let bar = ctx.progress.start("verify", total);
    let report = backup::verify::backup_with(&path, &*bar);
    bar.finish();
    const NO_DIGESTS: &str = "made by the service itself: it holds no digests, so its entries \
                              were checked for what they carry (CRCs, JSON, the manifest)";
    if ctx.json {
        let mut out = serde_json::json!({
            "backup": ctx.show(&path), "valid": report.ok(), "entries": report.entries,
            "problems": report.problems,
        });
        if report.made_by_service {
            out["made_by"] = "mhm".into();
            out["note"] = NO_DIGESTS.into();
        }
        print_json(&out)?;
    } else if report.ok() {
        println!("{}: valid ({} entries)", ctx.show(&path), report.entries);
        if report.made_by_service {
            println!("  {NO_DIGESTS}");
        }
    } else {
        println!("{}: INVALID, {} problem(s):", ctx.show(&path), report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
    }
    Ok(ExitCode::from_ok(report.ok()))
}

fn prune(ctx: &Run, policy: PrunePolicy) -> Result<ExitCode> {
    let steps = backup::prune(ctx, policy, ctx.dry_run, &remote::FromSettings)?;
    print_prune(ctx, &steps)
}

/// Renders what a prune did (of local backups, or of copies in the store).
pub(super) fn print_prune(ctx: &Run, steps: &[backup::PruneStep]) -> Result<ExitCode> {
    if ctx.json {
        print_json(&steps)?;
    } else if steps.is_empty() {
        println!("nothing to prune");
    } else {
        for s in steps {
            println!("{} {} ({})", s.result, s.name, s.why);
        }
    }
    Ok(ExitCode::from_ok(steps.iter().all(|s| !s.failed())))
}

fn restore_cmd(ctx: &Run, args: &RestoreArgs) -> Result<ExitCode> {
    let Some(spec) = &args.backup else {
        let mut backups = backup::list(ctx).unwrap_or_default();
        backups.sort_by_key(|b| b.created_at);
        let newest: Vec<String> = backups.iter().rev().take(5).map(|b| b.name.clone()).collect();
        let there = if newest.is_empty() {
            format!("there are no backups in {} yet", ctx.show(&ctx.backups_dir()))
        } else {
            format!("the newest: {}", newest.join(", "))
        };
        return Err(mhm_sidecar::error::usage(format!(
            "name the backup to restore: `mhm-sidecar backup restore NAME`; {there} \
             (`mhm-sidecar backup list` shows them all)"
        )));
    };
    let path = backup::resolve(ctx, spec)?;
    let users = args.users || args.user.is_some() || !args.config;
    let scope = restore::Scope { users, config: args.config, user: args.user.clone() };
    let outcome = restore::restore(ctx, &path, &scope, ctx.dry_run)
        .with_context(|| format!("restoring from {}", ctx.show(&path)))?;
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    if ctx.dry_run {
        if ctx.json {
            print_json(&serde_json::json!({
                "dry_run": true, "restore": restore_json(ctx, &outcome)?, "validate": null,
            }))?;
        } else {
            println!("would restore from {}:", outcome.backup);
            for i in &outcome.items {
                println!(
                    "  replace {} with {} file(s), {}",
                    paths::printable(&ctx.show(&i.live)),
                    i.files,
                    out::size(i.bytes)
                );
                if let Some(c) = &i.changes {
                    println!(
                        "    {} unchanged, {} changed, {} added, {} removed",
                        c.unchanged,
                        c.changed.len(),
                        c.added.len(),
                        c.removed.len()
                    );
                    for (what, list) in
                        [("changed", &c.changed), ("added", &c.added), ("removed", &c.removed)]
                    {
                        for p in list {
                            println!("    {what} {}", paths::printable(p));
                        }
                    }
                }
            }
            println!("  after a safety backup pre_restore_safety_*");
        }
        return Ok(ExitCode::Success);
    }
    tracing::info!(target: "mhm::sidecar", "backup restore: restored {} item(s) from {}", outcome.items.len(), outcome.backup);
    let report = validate::check(ctx);
    if ctx.json {
        print_json(&serde_json::json!({
            "dry_run": false, "restore": restore_json(ctx, &outcome)?, "validate": report,
        }))?;
    } else {
        println!("restored from {}:", outcome.backup);
        for i in &outcome.items {
            println!(
                "  {} ({} file(s), {})",
                paths::printable(&ctx.show(&i.live)),
                i.files,
                out::size(i.bytes)
            );
        }
        if let Some(s) = &outcome.safety_backup {
            println!("safety backup: {s}");
        }
        super::system::print(ctx, &report)?;
    }
    Ok(ExitCode::from_ok(report.ok()))
}

/// The outcome as JSON, each item's live path shown as every output shows paths.
fn restore_json(ctx: &Run, outcome: &restore::Outcome) -> Result<serde_json::Value> {
    let mut v = serde_json::to_value(outcome).context("encoding JSON")?;
    v["items"] = with_shown_paths(ctx, &outcome.items, "live", |i| &i.live)?;
    Ok(v)
}
