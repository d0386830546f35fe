//! `maintain` (SPEC section 7).

use anyhow::Result;

use mhm_sidecar::{backup::PrunePolicy, maintain};

use super::{print_json, Run};
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Run) -> Result<ExitCode> {
    let bad = mhm_sidecar::settings::check(ctx);
    for b in &bad {
        eprintln!("error: {b}");
    }
    // A bad BACKUP_* setting stops the jobs that use it, not the others.
    let policy = PrunePolicy::from_settings(ctx, None, None).ok();
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
    let code = ExitCode::from_ok(reports.iter().all(|r| r.ok));
    Ok(if bad.is_empty() { code } else { code.and(ExitCode::Usage) })
}
