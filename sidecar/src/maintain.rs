//! `maintain`: what a scheduler calls as often as it likes. Runs what is due and nothing
//! else, remembering last runs in `data/.sidecar_state.json`.
//!
//! A daily job at HH:MM is due when it never ran or its last run is before the most
//! recent HH:MM that has passed (local time); the monthly message archiving when it never
//! ran or 30 days have passed since its last run. A last run stamped in the future counts
//! as never run.

use chrono::{DateTime, Duration, Local, NaiveTime, TimeZone, Utc};
use serde::Serialize;

use crate::{
    archival,
    backup::{self, PrunePolicy},
    messages, remote,
    state::{self, JobRun},
    Ctx, Problem,
};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// `backup weekly`, then prune.
    WeeklyBackup,
    /// `logs archive` on `<root>/logs`.
    LogsArchive,
    /// `messages archive` with the default age.
    MessagesArchive,
    /// `remote push` of every valid backup not yet in the store (only when
    /// `MHM_REMOTE_URL` is set).
    RemotePush,
}

/// A job `maintain` runs when it is due.
#[derive(Debug)]
pub struct Job {
    /// Its name in the state file.
    pub name: &'static str,
    /// What it does.
    pub task: Task,
    /// When it is due.
    pub schedule: Schedule,
}

/// When a job is due.
#[derive(Debug)]
pub enum Schedule {
    /// Once a day, at this local time (hour, minute).
    Daily(u32, u32),
    /// When this many days have passed since the last run.
    EveryDays(i64),
    /// Once a day at this local time, and at every run after one that failed.
    DailyRetry(u32, u32),
}

/// The jobs `maintain` runs, in order.
pub const JOBS: [Job; 4] = [
    Job { name: "weekly_backup", task: Task::WeeklyBackup, schedule: Schedule::Daily(1, 0) },
    Job { name: "logs_archive", task: Task::LogsArchive, schedule: Schedule::Daily(2, 0) },
    Job {
        name: "messages_archive",
        task: Task::MessagesArchive,
        schedule: Schedule::EveryDays(30),
    },
    Job { name: "remote_push", task: Task::RemotePush, schedule: Schedule::DailyRetry(3, 0) },
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

/// When `job` is next due after `now`, given its last run: `now` when it is due.
pub fn next_due(job: &Job, last: Option<&JobRun>, now: DateTime<Utc>) -> DateTime<Utc> {
    if due(job, last, now) {
        return now;
    }
    match (&job.schedule, last) {
        (Schedule::EveryDays(days), Some(run)) => {
            run.last_run.with_timezone(&Utc) + Duration::days(*days)
        }
        // The next HH:MM: the most recent one a day from now (DST moves it by an hour).
        (Schedule::Daily(h, m) | Schedule::DailyRetry(h, m), _) => {
            most_recent(now + Duration::days(1), *h, *m)
        }
        (Schedule::EveryDays(_), None) => now,
    }
}

/// Whether `job` is due at `now` given its last run. A last run in the future (the clock
/// was ahead then, or is behind now) counts as due: trusting it would stop the job until
/// the clock caught up, for months maybe.
pub fn due(job: &Job, last: Option<&JobRun>, now: DateTime<Utc>) -> bool {
    match last {
        None => true,
        Some(run) if run.last_run > now => true,
        Some(run) => {
            let last = run.last_run.with_timezone(&Utc);
            match job.schedule {
                Schedule::Daily(hour, minute) => last < most_recent(now, hour, minute),
                Schedule::EveryDays(days) => now - last >= Duration::days(days),
                Schedule::DailyRetry(hour, minute) => {
                    !run.ok || last < most_recent(now, hour, minute)
                }
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
    /// What it did (in a dry run: what it would do).
    pub detail: String,
    /// When it is next due (RFC 3339): now when it is due and did not run (a dry run, a bad
    /// setting) or failed and retries; else its next time by its schedule.
    pub next_due: chrono::DateTime<chrono::FixedOffset>,
    /// What went wrong on the way, one line each.
    #[serde(skip)]
    pub problems: Vec<Problem>,
}

/// The settings each job depends on (a prefix ends with `_`).
fn depends_on(task: Task) -> &'static [&'static str] {
    match task {
        Task::WeeklyBackup => &["BACKUP_"],
        Task::LogsArchive => &["LOG_", "DISABLE_LOG_ROTATION"],
        Task::MessagesArchive => &["MESSAGE_"],
        Task::RemotePush => &["REMOTE_", "MHM_REMOTE_", "AWS_"],
    }
}

/// Runs the due jobs (with `dry_run`, says which are due); saves the state when any ran. A
/// job that depends on a bad setting (`policy` is `None` when a BACKUP_* one is bad) does
/// not run: it is reported as failed, naming the settings, and stays due, so the first run
/// after the fix runs it.
pub fn run(
    ctx: &Ctx,
    policy: Option<PrunePolicy>,
    dry_run: bool,
) -> anyhow::Result<Vec<JobReport>> {
    let bad = ctx.settings.bad();
    let mut reports = Vec::new();
    // A corrupt state file is reported, kept aside and treated as "never ran": every job
    // runs once (each is idempotent) rather than none ever running again.
    let mut st = match state::load(ctx) {
        Ok(st) => st,
        // A link there is refused, not taken for a corrupt file to move aside.
        Err(e) if e.is::<state::Refused>() => return Err(e),
        Err(e) => {
            let kept = if dry_run { None } else { Some(state::set_aside(ctx)?) };
            let detail = match kept {
                Some(kept) => format!(
                    "{e:#}; kept aside as {}, every job treated as never run",
                    ctx.show(&kept)
                ),
                None => format!("{e:#}; every job treated as never run"),
            };
            tracing::warn!(target: "mhm::sidecar", "maintain: {detail}");
            reports.push(JobReport {
                name: "state_file",
                due: false,
                ran: false,
                ok: false,
                problems: vec![Problem::general(detail.clone())],
                detail,
                next_due: ctx.now.fixed_offset(),
            });
            state::State::default()
        }
    };
    if !dry_run {
        // A state file write cut short leaves `.tmp-<pid>-.sidecar_state.json` behind.
        crate::files::remove_stale_temps(&ctx.data_dir());
    }
    let mut changed = false;
    let due_work = JOBS.iter().any(|job| {
        (job.task != Task::RemotePush || remote::configured(ctx))
            && due(job, st.jobs.get(job.name), ctx.now)
    });
    if due_work && !dry_run {
        crate::notify::ping(ctx, crate::notify::Ping::Start, "");
    }
    for job in &JOBS {
        if job.task == Task::RemotePush && !remote::configured(ctx) {
            continue;
        }
        let is_due = due(job, st.jobs.get(job.name), ctx.now);
        if let Some(run) = st.jobs.get(job.name).filter(|r| r.last_run > ctx.now) {
            tracing::warn!(target: "mhm::sidecar", "maintain: the last run of {} is stamped {}, in the future; running it now", job.name, run.last_run.to_rfc3339());
        }
        // A due job that depends on a bad setting does not run, and a dry run says so (it
        // never guesses what the job would do with a default in the bad value's place).
        let blocked = crate::settings::among(&bad, depends_on(job.task));
        if is_due && !blocked.is_empty() {
            let names: Vec<&str> = blocked.iter().map(|b| b.name.as_str()).collect();
            let detail = format!("not run: bad setting(s) {}", names.join(", "));
            if !dry_run {
                tracing::warn!(target: "mhm::sidecar", "maintain: {}: {detail}", job.name);
            }
            reports.push(JobReport {
                name: job.name,
                due: true,
                ran: false,
                ok: false,
                problems: blocked.iter().map(|b| Problem::general(b.what.clone())).collect(),
                detail,
                next_due: ctx.now.fixed_offset(),
            });
            continue;
        }
        if !is_due || dry_run {
            let detail = match st.jobs.get(job.name) {
                // Local time to the second, as every table shows times.
                Some(r) if !is_due => format!(
                    "not due (last run {})",
                    r.last_run.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S")
                ),
                _ if is_due => {
                    match preview_task(ctx, job.task, policy.unwrap_or(PrunePolicy::DEFAULT)) {
                        Ok(would) => would,
                        Err(e) => format!("would run; cannot say what it would do: {e:#}"),
                    }
                }
                _ => "not due".to_string(),
            };
            reports.push(JobReport {
                name: job.name,
                due: is_due,
                ran: false,
                ok: true,
                detail,
                next_due: next_due(job, st.jobs.get(job.name), ctx.now).fixed_offset(),
                problems: Vec::new(),
            });
            continue;
        }
        // `None` only with a bad BACKUP_* setting, which blocked the one job that uses it.
        let policy = policy.unwrap_or(PrunePolicy::DEFAULT);
        let (ok, detail, problems) = match run_task(ctx, job.task, policy) {
            Ok(done) => done,
            Err(e) => (false, format!("{e:#}"), Vec::new()),
        };
        if job.task == Task::RemotePush {
            // The push remembered the newest copy in the store in the state file.
            if let Ok(on_disk) = state::load(ctx) {
                st.remote_newest = on_disk.remote_newest;
            }
        }
        if ok {
            tracing::info!(target: "mhm::sidecar", "maintain: ran {}: {detail}", job.name);
        } else {
            tracing::warn!(target: "mhm::sidecar", "maintain: {} failed: {detail}", job.name);
        }
        st.jobs.insert(
            job.name.to_string(),
            JobRun { last_run: ctx.now_local(), ok, detail: detail.clone() },
        );
        changed = true;
        let next = next_due(job, st.jobs.get(job.name), ctx.now).fixed_offset();
        reports.push(JobReport {
            name: job.name,
            due: true,
            ran: true,
            ok,
            detail,
            next_due: next,
            problems,
        });
    }
    if !dry_run {
        // Tell a person: every run pings its outcome; the command hears of a failure, and
        // of the first run that works after one.
        let ok = reports.iter().all(|r| r.ok) && bad.is_empty();
        let summary = summary(ctx, &reports, &bad, ok);
        use crate::notify::{command, ping, Ping};
        if ok {
            ping(ctx, Ping::Success, &summary);
            if st.failing {
                command(ctx, "recovered", &summary);
            }
        } else {
            ping(ctx, Ping::Fail, &summary);
            command(ctx, "fail", &summary);
        }
        if st.failing == ok {
            st.failing = !ok;
            changed = true;
        }
    }
    if changed {
        state::save(ctx, &st)?;
    }
    Ok(reports)
}

/// What a notification says: the outcome, then one line per job and per bad setting.
fn summary(
    ctx: &Ctx,
    reports: &[JobReport],
    bad: &[crate::settings::BadSetting],
    ok: bool,
) -> String {
    let mut out = format!(
        "mhm-sidecar maintain on {} at {}: {}\n",
        ctx.root.display(),
        ctx.now_local().to_rfc3339(),
        if ok { "ok" } else { "FAILED" }
    );
    for r in reports {
        let what = match (r.ran, r.ok) {
            (false, true) => "skip",
            (false, false) => "NOT RUN",
            (true, true) => "ok",
            (true, false) => "FAILED",
        };
        out.push_str(&format!("{}: {what}: {}\n", r.name, r.detail));
        for p in r.problems.iter().take(20) {
            out.push_str(&format!("  {p}\n"));
        }
    }
    for b in bad {
        out.push_str(&format!("setting: {b}\n"));
    }
    out
}

/// Runs one task: whether it worked, what it did, and the problems on the way.
/// What `task` would do now, in words, as its own `--dry-run` says it (nothing changed).
fn preview_task(ctx: &Ctx, task: Task, policy: PrunePolicy) -> anyhow::Result<String> {
    let list = |items: Vec<String>| {
        let n = items.len();
        let shown: Vec<String> = items.into_iter().take(3).collect();
        let more = if n > 3 { format!(", and {} more", n - 3) } else { String::new() };
        format!("{}{more}", shown.join(", "))
    };
    Ok(match task {
        Task::WeeklyBackup => match backup::weekly_due(ctx)? {
            backup::Weekly::NotDue { newest, age_days } => {
                format!("would make nothing: the newest weekly backup {newest} is {age_days} day(s) old")
            }
            backup::Weekly::Due(name) => {
                let gone: Vec<String> = backup::prune(ctx, policy, true, &remote::FromSettings)?
                    .into_iter()
                    .map(|p| format!("{} ({})", p.name, p.why))
                    .collect();
                let prune = if gone.is_empty() {
                    "prune nothing".to_string()
                } else {
                    format!("prune {}", list(gone))
                };
                format!("would create data/backups/{name}.zip (users, config), then {prune}")
            }
        },
        Task::LogsArchive => {
            let report = archival::archive(ctx, &archival::log_dirs(ctx, &[])?, true)?;
            if report.steps.is_empty() {
                "would do nothing: no copy is due".to_string()
            } else {
                let steps =
                    report.steps.iter().map(|s| format!("{} {}", s.action, s.from)).collect();
                format!("would make {} step(s): {}", report.steps.len(), list(steps))
            }
        }
        Task::MessagesArchive => {
            let report = messages::archive_messages(ctx, None, messages::DEFAULT_DAYS, true)?;
            let moved: usize = report.users.iter().map(|u| u.archived).sum();
            format!(
                "would archive {moved} message(s) older than {} days for {} user(s)",
                messages::DEFAULT_DAYS,
                report.users.len()
            )
        }
        Task::RemotePush => "would push every valid backup zip not yet in the store \
                             (`mhm-sidecar remote push --dry-run` lists them)"
            .to_string(),
    })
}

fn run_task(
    ctx: &Ctx,
    task: Task,
    policy: PrunePolicy,
) -> anyhow::Result<(bool, String, Vec<Problem>)> {
    match task {
        Task::WeeklyBackup => match backup::weekly_due(ctx)? {
            backup::Weekly::NotDue { newest, age_days } => Ok((
                true,
                format!("newest weekly backup {newest} is {age_days} day(s) old"),
                Vec::new(),
            )),
            backup::Weekly::Due(name) => {
                let made = backup::make(
                    ctx,
                    &name,
                    backup::WEEKLY_INCLUDES,
                    // Always a zip: it is what goes off-site (README, "Folder backups of our own").
                    backup::create::Format::Zip,
                    policy,
                    &remote::FromSettings,
                )?;
                let failed = made.pruned.iter().filter(|p| p.failed()).count();
                let deleted =
                    made.pruned.iter().filter(|p| p.result == backup::PruneResult::Deleted).count();
                let mut detail =
                    format!("created {}; pruned {deleted}, {failed} failed", ctx.show(&made.path));
                if !made.left_out.is_empty() {
                    detail.push_str(&format!(
                        "; it leaves out {} file(s) of user data",
                        made.left_out.len()
                    ));
                }
                let ok = failed == 0 && made.left_out.is_empty();
                let mut problems = made.left_out;
                problems.extend(made.warnings);
                Ok((ok, detail, problems))
            }
        },
        Task::LogsArchive => {
            let report = archival::archive(ctx, &archival::log_dirs(ctx, &[])?, false)?;
            Ok((
                report.problems.is_empty(),
                format!("{} step(s), {} problem(s)", report.steps.len(), report.problems.len()),
                report.problems,
            ))
        }
        Task::MessagesArchive => {
            let report = messages::archive_messages(ctx, None, messages::DEFAULT_DAYS, false)?;
            let moved: usize = report.users.iter().map(|u| u.archived).sum();
            Ok((
                report.ok(),
                format!(
                    "{moved} message(s) archived for {} user(s), {} problem(s)",
                    report.users.len(),
                    report.problems.len()
                ),
                report.problems,
            ))
        }
        Task::RemotePush => remote::push_new(ctx),
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
