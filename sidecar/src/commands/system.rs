//! `system validate`.

use anyhow::Result;
use mhm_sidecar::validate;

use super::json::print_json;
use super::run::Run;
use crate::{cli::SystemCommand, exit_codes::ExitCode};

pub fn run(ctx: &Run, cmd: &SystemCommand) -> Result<ExitCode> {
    match cmd {
        SystemCommand::Validate => {
            let report = validate::check(ctx);
            print(ctx, &report)?;
            Ok(ExitCode::from_ok(report.ok()))
        }
    }
}

/// Prints a validation report (also used after a restore).
pub fn print(ctx: &Run, report: &validate::Report) -> Result<()> {
    if ctx.json {
        print_json(report)?;
    } else if report.ok() {
        println!(
            "system ok: {} users listed, {} JSON files parsed",
            report.users_listed, report.json_files
        );
    } else {
        println!("system check found {} problem(s):", report.problems.len());
        for p in &report.problems {
            println!("  {p}");
        }
    }
    for p in &report.problems {
        tracing::warn!(target: "mhm::sidecar", "validate: {p}");
    }
    Ok(())
}
