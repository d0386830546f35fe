//! `maintain` (SPEC section 7).

use anyhow::Result;

use mhm_sidecar::{backup::PrunePolicy, maintain};

use super::{print_json, Run};
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Run) -> Result<ExitCode> {
    let policy = PrunePolicy::from_settings(ctx, None, None)?;
    let reports = maintain::run(ctx, policy, ctx.dry_run)?;
    for p in reports.iter().flat_map(|r| &r.problems) {
        eprintln!("problem: {p}");
    }
    if ctx.json {
        print_json(&reports)?;
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
