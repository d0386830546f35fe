//! `messages archive` (SPEC section 4): a thin shell over [`crate::messages`].

use std::io::{self, Write};

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::{context::Ctx, exit_codes::ExitCode, messages};

#[derive(Debug, Subcommand)]
pub enum MessagesCommand {
    /// Move messages older than --days (365) from each user's sent_messages.json into
    /// messages/archives/sent_messages_archive_YYYYMMDD_HHMMSS.json, then delete archive
    /// files older than MESSAGE_ARCHIVE_RETENTION_DAYS (90; 0 keeps them forever).
    Archive(ArchiveArgs),
}

#[derive(Debug, Args)]
pub struct ArchiveArgs {
    /// Only this user (a folder name under data/users).
    #[arg(long, value_name = "ID")]
    pub user: Option<String>,
    /// Archive messages this many days old or older.
    #[arg(long, value_name = "N", default_value_t = messages::DEFAULT_DAYS)]
    pub days: u32,
}

impl MessagesCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        match self {
            MessagesCommand::Archive(_) => true,
        }
    }
}

pub fn run(ctx: &Ctx, cmd: &MessagesCommand) -> Result<ExitCode> {
    match cmd {
        MessagesCommand::Archive(args) => archive(ctx, args),
    }
}

fn archive(ctx: &Ctx, args: &ArchiveArgs) -> Result<ExitCode> {
    let report = messages::archive_messages(ctx, args.user.as_deref(), args.days)?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "dry_run": ctx.dry_run, "users": report.users, "problems": report.problems,
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
            for d in &u.deleted_archives {
                writeln!(out, "{}: {would}delete {d} (past retention)", u.user)?;
            }
            if u.archive_file.is_none() && u.already_archived == 0 && u.deleted_archives.is_empty()
            {
                writeln!(out, "{}: nothing to archive ({} active)", u.user, u.active_before)?;
            }
        }
        if report.users.is_empty() && report.problems.is_empty() {
            writeln!(out, "no users in {}", ctx.show(&ctx.data_dir().join("users")))?;
        }
    }
    for p in &report.problems {
        eprintln!("problem: {p}");
    }
    Ok(ExitCode::from_ok(report.ok()))
}
