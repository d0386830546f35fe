//! The copies of a log found on disk, in the order they were written, and their ages.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use chrono::NaiveDate;

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
