//! `status` (SPEC section 7): a shell over `mhm_sidecar::status`.

use anyhow::Result;
use mhm_sidecar::status::{self, BackupRef};

use super::json::print_json;
use super::run::Run;
use crate::{
    exit_codes::ExitCode,
    out::{self, Table},
};

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
            let when = b
                .created_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or_else(|| "?".into(), |t| out::time(&t));
            let age = b.age_days.map_or("?".into(), |d| d.to_string());
            format!("{} (made {when}, {age} days old)", b.name)
        }
        None => "none".to_string(),
    };
    println!("backups: {} ({})", status.backups.count, out::size(status.backups.total_bytes));
    println!("  newest:        {}", show(&status.backups.newest));
    println!("  newest weekly: {}", show(&status.backups.newest_weekly));
    println!();
    let mut logs = Table::new(&["log", ">active", ">backups", ">archive"]);
    for l in &status.logs {
        logs.row(vec![
            l.name.clone(),
            l.active_bytes.map_or("-".into(), out::size),
            l.backups.to_string(),
            l.archives.to_string(),
        ]);
    }
    logs.print();
    println!();
    let mut jobs = Table::new(&["job", "last run", "result"]);
    for (name, j) in &status.jobs {
        let when = chrono::DateTime::parse_from_rfc3339(&j.last_run)
            .map(|t| out::time(&t))
            .unwrap_or_else(|_| j.last_run.clone());
        jobs.row(vec![name.to_string(), when, if j.ok { "ok" } else { "FAILED" }.into()]);
    }
    jobs.print();
    for w in &status.warnings {
        println!("warning: {w}");
    }
    Ok(code)
}
