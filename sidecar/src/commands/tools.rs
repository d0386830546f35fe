//! `tools rotate | save-result` (SPEC section 5): a thin shell over [`crate::tools`].

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::{
    context::Ctx,
    exit_codes::ExitCode,
    tools::{self, Input, Mode, Rotation},
};

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Move FILE to the archive folder as <stem>_<YYYY-MM-DD_HHMMSS>_<NNNN><ext> and keep
    /// the newest --keep versions of that file.
    Rotate(RotateArgs),
    /// Write development_tools/<DOMAIN>/jsons/<TOOL>_results.json (the previous one kept
    /// as a version in jsons/archive/).
    SaveResult(SaveResultArgs),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The file to rotate (relative to the current directory).
    pub file: PathBuf,
    /// Versions of this file to keep, the new one included.
    #[arg(long, value_name = "N", default_value_t = tools::DEFAULT_KEEP)]
    pub keep: usize,
    /// Where versions go (default: archive/ beside FILE).
    #[arg(long, value_name = "DIR")]
    pub archive_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SaveResultArgs {
    /// The tool's name.
    pub tool: String,
    /// The domain folder under development_tools/.
    #[arg(long, value_name = "D")]
    pub domain: String,
    /// The result data, a JSON document: a file, or `-` for standard input (the default).
    #[arg(long, value_name = "FILE|-")]
    pub data: Option<PathBuf>,
    /// Versions of the previous results to keep.
    #[arg(long, value_name = "N", default_value_t = tools::DEFAULT_KEEP)]
    pub keep: usize,
}

impl ToolsCommand {
    /// Whether the command changes files (outside `--dry-run`).
    pub fn changes_files(&self) -> bool {
        match self {
            ToolsCommand::Rotate(_) | ToolsCommand::SaveResult(_) => true,
        }
    }
}

pub fn run(ctx: &Ctx, cmd: &ToolsCommand) -> Result<ExitCode> {
    match cmd {
        ToolsCommand::Rotate(args) => {
            let archive_dir = match &args.archive_dir {
                Some(d) => d.clone(),
                None => args.file.parent().unwrap_or(std::path::Path::new("")).join("archive"),
            };
            let r = tools::rotate(ctx, &args.file, &archive_dir, args.keep, Mode::Move)?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"dry_run": ctx.dry_run, "rotated": r}))?;
            } else {
                print_rotation(ctx, &r);
            }
        }
        ToolsCommand::SaveResult(args) => {
            let input = match &args.data {
                Some(p) if p.as_os_str() != "-" => Input::File(p),
                _ => Input::Stdin,
            };
            let saved = tools::save_result(ctx, &args.tool, &args.domain, &input, args.keep)?;
            if ctx.json {
                ctx.print_json(&serde_json::json!({"dry_run": ctx.dry_run, "saved": saved}))?;
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

fn print_rotation(ctx: &Ctx, r: &Rotation) {
    let would = if ctx.dry_run { "would " } else { "" };
    println!("{would}store {} as {}", r.file, r.version);
    for d in &r.deleted {
        println!("{would}delete {d} (beyond --keep)");
    }
}
