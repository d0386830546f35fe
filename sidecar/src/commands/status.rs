//! `status` (SPEC section 7): a shell over `mhm_sidecar::status`.

use anyhow::Result;
use mhm_sidecar::status::{self, BackupRef};

use super::{print_json, Run};
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Run) -> Result<ExitCode> {
    let status = status::status(ctx)?;
    // A health check: 0 when healthy, 1 when not (cron's MAILTO, monitors, `&&`).
    let code = ExitCode::from_ok(status.healthy);
    if ctx.json {
        print_json(&status)?;
        return Ok(code);
    }
    if status.healthy {
        println!("healthy");
    } else {
        println!("UNHEALTHY:");
        for r in &status.reasons {
            println!("  {}: {}", r.kind, r.what);
        }
    }
    let show = |b: &Option<BackupRef>| match b {
        Some(b) => {
            format!("{} ({} days old)", b.name, b.age_days.map_or("?".into(), |d| d.to_string()))
        }
        None => "none".to_string(),
    };
    println!("backups: {} ({} bytes)", status.backups.count, status.backups.total_bytes);
    println!("  newest:        {}", show(&status.backups.newest));
    println!("  newest weekly: {}", show(&status.backups.newest_weekly));
    println!("logs:");
    for l in &status.logs {
        let active = l.active_bytes.map_or("-".into(), |b| b.to_string());
        println!(
            "  {:<24} active {active:>10}  backups {:>2}  archive {:>2}",
            l.name, l.backups, l.archives
        );
    }
    println!("jobs:");
    for (name, j) in &status.jobs {
        println!("  {name:<16} last run {} {}", j.last_run, if j.ok { "ok" } else { "FAILED" });
    }
    for w in &status.warnings {
        println!("warning: {w}");
    }
    Ok(code)
}
