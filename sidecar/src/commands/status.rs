//! `status` (SPEC section 7): backups, logs, jobs and warnings at a glance.

use anyhow::Result;
use serde::Serialize;

use crate::{archival, backup, context::Ctx, exit_codes::ExitCode, state};

#[derive(Serialize)]
struct BackupRef {
    name: String,
    created_at: Option<String>,
    age_days: Option<i64>,
}

#[derive(Serialize)]
struct Backups {
    newest: Option<BackupRef>,
    newest_weekly: Option<BackupRef>,
    count: usize,
    total_bytes: u64,
}

#[derive(Serialize)]
struct LogRow {
    name: String,
    active_bytes: Option<u64>,
    backups: usize,
    archives: usize,
}

#[derive(Serialize)]
struct Job {
    last_run: String,
    ok: bool,
}

#[derive(Serialize)]
struct Status {
    backups: Backups,
    logs: Vec<LogRow>,
    jobs: std::collections::BTreeMap<String, Job>,
    warnings: Vec<String>,
}

/// Below this much free space (or 5% of the disk) `status` warns.
const LOW_DISK: u64 = 1 << 30;

pub fn run(ctx: &Ctx) -> Result<ExitCode> {
    let mut warnings = Vec::new();
    let list = backup::list(&ctx.backups_dir())?;
    let now = ctx.now.fixed_offset();
    let as_ref = |b: &backup::Info| BackupRef {
        name: b.name.clone(),
        created_at: b.created_at.map(|t| t.to_rfc3339()),
        age_days: b.created_at.map(|t| now.signed_duration_since(t).num_days()),
    };
    let newest_weekly = list.iter().rev().find(|b| b.kind == backup::Kind::Weekly);
    match newest_weekly.and_then(|b| b.created_at) {
        Some(t) if now.signed_duration_since(t) < chrono::Duration::days(8) => {}
        Some(t) => warnings.push(format!(
            "no weekly backup in 8 days (newest is {} days old)",
            now.signed_duration_since(t).num_days()
        )),
        None => warnings.push("no weekly backup in 8 days (none found)".to_string()),
    }
    for b in list.iter().filter(|b| !b.valid) {
        warnings.push(format!("backup {} looks invalid (run backup verify)", b.name));
    }
    let backups = Backups {
        newest: list.last().map(as_ref),
        newest_weekly: newest_weekly.map(as_ref),
        count: list.len(),
        total_bytes: list.iter().map(|b| b.size).sum(),
    };
    let logs = archival::list(ctx, &archival::log_dirs(ctx, &[])?)?
        .into_iter()
        .map(|l| LogRow {
            name: l.name,
            active_bytes: l.active_bytes,
            backups: l.backups,
            archives: l.archives,
        })
        .collect();
    let mut jobs = std::collections::BTreeMap::new();
    match state::load(&ctx.data_dir()) {
        Ok(st) => {
            for (name, run) in st.jobs {
                if !run.ok {
                    warnings.push(format!("last run of {name} failed: {}", run.detail));
                }
                jobs.insert(name, Job { last_run: run.last_run.to_rfc3339(), ok: run.ok });
            }
        }
        Err(e) => warnings.push(format!("{e:#}")),
    }
    let probe = if ctx.data_dir().is_dir() { ctx.data_dir() } else { ctx.root.clone() };
    if let (Ok(free), Ok(total)) = (fs4::available_space(&probe), fs4::total_space(&probe)) {
        if free < LOW_DISK || free.saturating_mul(20) < total {
            warnings.push(format!(
                "low disk space: {} MiB free of {} MiB",
                free >> 20,
                total >> 20
            ));
        }
    }
    let status = Status { backups, logs, jobs, warnings };
    if ctx.json {
        ctx.print_json(&status)?;
        return Ok(ExitCode::Success);
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
    Ok(ExitCode::Success)
}
