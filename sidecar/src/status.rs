//! `status` (SPEC section 7): backups, logs, jobs and warnings at a glance.

use anyhow::Result;
use serde::Serialize;

use crate::{archival, backup, state, Ctx};

/// One backup, as `status` names it.
#[derive(Debug, Serialize)]
pub struct BackupRef {
    /// Its name.
    pub name: String,
    /// When it was made (RFC 3339).
    pub created_at: Option<String>,
    /// Its age in whole days.
    pub age_days: Option<i64>,
}

/// The backups at a glance.
#[derive(Debug, Serialize)]
pub struct Backups {
    /// The newest backup.
    pub newest: Option<BackupRef>,
    /// The newest weekly backup.
    pub newest_weekly: Option<BackupRef>,
    /// How many backups.
    pub count: usize,
    /// Their size on disk.
    pub total_bytes: u64,
}

/// One log at a glance.
#[derive(Debug, Serialize)]
pub struct LogRow {
    /// Its name.
    pub name: String,
    /// The active file's size.
    pub active_bytes: Option<u64>,
    /// Copies in `backups/` (for `Status`: the backups).
    pub backups: usize,
    /// Copies in `archive/`.
    pub archives: usize,
}

/// A job's last run.
#[derive(Debug, Serialize)]
pub struct Job {
    /// When it last ran.
    pub last_run: String,
    /// Whether that run worked.
    pub ok: bool,
}

/// Why the root is not healthy.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reason {
    /// `setting`, `job_failed`, `overdue`, `backup_invalid`, `no_backup`, `disk`.
    pub kind: &'static str,
    /// What is wrong, in words, with the next step where there is one.
    pub what: String,
}

/// What `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Whether nothing needs a person: `status` exits 0 when healthy, 1 when not.
    pub healthy: bool,
    /// Why not, one reason each (empty when healthy).
    pub reasons: Vec<Reason>,
    /// Copies in `backups/` (for `Status`: the backups).
    pub backups: Backups,
    /// Each log.
    pub logs: Vec<LogRow>,
    /// Each job's last run.
    pub jobs: std::collections::BTreeMap<String, Job>,
    /// What needs attention.
    pub warnings: Vec<String>,
}

/// Below this much free space (or 5% of the disk) `status` warns.
const LOW_DISK: u64 = 1 << 30;
/// A weekly backup older than this is overdue.
const WEEKLY_OVERDUE_DAYS: i64 = 8;
/// Log archival (daily) and the off-site push (daily) older than this are overdue.
const DAILY_OVERDUE_DAYS: i64 = 2;

/// Backups, logs, the last run of each job, and warnings.
pub fn status(ctx: &Ctx) -> Result<Status> {
    let mut warnings = Vec::new();
    let mut reasons = Vec::new();
    let mut reason = |kind: &'static str, what: String| reasons.push(Reason { kind, what });
    for b in ctx.settings.bad() {
        reason("setting", b.what);
    }
    // A `.env` line that does not parse and holds no setting of ours: named, not a reason.
    warnings.extend(ctx.settings.warnings().iter().cloned());
    let list = backup::list(ctx)?;
    let now = ctx.now.fixed_offset();
    let as_ref = |b: &backup::Info| BackupRef {
        name: b.name.clone(),
        created_at: b.created_at.map(|t| t.to_rfc3339()),
        age_days: b.created_at.map(|t| now.signed_duration_since(t).num_days()),
    };
    let newest_weekly = backup::newest_weekly(&list, ctx.now);
    for b in &list {
        if let Some(t) = b.created_at.filter(|t| *t > now) {
            warnings.push(format!(
                "backup {} was made in the future ({}): the clock was ahead then, or is behind now",
                b.name,
                t.to_rfc3339()
            ));
        }
    }
    match newest_weekly.and_then(|b| b.created_at) {
        Some(t) if now.signed_duration_since(t) < chrono::Duration::days(WEEKLY_OVERDUE_DAYS) => {}
        Some(t) => {
            let what = format!(
                "no weekly backup in {WEEKLY_OVERDUE_DAYS} days (newest is {} days old)",
                now.signed_duration_since(t).num_days()
            );
            warnings.push(what.clone());
            reason("overdue", format!("{what}: is `maintain` scheduled? (`schedule show`)"));
        }
        None => {
            let what = format!("no weekly backup in {WEEKLY_OVERDUE_DAYS} days (none found)");
            warnings.push(what.clone());
            reason("overdue", format!("{what}: run `mhm-sidecar maintain`, and schedule it"));
        }
    }
    for b in list.iter().filter(|b| !b.valid) {
        warnings.push(format!("backup {} looks invalid (run backup verify)", b.name));
    }
    // Zips past the retention that prune keeps because they never reached the store.
    if crate::remote::configured(ctx) {
        if let Ok(policy) = backup::PrunePolicy::from_settings(ctx, None, None) {
            // (The newest is kept by rule, pushed or not.)
            let newest = list.iter().rev().find(|b| b.kind != backup::Kind::User);
            let kept: Vec<&str> = list
                .iter()
                .filter(|b| newest.is_none_or(|n| n.path != b.path))
                .filter(|b| {
                    b.kind != backup::Kind::User && b.includes.is_some() && b.path.is_file()
                })
                .filter(|b| {
                    b.created_at
                        .and_then(|t| now.signed_duration_since(t).to_std().ok())
                        .is_some_and(|age| age >= policy.retention)
                })
                .map(|b| b.name.as_str())
                .collect();
            if !kept.is_empty() {
                warnings.push(format!(
                    "{} backup(s) past their retention kept: not yet pushed off-site ({}); \
                     see `remote push`",
                    kept.len(),
                    kept.join(", ")
                ));
            }
        }
    }
    // The newest backup (not the service's per-user ones) must be valid.
    if let Some(b) = list.iter().rev().find(|b| b.kind != backup::Kind::User) {
        if !b.valid {
            reason(
                "backup_invalid",
                format!(
                    "the newest backup {} looks invalid (run `backup verify {}`)",
                    b.name, b.name
                ),
            );
        }
    }
    let backups = Backups {
        // The service's per-user backups (made before saves) are never "the newest backup".
        newest: list.iter().rev().find(|b| b.kind != backup::Kind::User).map(as_ref),
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
    match state::load(ctx) {
        Ok(st) => {
            let mut daily = vec!["logs_archive"];
            if crate::remote::configured(ctx) {
                daily.push("remote_push");
            }
            for name in daily {
                let age = st.jobs.get(name).map(|r| now.signed_duration_since(r.last_run));
                match age {
                    Some(a) if a < chrono::Duration::days(DAILY_OVERDUE_DAYS) => {}
                    Some(a) => reason(
                        "overdue",
                        format!(
                            "{name} last ran {} days ago (it runs daily): is `maintain` scheduled? (`mhm-sidecar schedule show`)",
                            a.num_days()
                        ),
                    ),
                    None => reason(
                        "overdue",
                        format!("{name} never ran: run `mhm-sidecar maintain`, and schedule it"),
                    ),
                }
            }
            if crate::remote::configured(ctx) {
                let max_age = ctx.settings.remote_max_age_days.get_or_default();
                let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
                match st.remote_newest {
                    Some(t) if now.signed_duration_since(t).num_days() < max_age => {}
                    Some(t) => reason(
                        "offsite_stale",
                        format!(
                            "the newest off-site copy is {} days old (REMOTE_MAX_AGE_DAYS {max_age}): `mhm-sidecar remote push`, then `remote list`",
                            now.signed_duration_since(t).num_days()
                        ),
                    ),
                    None => reason(
                        "offsite_stale",
                        "no off-site copy yet: run `mhm-sidecar maintain` (or `remote push`)"
                            .to_string(),
                    ),
                }
            }
            for (name, run) in st.jobs {
                if !run.ok {
                    warnings.push(format!("last run of {name} failed: {}", run.detail));
                    reason(
                        "job_failed",
                        format!(
                            "the last run of {name} failed: {}; `mhm-sidecar maintain` runs it again (what it did is in logs/sidecar.log)",
                            run.detail
                        ),
                    );
                }
                if run.last_run > now {
                    warnings.push(format!(
                        "last run of {name} is in the future ({}): the clock was ahead then, or \
                         is behind now; maintain runs it again",
                        run.last_run.to_rfc3339()
                    ));
                }
                jobs.insert(name, Job { last_run: run.last_run.to_rfc3339(), ok: run.ok });
            }
        }
        Err(e) => {
            warnings.push(format!("{e:#}"));
            reason("job_failed", format!("{e:#}"));
        }
    }
    let probe = if ctx.data_dir().is_dir() { ctx.data_dir() } else { ctx.root.clone() };
    let min_free = ctx.settings.min_free_disk_mb.get_or_default();
    if let Ok(free) = fs4::available_space(&probe) {
        if free < min_free.saturating_mul(1 << 20) {
            reason(
                "disk",
                format!(
                    "{} MiB free, under MIN_FREE_DISK_MB ({min_free}): free some space (`mhm-sidecar backup prune`, old snapshots)",
                    free >> 20
                ),
            );
        }
    }
    if let (Ok(free), Ok(total)) = (fs4::available_space(&probe), fs4::total_space(&probe)) {
        if free < LOW_DISK || free.saturating_mul(20) < total {
            warnings.push(format!(
                "low disk space: {} MiB free of {} MiB",
                free >> 20,
                total >> 20
            ));
        }
    }
    Ok(Status { healthy: reasons.is_empty(), reasons, backups, logs, jobs, warnings })
}
