//! Which copies move to `archive/`, which are compressed, which are deleted ([`plan`],
//! which touches nothing); and the crash-safe file operations that carry it out
//! ([`execute`]). Shared by the writer's background thread and the sidecar's
//! `logs archive`, so both apply one rule.
//!
//! ```
//! use mhm_logfiles::{retention::{plan, Copies, Policy}, time::Zone};
//! use std::time::Duration;
//!
//! let copies = Copies::default(); // normally `scan_log(..)`
//! let policy = Policy::new(5, 20, Duration::from_secs(30 * 86_400), true);
//! assert!(plan(&copies, &policy, 0, Zone::Utc, "logs/archive".as_ref()).is_empty());
//! ```
//!
//! Every gzip is written to `.tmp-*` in the destination folder, synced, verified by
//! decompressing it and comparing length and CRC-32 with the source, renamed into place,
//! and only then is the source removed: a crash at any point leaves the original or a
//! whole `.gz` under its final name, never neither and never a truncated `.gz`.

mod files;
mod plan;

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use chrono::NaiveDate;

pub use files::{checksum_gz, checksum_plain, execute, free_name, gzip_file, Outcome};
pub use plan::plan;

use crate::{
    naming::CopyName,
    time::{system_time_nanos, Zone},
};

/// One rotated copy found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogCopy {
    /// Where it is.
    pub path: PathBuf,
    /// Its parsed name.
    pub name: CopyName,
    /// The day its age counts from: the date in its name, else its mtime's day.
    pub day: NaiveDate,
}

/// The copies of one log, each list oldest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Copies {
    /// Copies in `backups/`.
    pub backups: Vec<LogCopy>,
    /// Copies in `archive/`.
    pub archive: Vec<LogCopy>,
}

/// The retention rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Copies kept in `backups/` per log.
    pub backup_count: usize,
    /// Copies kept in `archive/` per log.
    pub archive_count: usize,
    /// Archive copies this old or older are deleted.
    pub max_age: Duration,
    /// Gzip copies as they overflow into `archive/`.
    pub compress_on_move: bool,
    /// The sidecar's daily rule: copies this old or older are gzipped into `archive/`
    /// (from `backups/`) or in place (plain copies in `archive/`). `None` for the writer.
    pub compress_after: Option<Duration>,
}

impl Policy {
    /// The writer's rule (no age-based compression): `backup_count` copies in `backups/`,
    /// `archive_count` in `archive/`, none older than `max_age`; `compress_on_move`
    /// gzips copies as they overflow.
    pub fn new(
        backup_count: usize,
        archive_count: usize,
        max_age: Duration,
        compress_on_move: bool,
    ) -> Self {
        Self { backup_count, archive_count, max_age, compress_on_move, compress_after: None }
    }
}

/// One planned change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Rename `from` to `to` (copy + sync + rename across file systems).
    Move {
        /// Source.
        from: PathBuf,
        /// Destination.
        to: PathBuf,
    },
    /// Compress `from` into `to` (a `.gz`), verify, then remove `from`.
    Gzip {
        /// Source.
        from: PathBuf,
        /// Destination.
        to: PathBuf,
    },
    /// Delete the copy at `path`.
    Delete {
        /// The copy.
        path: PathBuf,
    },
}

/// A planned change and why it is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// Why, for `--dry-run` and logs.
    pub why: String,
}

/// The copies of `log` (e.g. `app.log`) in its two folders. Missing folders are empty;
/// foreign files and other logs' copies are left out.
pub fn scan_log(
    log: &str,
    backup_dir: &Path,
    archive_dir: &Path,
    zone: Zone,
) -> io::Result<Copies> {
    let keep = |name: &CopyName| name.log == log;
    Ok(Copies {
        backups: scan_dir(backup_dir, zone, keep)?,
        archive: scan_dir(archive_dir, zone, keep)?,
    })
}

/// Puts copies in the order they were written: day, then dated after undated, then number.
pub fn sort(copies: &mut [LogCopy]) {
    copies.sort_by(|a, b| {
        (a.day, a.name.date.is_some(), a.name.seq, a.name.gz).cmp(&(
            b.day,
            b.name.date.is_some(),
            b.name.seq,
            b.name.gz,
        ))
    });
}

/// Every copy in `dir` whose name passes `keep`, oldest first. A missing folder is empty.
pub fn scan_dir(
    dir: &Path,
    zone: Zone,
    keep: impl Fn(&CopyName) -> bool,
) -> io::Result<Vec<LogCopy>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut copies = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        let Some(name) = CopyName::parse(&file_name) else { continue };
        if !keep(&name) || !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            continue;
        }
        let day = match name.date {
            Some(day) => day,
            None => {
                let mtime =
                    entry.metadata().and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
                zone.day(system_time_nanos(mtime))
            }
        };
        copies.push(LogCopy { path: entry.path(), name, day });
    }
    sort(&mut copies);
    Ok(copies)
}

/// The age of a copy at `now`: from 00:00 of its day in `zone`.
pub fn age(copy: &LogCopy, now: i64, zone: Zone) -> Duration {
    let start = zone.start_of_day(copy.day);
    Duration::from_nanos(u64::try_from(now.saturating_sub(start)).unwrap_or(0))
}
