//! `messages archive` (SPEC section 4): a thin shell over `mhm_sidecar::messages`.

use std::io::{self, Write};

use anyhow::Result;
use mhm_sidecar::messages;

use super::json::print_json;
use super::run::Run;
use crate::{
    cli::{ArchiveArgs, MessagesCommand},
    exit_codes::ExitCode,
};

pub fn run(ctx: &Run, cmd: &MessagesCommand) -> Result<ExitCode> {
    match cmd {
        MessagesCommand::Archive(args) => archive(ctx, args),
    }
}

fn archive(ctx: &Run, args: &ArchiveArgs) -> Result<ExitCode> {
    let report = messages::archive_messages(ctx, args.user.as_deref(), args.days, ctx.dry_run)?;
    if ctx.json {
        print_json(&serde_json::json!({
            "dry_run": ctx.dry_run, "users": report.users, "problems": report.problems,
            "warnings": report.warnings,
        }))?;
    } else {
        let would = if ctx.dry_run { "would " } else { "" };
        let mut out = io::stdout().lock();
        for u in &report.users {
            if u.already_archived > 0 {
                writeln!(
                    out,
                    "{}: {would}drop {} message(s) already in an archive from the active file",
                    u.user, u.already_archived
                )?;
            }
            if let Some(file) = &u.archive_file {
                writeln!(out, "{}: {would}archive {} message(s) to {file}", u.user, u.archived)?;
            }
            if u.written_meanwhile {
                writeln!(
                    out,
                    "{}: the active file was written during the run: left as it is, run again",
                    u.user
                )?;
            }
            for d in &u.deleted_archives {
                writeln!(out, "{}: {would}delete {d} (past retention)", u.user)?;
            }
            // A user whose files have a problem was left as it was: not "nothing to do".
            let folder = format!("data/users/{}", u.user);
            let troubled = report.problems.iter().any(|p| {
                p.path
                    .as_deref()
                    .is_some_and(|p| p == folder || p.starts_with(&format!("{folder}/")))
            });
            if troubled && u.archive_file.is_none() {
                writeln!(out, "{}: not archived (the problem below)", u.user)?;
            } else if u.archive_file.is_none()
                && u.already_archived == 0
                && u.deleted_archives.is_empty()
            {
                writeln!(out, "{}: nothing to archive ({} active)", u.user, u.active_before)?;
            }
        }
        if report.users.is_empty() && report.problems.is_empty() {
            writeln!(out, "no users in {}", ctx.show(&ctx.data_dir().join("users")))?;
        }
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    Ok(ExitCode::from_ok(report.ok()))
}
