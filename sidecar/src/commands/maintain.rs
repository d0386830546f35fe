//! `maintain` (SPEC section 7).

use anyhow::Result;

use mhm_sidecar::{backup::PrunePolicy, maintain};

use super::json::print_json;
use super::run::Run;
use crate::{
    exit_codes::ExitCode,
    out::{self, Table},
};

pub fn run(ctx: &Run) -> Result<ExitCode> {
    let bad = ctx.settings.bad();
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
        let mut table = Table::new(&["job", "result", "next due", "detail"]);
        for r in &reports {
            let what = match (r.ran, r.ok) {
                (false, true) if r.due => "due",
                (false, false) => "NOT RUN",
                (false, true) => "skip",
                (true, true) => "ok",
                (true, false) => "FAILED",
            };
            let next = if r.due && !r.ran { "now".to_string() } else { out::time(&r.next_due) };
            table.row(vec![r.name.to_string(), what.into(), next, r.detail.clone()]);
        }
        table.print();
    }
    let code = ExitCode::from_ok(reports.iter().all(|r| r.ok));
    Ok(if bad.is_empty() { code } else { code.and(ExitCode::Usage) })
}
