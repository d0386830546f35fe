//! Log archival (SPEC section 2): the library's retention rule with the sidecar's
//! "compress after 7 days", applied to every log folder; and reading a log's history.
//!
//! Names and ages come from `mhm_logfiles::naming` and `mhm_logfiles::retention`, the same
//! code the writer uses, so the two can never disagree on what a copy is called or how old it is.

use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{self, BufReader, Read, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use flate2::read::MultiGzDecoder;
use mhm_log::Settings;
use mhm_logfiles::{
    naming::CopyName,
    retention::{self, Action, Copies, LogCopy, Policy},
};
use serde::Serialize;

use crate::{error::usage, files, Ctx, Problem};

/// The sidecar's daily rule: copies 7 days old or older are gzipped into `archive/`.
pub const COMPRESS_AFTER: Duration = Duration::from_secs(7 * 86_400);

/// A folder of active logs and where its copies live.
#[derive(Clone, Debug)]
pub struct LogDir {
    /// The active logs' folder.
    pub dir: PathBuf,
    /// Rotated copies.
    pub backups: PathBuf,
    /// Older copies.
    pub archive: PathBuf,
}

impl LogDir {
    /// `dir` with its copy folders as `settings` place them.
    pub fn new(dir: PathBuf, settings: &Settings) -> Self {
        let probe = dir.join("x.log");
        Self {
            backups: settings.backup_dir_for(&probe),
            archive: settings.archive_dir_for(&probe),
            dir,
        }
    }

    /// Every log with an active file or a copy here, by name (`app.log`).
    pub fn log_names(&self, ctx: &Ctx) -> Result<BTreeSet<String>> {
        let mut names = BTreeSet::new();
        if let Some(entries) = read_dir_if_exists(ctx, &self.dir)? {
            for entry in entries {
                let entry = entry.with_context(|| format!("reading {}", ctx.show(&self.dir)))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                if name.ends_with(".log") {
                    names.insert(name.to_string());
                } else if let Some(copy) = CopyName::parse(name).filter(|c| c.log.ends_with(".log"))
                {
                    // A copy an older version left beside the active logs.
                    names.insert(copy.log);
                }
            }
        }
        for folder in [&self.backups, &self.archive] {
            if let Some(entries) = read_dir_if_exists(ctx, folder)? {
                for entry in entries {
                    let entry = entry.with_context(|| format!("reading {}", ctx.show(folder)))?;
                    if let Some(copy) = entry.file_name().to_str().and_then(CopyName::parse) {
                        names.insert(copy.log);
                    }
                }
            }
        }
        Ok(names)
    }

    /// The copies of `log`, oldest first. Copies that older versions of the service left
    /// directly in the log folder (`logs/app.log.2026-06-01`) count as backups.
    pub fn copies(&self, log: &str, ctx: &Ctx) -> Result<Copies> {
        let context = || {
            format!(
                "reading the copies of {log} in {} and {}",
                ctx.show(&self.backups),
                ctx.show(&self.archive)
            )
        };
        let mut copies = retention::scan_log(log, &self.backups, &self.archive, ctx.zone())
            .with_context(context)?;
        if self.dir != self.backups && self.dir != self.archive {
            let beside = retention::scan_dir(&self.dir, ctx.zone(), |n| n.log == log)
                .with_context(|| format!("reading {}", ctx.show(&self.dir)))?;
            if !beside.is_empty() {
                copies.backups.extend(beside);
                retention::sort(&mut copies.backups);
            }
        }
        Ok(copies)
    }
}

fn read_dir_if_exists(ctx: &Ctx, dir: &Path) -> Result<Option<fs::ReadDir>> {
    match fs::read_dir(dir) {
        Ok(e) => Ok(Some(e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", ctx.show(dir))),
    }
}

/// `<root>/logs` (with LOG_BACKUP_DIR / LOG_ARCHIVE_DIR) plus each `--dir` (with the
/// default `backups/` and `archive/` beside it; a relative `--dir` is under the root).
/// A `--dir` that is not a folder is a usage error.
pub fn log_dirs(ctx: &Ctx, extra: &[PathBuf]) -> Result<Vec<LogDir>> {
    let mut dirs = vec![LogDir::new(ctx.logs_dir(), &ctx.log_settings)];
    for d in extra {
        let dir = if d.is_absolute() { d.clone() } else { ctx.root.join(d) };
        if !dir.is_dir() {
            return Err(usage(format!("--dir {}: not a folder", ctx.show(&dir))));
        }
        if dirs.iter().any(|known| known.dir == dir) {
            continue;
        }
        dirs.push(LogDir::new(dir, &Settings::default()));
    }
    Ok(dirs)
}

/// One step of `logs archive`, as reported.
#[derive(Debug, Serialize)]
pub struct StepReport {
    /// `gzip`, `move` or `delete`.
    pub action: &'static str,
    /// The copy.
    pub from: String,
    /// Where it went (not for `delete`).
    pub to: Option<String>,
    /// Why.
    pub why: String,
    /// What happened.
    pub result: StepResult,
}

/// What happened to one step of `logs archive`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// Done.
    Done,
    /// A dry run: it would be done.
    Would,
    /// Nothing to do any more: another process (the log writer) moved, compressed or
    /// deleted the copy meanwhile.
    Gone,
    /// It failed: why.
    Failed(String),
}

crate::report::outcome_text!(StepResult {
    Done => "done",
    Would => "would",
    Gone => "already gone (moved by another process)",
});

/// What `logs archive` did.
#[derive(Debug, Default, Serialize)]
pub struct ArchiveReport {
    /// Steps, in the order they ran.
    pub steps: Vec<StepReport>,
    /// Leftover temporary files removed.
    pub temps_removed: Vec<String>,
    /// Corrupt copies and failed steps.
    pub problems: Vec<Problem>,
}

/// Runs (or, with `dry_run`, plans) the daily archival of `dirs`.
pub fn archive(ctx: &Ctx, dirs: &[LogDir], dry_run: bool) -> Result<ArchiveReport> {
    let mut report = ArchiveReport::default();
    let policy =
        Policy { compress_after: Some(COMPRESS_AFTER), ..writer_policy(&ctx.log_settings) };
    let mut planned = Vec::new();
    for dir in dirs {
        if !dry_run {
            // `logs restore` writes its temporary file beside the active logs.
            for folder in [&dir.dir, &dir.backups, &dir.archive] {
                for p in files::remove_stale_temps(folder) {
                    report.temps_removed.push(ctx.show(&p));
                }
            }
        }
        for log in dir.log_names(ctx)? {
            let mut copies = dir.copies(&log, ctx)?;
            keep_sound(ctx, &mut copies.backups, &mut report.problems);
            keep_sound(ctx, &mut copies.archive, &mut report.problems);
            planned.extend(retention::plan(
                &copies,
                &policy,
                ctx.now_nanos(),
                ctx.zone(),
                &dir.archive,
            ));
        }
    }
    let total: u64 = planned
        .iter()
        .filter_map(|s| match &s.action {
            Action::Gzip { from, .. } => fs::metadata(from).ok().map(|m| m.len()),
            _ => None,
        })
        .sum();
    let bar = if total >= 8 << 20 {
        ctx.progress.start("archiving logs", total)
    } else {
        Box::new(crate::NoProgress)
    };
    for step in planned {
        let (action, from, to) = match &step.action {
            Action::Gzip { from, to } => ("gzip", from, Some(to)),
            Action::Move { from, to } => ("move", from, Some(to)),
            Action::Delete { path } => ("delete", path, None),
        };
        let mut entry = StepReport {
            action,
            from: ctx.show(from),
            to: to.map(|t| ctx.show(t)),
            why: step.why.clone(),
            result: StepResult::Would,
        };
        if !dry_run {
            let mut progress = |n: u64| bar.inc(n);
            match retention::execute(&step.action, &mut progress) {
                Ok(retention::Outcome::Gone(_)) => {
                    entry.to = None;
                    entry.result = StepResult::Gone;
                    tracing::info!(target: "mhm::sidecar", "logs archive: {action} {}: gone meanwhile (the writer moved it)", entry.from);
                }
                Ok(retention::Outcome::Done(at) | retention::Outcome::AlreadyDone(at)) => {
                    if to.is_some() {
                        entry.to = Some(ctx.show(&at));
                    }
                    entry.result = StepResult::Done;
                    tracing::info!(target: "mhm::sidecar", "logs archive: {action} {} -> {} ({})", entry.from, entry.to.as_deref().unwrap_or("-"), entry.why);
                }
                Err(e) => {
                    entry.result = StepResult::Failed(e.to_string());
                    report
                        .problems
                        .push(Problem::at(format!("{action} {}", entry.from), e.to_string()));
                }
            }
        }
        report.steps.push(entry);
    }
    bar.finish();
    Ok(report)
}

/// Drops corrupt `.gz` copies from `list`, each reported and left alone (not counted,
/// moved or deleted). A copy gone since the folder was listed (the writer moved it) is
/// dropped without a word: it is not corrupt, just elsewhere.
fn keep_sound(ctx: &Ctx, list: &mut Vec<LogCopy>, problems: &mut Vec<Problem>) {
    list.retain(|c| {
        if !c.name.gz {
            return true;
        }
        match retention::checksum_gz(&c.path) {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => {
                problems.push(Problem::at(
                    ctx.show(&c.path),
                    format!("corrupt gzip copy, left in place: {e}"),
                ));
                false
            }
        }
    })
}

/// One log, as `logs list` shows it.
#[derive(Debug, Serialize)]
pub struct LogSummary {
    /// The folder.
    pub dir: String,
    /// `app.log`.
    pub name: String,
    /// Size of the active file (`null` when there is none).
    pub active_bytes: Option<u64>,
    /// Copies in `backups/`.
    pub backups: usize,
    /// Copies in `archive/`.
    pub archives: usize,
    /// Bytes on disk of all copies.
    pub copies_bytes: u64,
    /// The oldest copy's day.
    pub oldest: Option<NaiveDate>,
    /// The newest copy's day.
    pub newest: Option<NaiveDate>,
}

/// Summaries of every log in `dirs`.
pub fn list(ctx: &Ctx, dirs: &[LogDir]) -> Result<Vec<LogSummary>> {
    let mut out = Vec::new();
    for dir in dirs {
        for log in dir.log_names(ctx)? {
            let copies = dir.copies(&log, ctx)?;
            let all: Vec<&LogCopy> = copies.archive.iter().chain(&copies.backups).collect();
            out.push(LogSummary {
                dir: ctx.show(&dir.dir),
                active_bytes: fs::metadata(dir.dir.join(&log))
                    .ok()
                    .filter(|m| m.is_file())
                    .map(|m| m.len()),
                backups: copies.backups.len(),
                archives: copies.archive.len(),
                copies_bytes: all
                    .iter()
                    .filter_map(|c| fs::metadata(&c.path).ok())
                    .map(|m| m.len())
                    .sum(),
                oldest: all.iter().map(|c| c.day).min(),
                newest: all.iter().map(|c| c.day).max(),
                name: log,
            });
        }
    }
    Ok(out)
}

/// `NAME` or `NAME.log` as a log's file name; a usage error for anything with a path in it.
pub fn log_file_name(name: &str) -> Result<String> {
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(usage(format!("{name:?} is not a log name (e.g. app or app.log)")));
    }
    Ok(if name.ends_with(".log") { name.to_string() } else { format!("{name}.log") })
}

/// Streams one copy (decompressed when `.gz`) into `out`. On a read error what was read
/// has been written; the error names the file (as [`Ctx::show`] does).
pub fn copy_out(ctx: &Ctx, path: &Path, gz: bool, out: &mut dyn Write) -> Result<u64, CopyError> {
    let file = File::open(path)
        .map_err(|e| CopyError::Read(format!("{}: cannot open: {e}", ctx.show(path))))?;
    let mut reader: Box<dyn Read> = if gz {
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)))
    } else {
        Box::new(file)
    };
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let what = if gz { "corrupt gzip copy" } else { "read error" };
                return Err(CopyError::Read(format!(
                    "{}: {what} after {total} bytes: {e}",
                    ctx.show(path)
                )));
            }
        };
        out.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
}

/// Why [`copy_out`] stopped.
#[derive(Debug)]
pub enum CopyError {
    /// The copy could not be read (whole); the message names it.
    Read(String),
    /// The output could not be written (a closed pipe, a full disk).
    Write(io::Error),
}

// === one log's history ===

/// The log folder for `logs cat` and `logs restore`: `--dir` (relative to the root), else
/// `<root>/logs`.
pub fn log_dir(ctx: &Ctx, dir: Option<&Path>) -> Result<LogDir> {
    match dir {
        Some(d) => Ok(log_dirs(ctx, &[d.to_path_buf()])?
            .pop()
            .unwrap_or_else(|| LogDir::new(ctx.logs_dir(), &ctx.log_settings))),
        None => Ok(LogDir::new(ctx.logs_dir(), &ctx.log_settings)),
    }
}

/// The files holding `log`'s history between `since` and `until` (days, inclusive), in
/// order: archive copies, then backups, then the active file (dated today); each with
/// whether it is gzipped. A log with no file at all is a usage error.
pub fn history(
    ctx: &Ctx,
    dir: &LogDir,
    log: &str,
    since: Option<NaiveDate>,
    until: Option<NaiveDate>,
) -> Result<Vec<(PathBuf, bool)>> {
    let copies = dir.copies(log, ctx)?;
    let active = dir.dir.join(log);
    if copies.backups.is_empty() && copies.archive.is_empty() && !active.is_file() {
        let there: Vec<String> = list(ctx, std::slice::from_ref(dir))
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.name.trim_end_matches(".log").to_string())
            .collect();
        let there = if there.is_empty() {
            "there are none there".to_string()
        } else {
            format!("the logs there: {} (`mhm-sidecar logs list`)", there.join(", "))
        };
        return Err(usage(format!(
            "no log named {log} in {} (no active file, no copies); {there}",
            ctx.show(&dir.dir)
        )));
    }
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(usage(format!("--since {s} is after --until {u}: nothing could match")));
        }
    }
    let wanted = |day: NaiveDate| since.is_none_or(|s| day >= s) && until.is_none_or(|u| day <= u);
    let today = ctx.zone().day(ctx.now_nanos());
    let mut sources: Vec<(PathBuf, bool)> = copies
        .archive
        .iter()
        .chain(&copies.backups)
        .filter(|c| wanted(c.day))
        .map(|c| (c.path.clone(), c.name.gz))
        .collect();
    if active.is_file() && wanted(today) {
        sources.push((active, false));
    }
    Ok(sources)
}

/// What `logs restore` did (or would do).
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The copy restored, as shown.
    pub copy: String,
    /// The file written, as shown.
    pub restored: String,
}

/// Writes the copy `copy` (a path, or a file name found in `backups/` or `archive/`),
/// decompressed, to `<name>.log.restored[.N]` beside the active logs; never overwrites.
pub fn restore_copy(ctx: &Ctx, dir: &LogDir, copy: &str, dry_run: bool) -> Result<Restored> {
    let src = find_copy(ctx, dir, copy)?;
    let file_name = src.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(name) = CopyName::parse(file_name) else {
        return Err(usage(format!(
            "{} is not a log copy (expected <name>.log.<YYYY-MM-DD>[.N][.gz])",
            ctx.show(&src)
        )));
    };
    let target = files::unique_path(&dir.dir.join(format!("{}.restored", name.log)));
    let restored = Restored { copy: ctx.show(&src), restored: ctx.show(&target) };
    if dry_run {
        return Ok(restored);
    }
    fs::create_dir_all(&dir.dir).with_context(|| format!("creating {}", ctx.show(&dir.dir)))?;
    let result = (|| -> Result<()> {
        let mut out = files::Atomic::create(&target)
            .with_context(|| format!("creating {}", ctx.show(&target)))?;
        // Never readable by more users than the copy it comes from.
        if let Ok(meta) = fs::metadata(&src) {
            out.set_permissions_of(&meta)
                .with_context(|| format!("setting permissions on {}", ctx.show(out.temp())))?;
        }
        match copy_out(ctx, &src, name.gz, &mut out) {
            Ok(_) => {}
            Err(CopyError::Read(msg)) => anyhow::bail!("{msg}"),
            Err(CopyError::Write(e)) => {
                return Err(e).with_context(|| format!("writing {}", ctx.show(out.temp())))
            }
        }
        // We hold the sidecar lock, and only the sidecar writes `.restored` files.
        out.commit_new().with_context(|| format!("writing {}", ctx.show(&target)))
    })();
    result.with_context(|| format!("restoring {}", ctx.show(&src)))?;
    tracing::info!(target: "mhm::sidecar", "logs restore: wrote {} from {}", restored.restored, restored.copy);
    Ok(restored)
}

/// A copy given as a path (absolute, or relative to the current folder or the root), or
/// as a file name found in `backups/` or `archive/`.
fn find_copy(ctx: &Ctx, dir: &LogDir, copy: &str) -> Result<PathBuf> {
    let as_path = Path::new(copy);
    let mut candidates = vec![as_path.to_path_buf(), ctx.root.join(as_path)];
    if !copy.contains(['/', '\\']) {
        // By file name, compressed or not, wherever copies live.
        for folder in [&dir.backups, &dir.archive, &dir.dir] {
            candidates.push(folder.join(copy));
            candidates.push(folder.join(format!("{copy}.gz")));
        }
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        // Name the next step: the newest copies there are (of that log when it has any),
        // and the command that lists them all.
        let log = Path::new(copy)
            .file_name()
            .and_then(|n| CopyName::parse(&n.to_string_lossy()))
            .map(|c| c.log);
        let there = match newest_copies(dir, log.as_deref()) {
            (names, _) if names.is_empty() => "there are no copies there yet".to_string(),
            (names, n) => {
                let more = if n > names.len() {
                    format!(" and {} more", n - names.len())
                } else {
                    String::new()
                };
                format!(
                    "the newest there: {}{more}; `mhm-sidecar logs list` shows every log's copies",
                    names.join(", ")
                )
            }
        };
        usage(format!(
            "no copy {copy:?}: not a file, and not found in {} or {}; {there}",
            ctx.show(&dir.backups),
            ctx.show(&dir.archive)
        ))
    })
}

/// The file names of the newest five copies in `dir`'s `backups/` and `archive/` (of `log`
/// when it has any there, else of every log), and how many there are in all.
fn newest_copies(dir: &LogDir, log: Option<&str>) -> (Vec<String>, usize) {
    let mut all: Vec<(CopyName, String)> = [&dir.backups, &dir.archive]
        .into_iter()
        .filter_map(|folder| fs::read_dir(folder).ok())
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some((CopyName::parse(&name)?, name))
        })
        .collect();
    if let Some(log) = log {
        if all.iter().any(|(c, _)| c.log == log) {
            all.retain(|(c, _)| c.log == log);
        }
    }
    all.sort_by(|(a, an), (b, bn)| (b.date, b.seq, bn).cmp(&(a.date, a.seq, an)));
    let n = all.len();
    (all.into_iter().take(5).map(|(_, name)| name).collect(), n)
}

/// The writer's retention rule for `s` (what its background thread applies).
fn writer_policy(s: &Settings) -> Policy {
    Policy::new(
        s.get_backup_count(),
        s.get_archive_count(),
        s.get_archive_max_age(),
        s.get_compress(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gz_copy_gone_since_listed_is_not_corrupt() {
        let root = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(root.path(), chrono::Utc::now()).unwrap();
        let corrupt = root.path().join("app.log.2026-01-02.gz");
        fs::write(&corrupt, b"not gzip").unwrap();
        let copy = |name: &str| LogCopy {
            path: root.path().join(name),
            name: CopyName::parse(name).unwrap(),
            day: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        };
        let mut list = vec![copy("app.log.2026-01-01.gz"), copy("app.log.2026-01-02.gz")];
        let mut problems = Vec::new();
        keep_sound(&ctx, &mut list, &mut problems);
        assert!(list.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].to_string().starts_with("app.log.2026-01-02.gz: corrupt"));
    }
}
