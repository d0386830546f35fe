//! `maintain`: what a scheduler calls as often as it likes. Runs what is due and nothing
//! else, remembering last runs in `data/.sidecar_state.json`.
//!
//! A daily job at HH:MM is due when it never ran or its last run is before the most
//! recent HH:MM that has passed (local time); the monthly message archiving when it never
//! ran or 30 days have passed since its last run.

use chrono::{DateTime, Duration, Local, NaiveTime, TimeZone, Utc};
use serde::Serialize;

use crate::{
    archival,
    backup::{self, PrunePolicy},
    context::Ctx,
    state::{self, JobRun},
};

/// A job `maintain` runs when it is due.
pub struct Job {
    /// Its name in the state file.
    pub name: &'static str,
    /// When it is due.
    pub schedule: Schedule,
}

/// When a job is due.
pub enum Schedule {
    /// Once a day, at this local time (hour, minute).
    Daily(u32, u32),
    /// When this many days have passed since the last run.
    EveryDays(i64),
}

/// The jobs `maintain` runs, in order.
pub const JOBS: [Job; 3] = [
    Job { name: "weekly_backup", schedule: Schedule::Daily(1, 0) },
    Job { name: "logs_archive", schedule: Schedule::Daily(2, 0) },
    Job { name: "messages_archive", schedule: Schedule::EveryDays(30) },
];

/// The most recent local HH:MM at or before `now`.
pub fn most_recent(now: DateTime<Utc>, hour: u32, minute: u32) -> DateTime<Utc> {
    let local = now.with_timezone(&Local);
    let time = NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN);
    let at = |day: chrono::NaiveDate| {
        let naive = day.and_time(time);
        Local
            .from_local_datetime(&naive)
            .earliest()
            // In a DST gap the time does not exist that day: take the first instant after it.
            .or_else(|| Local.from_local_datetime(&(naive + Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    let today = at(local.date_naive());
    match today {
        Some(t) if t <= now => t,
        _ => at(local.date_naive() - Duration::days(1)).unwrap_or(now - Duration::days(1)),
    }
}

/// Whether `job` is due at `now` given its last run.
pub fn due(job: &Job, last: Option<&JobRun>, now: DateTime<Utc>) -> bool {
    match last {
        None => true,
        Some(run) => {
            let last = run.last_run.with_timezone(&Utc);
            match job.schedule {
                Schedule::Daily(hour, minute) => last < most_recent(now, hour, minute),
                Schedule::EveryDays(days) => now - last >= Duration::days(days),
            }
        }
    }
}

/// One job in `maintain`'s report.
#[derive(Debug, Serialize)]
pub struct JobReport {
    /// The job.
    pub name: &'static str,
    /// Whether it was due.
    pub due: bool,
    /// Whether it ran (false in a dry run).
    pub ran: bool,
    /// Whether it worked.
    pub ok: bool,
    /// What it did.
    pub detail: String,
}

/// Runs the due jobs; saves the state when any ran.
pub fn run(ctx: &Ctx, policy: PrunePolicy) -> anyhow::Result<Vec<JobReport>> {
    let mut reports = Vec::new();
    // A corrupt state file is reported, kept aside and treated as "never ran": every job
    // runs once (each is idempotent) rather than none ever running again.
    let mut st = match state::load(&ctx.data_dir()) {
        Ok(st) => st,
        Err(e) => {
            let kept = if ctx.dry_run { None } else { Some(state::set_aside(&ctx.data_dir())?) };
            let detail = match kept {
                Some(kept) => format!(
                    "{e:#}; kept aside as {}, every job treated as never run",
                    ctx.show(&kept)
                ),
                None => format!("{e:#}; every job treated as never run"),
            };
            eprintln!("problem: {detail}");
            tracing::warn!(target: "mhm::sidecar", "maintain: {detail}");
            reports.push(JobReport {
                name: "state_file",
                due: false,
                ran: false,
                ok: false,
                detail,
            });
            state::State::default()
        }
    };
    if !ctx.dry_run {
        // A state file write cut short leaves `.tmp-<pid>-.sidecar_state.json` behind.
        crate::fsutil::remove_stale_temps(&ctx.data_dir());
    }
    let mut changed = false;
    for job in &JOBS {
        let is_due = due(job, st.jobs.get(job.name), ctx.now);
        if !is_due || ctx.dry_run {
            let detail = match st.jobs.get(job.name) {
                Some(r) if !is_due => format!("not due (last run {})", r.last_run.to_rfc3339()),
                _ if is_due => "would run".to_string(),
                _ => "not due".to_string(),
            };
            reports.push(JobReport { name: job.name, due: is_due, ran: false, ok: true, detail });
            continue;
        }
        let (ok, detail) = match run_job(ctx, job.name, policy) {
            Ok((ok, detail)) => (ok, detail),
            Err(e) => (false, format!("{e:#}")),
        };
        tracing::info!(target: "mhm::sidecar", "maintain: {} ok={ok}: {detail}", job.name);
        st.jobs.insert(
            job.name.to_string(),
            JobRun { last_run: ctx.now_local(), ok, detail: detail.clone() },
        );
        changed = true;
        reports.push(JobReport { name: job.name, due: true, ran: true, ok, detail });
    }
    if changed {
        state::save(&ctx.data_dir(), &st)?;
    }
    Ok(reports)
}

fn run_job(ctx: &Ctx, name: &str, policy: PrunePolicy) -> anyhow::Result<(bool, String)> {
    match name {
        "weekly_backup" => match backup::weekly_due(ctx)? {
            backup::Weekly::NotDue { newest, age_days } => {
                Ok((true, format!("newest weekly backup {newest} is {age_days} day(s) old")))
            }
            backup::Weekly::Due(name) => {
                let (path, _, pruned) = backup::make(ctx, &name, backup::WEEKLY_INCLUDES, policy)?;
                let failed = pruned.iter().filter(|p| p.result.starts_with("failed")).count();
                let deleted = pruned.iter().filter(|p| p.result == "deleted").count();
                Ok((
                    failed == 0,
                    format!("created {}; pruned {deleted}, {failed} failed", ctx.show(&path)),
                ))
            }
        },
        "logs_archive" => {
            let report = archival::archive(ctx, &archival::log_dirs(ctx, &[])?)?;
            for p in &report.problems {
                eprintln!("problem: {p}");
            }
            Ok((
                report.problems.is_empty(),
                format!("{} step(s), {} problem(s)", report.steps.len(), report.problems.len()),
            ))
        }
        "messages_archive" => {
            let report =
                crate::messages::archive_messages(ctx, None, crate::messages::DEFAULT_DAYS)?;
            for p in &report.problems {
                eprintln!("problem: {p}");
            }
            let moved: usize = report.users.iter().map(|u| u.archived).sum();
            Ok((
                report.ok(),
                format!(
                    "{moved} message(s) archived for {} user(s), {} problem(s)",
                    report.users.len(),
                    report.problems.len()
                ),
            ))
        }
        other => anyhow::bail!("unknown job {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_time_of_day() {
        // The binary's tests run with TZ=UTC; here we only rely on ordering.
        let now = Utc::now();
        let t = most_recent(now, 2, 0);
        assert!(t <= now && now - t < Duration::hours(25));
    }
}
