//! `maintain` (SPEC section 7).

use anyhow::Result;

use crate::{cli::PruneArgs, context::Ctx, exit_codes::ExitCode, maintain};

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let policy =
        super::backup::prune_policy(ctx, &PruneArgs { retention_days: None, max_count: None })?;
    let reports = maintain::run(ctx, policy)?;
    if ctx.json {
        ctx.print_json(&reports)?;
    } else {
        for r in &reports {
            let what = match (r.ran, r.ok) {
                (false, _) if r.due => "due",
                (false, _) => "skip",
                (true, true) => "ok",
                (true, false) => "FAILED",
            };
            println!("{:<14} {what:<6} {}", r.name, r.detail);
        }
    }
    Ok(ExitCode::from_ok(reports.iter().all(|r| r.ok)))
}
