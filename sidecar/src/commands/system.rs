//! `system validate`.

use anyhow::Result;

use crate::{cli::SystemCommand, context::Ctx, exit_codes::ExitCode, validate};

pub fn run(ctx: &Ctx, cmd: &SystemCommand) -> Result<ExitCode> {
    match cmd {
        SystemCommand::Validate => {
            let report = validate::check(&ctx.data_dir());
            print(ctx, &report)?;
            Ok(ExitCode::from_ok(report.ok()))
        }
    }
}

/// Prints a validation report (also used after a restore).
pub fn print(ctx: &Ctx, report: &validate::Report) -> Result<()> {
    if ctx.json {
        ctx.print_json(report)?;
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
