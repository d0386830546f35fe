//! `schedule install | show | remove` (SPEC section 7): the library's `schedule` module
//! does the work; this prints it.

use anyhow::{Context, Result};
use mhm_sidecar::schedule::{self, Entry};

use super::json::print_json;
use super::run::Run;
use crate::{cli::ScheduleCommand, exit_codes::ExitCode};

pub fn run(ctx: &Run, cmd: &ScheduleCommand) -> Result<ExitCode> {
    let kind = schedule::detect()?;
    let exe = std::env::current_exe().context("finding this program's path")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let root = ctx.root.canonicalize().unwrap_or_else(|_| mhm_fsx::absolute(&ctx.root));
    let entry = schedule::entry(kind, &exe, &root)?;
    match cmd {
        ScheduleCommand::Install if ctx.dry_run => {
            if ctx.json {
                print_json(&serde_json::json!({
                    "command": "schedule install", "ok": true, "dry_run": true, "entry": entry,
                }))?;
            } else {
                println!("would install {} ({:?}): `maintain` hourly, as you", entry.name, kind);
                print_entry(&entry);
            }
            Ok(ExitCode::Success)
        }
        ScheduleCommand::Install => {
            schedule::install(&entry)?;
            if ctx.json {
                print_json(&serde_json::json!({
                    "command": "schedule install", "ok": true, "dry_run": false, "entry": entry,
                }))?;
            } else {
                println!("installed {}: `{}` runs hourly", entry.name, entry.command);
                println!(
                    "its actions go to logs/sidecar.log; `mhm-sidecar status` says whether it \
                     is healthy; set MHM_NOTIFY_URL or MHM_NOTIFY_COMMAND to be told when not"
                );
            }
            Ok(ExitCode::Success)
        }
        ScheduleCommand::Show => {
            let installed = schedule::show(&entry)?;
            if ctx.json {
                print_json(&serde_json::json!({
                    "command": "schedule show", "ok": installed.is_some(),
                    "installed": installed.is_some(), "entry": entry, "as_installed": installed,
                }))?;
            } else {
                match &installed {
                    Some(text) => print!("{text}"),
                    None => eprintln!(
                        "nothing is scheduled for this root ({}); `mhm-sidecar schedule install` \
                         puts it in the {kind:?} scheduler",
                        root.display()
                    ),
                }
            }
            Ok(ExitCode::from_ok(installed.is_some()))
        }
        ScheduleCommand::Remove => {
            let removed = !ctx.dry_run && schedule::remove(&entry)?;
            if ctx.json {
                print_json(&serde_json::json!({
                    "command": "schedule remove", "ok": true, "dry_run": ctx.dry_run,
                    "removed": removed, "name": entry.name,
                }))?;
            } else if ctx.dry_run {
                println!("would remove {} ({kind:?}), if installed", entry.name);
            } else if removed {
                println!("removed {}", entry.name);
            } else {
                println!("nothing to remove: {} is not installed", entry.name);
            }
            Ok(ExitCode::Success)
        }
    }
}

fn print_entry(entry: &Entry) {
    for f in &entry.files {
        println!("\n# {}", f.path.display());
        print!("{}", f.content);
    }
    if let Some(line) = &entry.cron_line {
        println!("\n# crontab line\n{line}");
    }
    println!("\n# then");
    for l in &entry.load {
        println!("{l}");
    }
}
