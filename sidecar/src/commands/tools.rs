//! `tools rotate | save-result` (SPEC section 5): a thin shell over `mhm_sidecar::tools`.

use anyhow::Result;
use mhm_sidecar::tools::{self, Input, Mode, Rotation};

use super::json::print_json;
use super::run::Run;
use crate::{cli::ToolsCommand, exit_codes::ExitCode};

pub fn run(ctx: &Run, cmd: &ToolsCommand) -> Result<ExitCode> {
    match cmd {
        ToolsCommand::Rotate(args) => {
            let archive_dir = match &args.archive_dir {
                Some(d) => d.clone(),
                None => args.file.parent().unwrap_or(std::path::Path::new("")).join("archive"),
            };
            let r =
                tools::rotate(ctx, &args.file, &archive_dir, args.keep, Mode::Move, ctx.dry_run)?;
            if ctx.json {
                print_json(&serde_json::json!({"dry_run": ctx.dry_run, "rotated": r}))?;
            } else {
                print_rotation(ctx, &r);
            }
        }
        ToolsCommand::SaveResult(args) => {
            let input = match &args.data {
                Some(p) if p.as_os_str() != "-" => Input::File(p),
                _ => Input::Stdin,
            };
            let saved =
                tools::save_result(ctx, &args.tool, &args.domain, &input, args.keep, ctx.dry_run)?;
            if ctx.json {
                print_json(&serde_json::json!({"dry_run": ctx.dry_run, "saved": saved}))?;
            } else {
                if let Some(r) = &saved.rotated {
                    print_rotation(ctx, r);
                }
                let would = if ctx.dry_run { "would write" } else { "wrote" };
                println!("{would} {}", saved.path);
            }
        }
    }
    Ok(ExitCode::Success)
}

fn print_rotation(ctx: &Run, r: &Rotation) {
    let would = if ctx.dry_run { "would " } else { "" };
    println!("{would}store {} as {}", r.file, r.version);
    for d in &r.deleted {
        println!("{would}delete {d} (beyond --keep)");
    }
}
