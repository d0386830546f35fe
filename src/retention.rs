//! Which copies move to `archive/`, which are compressed, which are deleted; and the
//! crash-safe file operations that carry it out. Shared by the writer's background
//! thread and the sidecar's `logs archive`, so both apply one rule.
//!
//! ```
//! use mhm_log::retention::{plan, Copies, Policy};
//! use mhm_log::{Settings, clock::Zone};
//!
//! let copies = Copies::default(); // normally `scan_log(..)`
//! let steps = plan(&copies, &Policy::from_settings(&Settings::default()), 0, Zone::Utc, "logs/archive".as_ref());
//! assert!(steps.is_empty());
//! ```
//!
//! Every gzip is written to `.tmp-*` in the destination folder, synced, verified by
//! decompressing it and comparing length and CRC-32 with the source, renamed into place,
//! and only then is the source removed: a crash at any point leaves the original or a
//! whole `.gz` under its final name, never neither and never a truncated `.gz`.

use std::{
    fs::{self, File},
    io::{self, BufReader, Read, Write},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use chrono::NaiveDate;
use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};

use mhm_fsx::{move_file, Atomic};
pub(crate) use mhm_fsx::{remove_stale_temps, sync_dir};

use crate::{
    clock::{duration_to_nanos, Zone},
    naming::CopyName,
    Settings,
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
    /// The writer's rule for these settings (no age-based compression).
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            backup_count: s.get_backup_count(),
            archive_count: s.get_archive_count(),
            max_age: s.get_archive_max_age(),
            compress_on_move: s.get_compress(),
            compress_after: None,
        }
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

pub(crate) fn system_time_nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_to_nanos(d),
        Err(e) => -duration_to_nanos(e.duration()),
    }
}

/// The age of a copy at `now`: from 00:00 of its day in `zone`.
pub fn age(copy: &LogCopy, now: i64, zone: Zone) -> Duration {
    let start = zone.start_of_day(copy.day);
    Duration::from_nanos(u64::try_from(now.saturating_sub(start)).unwrap_or(0))
}

/// Plans the overflow and pruning of one log's copies at `now` (nanoseconds since the
/// epoch). Steps come in the order they must run; nothing is touched.
pub fn plan(
    copies: &Copies,
    policy: &Policy,
    now: i64,
    zone: Zone,
    archive_dir: &Path,
) -> Vec<Step> {
    let days = |d: Duration| d.as_secs() / 86_400;
    let old_enough =
        |c: &LogCopy| policy.compress_after.is_some_and(|after| age(c, now, zone) >= after);

    // The archive as it will be once moves are done: (copy, where it comes from).
    struct Entry<'a> {
        copy: &'a LogCopy,
        from_backups: bool,
        gzip: bool,
        why: String,
        /// The same copy still in `backups/`: a move that a crash interrupted after the
        /// archive copy was in place. One copy, counted once; finishing the move removes
        /// the source once the two are shown identical.
        source: Option<&'a LogCopy>,
    }
    // A backups copy with a twin in archive (same date and number; the archive one
    // compressed or both plain) is that twin's interrupted move.
    let is_twin = |b: &LogCopy, a: &LogCopy| {
        a.name.date == b.name.date && a.name.seq == b.name.seq && (a.name.gz || !b.name.gz)
    };
    let overflow = copies.backups.len().saturating_sub(policy.backup_count);
    let mut entries: Vec<Entry> = Vec::new();
    for copy in &copies.archive {
        let gzip = !copy.name.gz && old_enough(copy);
        let why = if gzip {
            format!("older than {} days: compress", days(policy.compress_after.unwrap_or_default()))
        } else {
            String::new()
        };
        let source = copies.backups.iter().find(|b| is_twin(b, copy));
        entries.push(Entry { copy, from_backups: false, gzip, why, source });
    }
    for (i, copy) in copies.backups.iter().enumerate() {
        if copies.archive.iter().any(|a| is_twin(copy, a)) {
            continue;
        }
        let (go, why) = if i < overflow {
            (true, format!("more than {} copies in backups", policy.backup_count))
        } else if old_enough(copy) {
            (true, format!("older than {} days", days(policy.compress_after.unwrap_or_default())))
        } else {
            (false, String::new())
        };
        if go {
            let gzip = !copy.name.gz && (policy.compress_on_move || old_enough(copy));
            entries.push(Entry { copy, from_backups: true, gzip, why, source: None });
        }
    }
    entries.sort_by(|a, b| {
        (a.copy.day, a.copy.name.date.is_some(), a.copy.name.seq).cmp(&(
            b.copy.day,
            b.copy.name.date.is_some(),
            b.copy.name.seq,
        ))
    });

    let excess = entries.len().saturating_sub(policy.archive_count);
    let mut steps = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let too_old = age(e.copy, now, zone) >= policy.max_age;
        if too_old || i < excess {
            let why = if too_old {
                format!("older than {} days", days(policy.max_age))
            } else {
                format!("more than {} copies in archive", policy.archive_count)
            };
            for copy in std::iter::once(e.copy).chain(e.source) {
                steps.push(Step {
                    action: Action::Delete { path: copy.path.clone() },
                    why: why.clone(),
                });
            }
            continue;
        }
        if let Some(source) = e.source {
            let from = source.path.clone();
            let to = e.copy.path.clone();
            let why = "already in archive (an interrupted move)".to_string();
            let action = if e.copy.name.gz && !source.name.gz {
                Action::Gzip { from, to }
            } else {
                Action::Move { from, to }
            };
            steps.push(Step { action, why });
        }
        let target_name = e.copy.name.clone().gz(e.copy.name.gz || e.gzip);
        let to = archive_dir.join(target_name.to_string());
        if e.gzip {
            steps.push(Step {
                action: Action::Gzip { from: e.copy.path.clone(), to },
                why: e.why.clone(),
            });
        } else if e.from_backups {
            steps.push(Step {
                action: Action::Move { from: e.copy.path.clone(), to },
                why: e.why.clone(),
            });
        }
    }
    steps
}

/// What [`execute`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the path the copy now has (or had, for a delete).
    Done(PathBuf),
    /// A `.gz` identical to the source was already in place (a crash between rename and
    /// removal, or another process compressing the same copy meanwhile): the source was
    /// removed.
    AlreadyDone(PathBuf),
    /// The source was gone when the step ran: another process (the writer beside the
    /// sidecar) moved, compressed or deleted it meanwhile. Nothing was done, nothing lost.
    Gone(PathBuf),
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Removes `path`; already gone is fine (another process finished with it).
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if !not_found(&e) => Err(e),
        _ => {
            sync_dir(path);
            Ok(())
        }
    }
}

/// Carries out one step. `progress` is told how many source bytes were processed.
pub fn execute(action: &Action, progress: &mut dyn FnMut(u64)) -> io::Result<Outcome> {
    match action {
        Action::Delete { path } => match fs::remove_file(path) {
            Ok(()) => Ok(Outcome::Done(path.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::AlreadyDone(path.clone())),
            Err(e) => Err(e),
        },
        Action::Move { from, to } => {
            if to.exists() {
                let source = match checksum_plain(from) {
                    Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.clone())),
                    other => other?,
                };
                if checksum_plain(to).ok() == Some(source) {
                    // An earlier move got as far as a copy in place (across file systems).
                    remove_if_there(from)?;
                    return Ok(Outcome::AlreadyDone(to.clone()));
                }
            } else {
                // Only opened, not read: the usual move is a rename, and reading the whole
                // copy for a checksum nobody compares cost the background thread as much
                // reading as the writers wrote.
                match File::open(from) {
                    Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.clone())),
                    other => drop(other?),
                }
            }
            let to = free_name(to);
            match move_file(from, &to) {
                Err(e) if not_found(&e) && !from.exists() => Ok(Outcome::Gone(from.clone())),
                Err(e) => Err(e),
                Ok(()) => Ok(Outcome::Done(to)),
            }
        }
        Action::Gzip { from, to } => gzip_file(from, to, progress),
    }
}

/// The first name at or after `to` (same date, next numbers) that is taken neither
/// plain nor as `.gz` in its folder. Names that do not parse as copies are returned as is.
pub fn free_name(to: &Path) -> PathBuf {
    let (Some(dir), Some(name)) =
        (to.parent(), to.file_name().and_then(|n| n.to_str()).and_then(CopyName::parse))
    else {
        return to.to_path_buf();
    };
    let candidate = |n: Option<u64>| {
        let mut c = name.clone();
        c.seq = c.seq.saturating_add(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)));
        c
    };
    let taken = |c: &CopyName| {
        dir.join(c.plain().to_string()).exists()
            || dir.join(c.clone().gz(true).to_string()).exists()
    };
    dir.join(mhm_fsx::first_free(candidate, taken).to_string())
}

/// Compresses `from` into the `.gz` file `to` (temp, sync, verify, rename), then removes
/// `from`. When `to` exists already (before, or by the time the `.gz` is renamed into
/// place: another process compressing the same copy): if it holds exactly `from`'s bytes
/// the source is removed; else the next free copy number is used, so nothing is ever
/// overwritten. A source gone before it could be read (another process moved it) is
/// [`Outcome::Gone`]; one gone by the time it is removed is no loss: its `.gz` is whole.
pub fn gzip_file(from: &Path, to: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<Outcome> {
    let sum = match checksum_plain(from) {
        Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.to_path_buf())),
        other => other?,
    };
    let identical = |gz: &Path| matches!(checksum_gz(gz), Ok(s) if s == sum);
    let mut to = to.to_path_buf();
    if to.exists() {
        if identical(&to) {
            remove_if_there(from)?;
            return Ok(Outcome::AlreadyDone(to));
        }
        to = free_name(&to);
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut out = Atomic::create(&to)?;
    let src = match File::open(from) {
        Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.to_path_buf())),
        other => other?,
    };
    // A `.gz` is never readable by more users than its source was.
    out.set_permissions_of(&src.metadata()?)?;
    let mut src = BufReader::with_capacity(1 << 16, src);
    let mut enc = GzEncoder::new(&mut out, Compression::default());
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let len = mhm_fsx::read_chunks(&mut src, &mut buf, |chunk| {
        hasher.update(chunk);
        progress(chunk.len() as u64);
        enc.write_all(chunk)
    })?;
    enc.finish()?;
    // The source must not have changed while we read it, and the .gz must decompress to it.
    if (len, hasher.finalize()) != sum {
        return Err(io::Error::other(format!(
            "{} changed while it was being compressed",
            from.display()
        )));
    }
    out.file().sync_all()?;
    let written = checksum_gz(out.temp())?;
    if written != sum {
        return Err(io::Error::other(format!(
            "verification of {} failed: it does not decompress to {}",
            out.temp().display(),
            from.display()
        )));
    }
    // Another process may have put a `.gz` at `to` meanwhile: the same copy is done; a
    // different one keeps its name and ours takes the next free number.
    loop {
        match out.commit_new_or_return()? {
            None => {
                remove_if_there(from)?;
                return Ok(Outcome::Done(to));
            }
            Some(back) if identical(back.path()) => {
                drop(back); // our temporary file goes
                remove_if_there(from)?;
                return Ok(Outcome::AlreadyDone(to));
            }
            Some(mut back) => {
                to = free_name(&to);
                back.set_path(&to);
                out = back;
            }
        }
    }
}

/// Length and CRC-32 of a plain file.
pub fn checksum_plain(path: &Path) -> io::Result<(u64, u32)> {
    checksum_reader(File::open(path)?)
}

/// Length and CRC-32 of a gzip file's content (all members); an error when it is corrupt.
pub fn checksum_gz(path: &Path) -> io::Result<(u64, u32)> {
    checksum_reader(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, File::open(path)?)))
}

fn checksum_reader(mut r: impl Read) -> io::Result<(u64, u32)> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let len = mhm_fsx::read_chunks(&mut r, &mut buf, |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok((len, hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn copy(dir: &str, name: &str) -> LogCopy {
        let parsed = CopyName::parse(name).unwrap();
        LogCopy { path: Path::new(dir).join(name), day: parsed.date.unwrap(), name: parsed }
    }

    /// The actions `plan` makes on 2026-01-07 (UTC), archive folder `a`.
    fn actions(copies: &Copies, policy: &Policy) -> Vec<Action> {
        let steps = plan(copies, policy, now(2026, 1, 7), Zone::Utc, Path::new("a"));
        steps.into_iter().map(|s| s.action).collect()
    }

    fn now(y: i32, m: u32, d: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap().timestamp_nanos_opt().unwrap()
    }

    fn policy() -> Policy {
        Policy {
            backup_count: 2,
            archive_count: 2,
            max_age: Duration::from_secs(30 * 86_400),
            compress_on_move: false,
            compress_after: None,
        }
    }

    #[test]
    fn overflow_moves_the_oldest_and_prunes_beyond_count() {
        let copies = Copies {
            backups: vec![
                copy("b", "app.log.2026-01-03"),
                copy("b", "app.log.2026-01-04"),
                copy("b", "app.log.2026-01-05"),
            ],
            archive: vec![copy("a", "app.log.2026-01-01.gz"), copy("a", "app.log.2026-01-02")],
        };
        let steps = plan(&copies, &policy(), now(2026, 1, 6), Zone::Utc, Path::new("a"));
        let actions: Vec<Action> = steps.into_iter().map(|s| s.action).collect();
        assert_eq!(
            actions,
            vec![
                Action::Delete { path: "a/app.log.2026-01-01.gz".into() },
                Action::Move {
                    from: "b/app.log.2026-01-03".into(),
                    to: "a/app.log.2026-01-03".into()
                },
            ]
        );
    }

    #[test]
    fn age_is_counted_from_midnight_of_the_named_day() {
        let copies = Copies { backups: vec![], archive: vec![copy("a", "app.log.2026-01-01")] };
        // 2026-01-31 00:00 is exactly 30 days after 2026-01-01 00:00: "30 days or more" deletes.
        let at = |h| {
            Utc.with_ymd_and_hms(2026, 1, 30, h, 59, 59).unwrap().timestamp_nanos_opt().unwrap()
        };
        assert!(plan(&copies, &policy(), at(23), Zone::Utc, Path::new("a")).is_empty());
        let midnight =
            Utc.with_ymd_and_hms(2026, 1, 31, 0, 0, 0).unwrap().timestamp_nanos_opt().unwrap();
        assert_eq!(plan(&copies, &policy(), midnight, Zone::Utc, Path::new("a")).len(), 1);
    }

    #[test]
    fn compress_on_move_and_after_seven_days() {
        let mut p = policy();
        p.compress_on_move = true;
        let copies = Copies {
            backups: vec![
                copy("b", "app.log.2026-01-03"),
                copy("b", "app.log.2026-01-04"),
                copy("b", "app.log.2026-01-05"),
            ],
            archive: vec![],
        };
        let steps = plan(&copies, &p, now(2026, 1, 6), Zone::Utc, Path::new("a"));
        assert_eq!(
            steps[0].action,
            Action::Gzip {
                from: "b/app.log.2026-01-03".into(),
                to: "a/app.log.2026-01-03.gz".into()
            }
        );
        // The sidecar's rule: everything 7 days old goes, compressed, whatever the count.
        let mut p = policy();
        p.backup_count = 7;
        p.archive_count = 7;
        p.compress_after = Some(Duration::from_secs(7 * 86_400));
        let copies = Copies {
            backups: vec![copy("b", "app.log.2026-01-03"), copy("b", "app.log.2026-01-04")],
            archive: vec![copy("a", "app.log.2026-01-02")],
        };
        let steps: Vec<Action> = plan(&copies, &p, now(2026, 1, 10), Zone::Utc, Path::new("a"))
            .into_iter()
            .map(|s| s.action)
            .collect();
        assert_eq!(
            steps,
            vec![
                Action::Gzip {
                    from: "a/app.log.2026-01-02".into(),
                    to: "a/app.log.2026-01-02.gz".into()
                },
                Action::Gzip {
                    from: "b/app.log.2026-01-03".into(),
                    to: "a/app.log.2026-01-03.gz".into()
                },
            ]
        );
    }

    #[test]
    fn a_copy_in_both_folders_finishes_its_interrupted_move() {
        // regression: a kill between renaming the .gz into place and removing the source
        // left the same events in backups/ and archive/ until the copy overflowed again.
        let copies = Copies {
            backups: vec![copy("b", "app.log.2026-01-05"), copy("b", "app.log.2026-01-06")],
            archive: vec![copy("a", "app.log.2026-01-05.gz")],
        };
        let steps: Vec<Action> = actions(&copies, &policy());
        assert_eq!(
            steps,
            vec![Action::Gzip {
                from: "b/app.log.2026-01-05".into(),
                to: "a/app.log.2026-01-05.gz".into()
            }]
        );
    }

    #[test]
    fn a_copy_in_both_folders_is_counted_once() {
        // regression (issue 21): after an interrupted move the copy in both folders was
        // counted twice, and one archive copy too many was deleted.
        let copies = Copies {
            backups: vec![copy("b", "app.log.2026-01-05")],
            archive: vec![
                copy("a", "app.log.2026-01-03.gz"),
                copy("a", "app.log.2026-01-04.gz"),
                copy("a", "app.log.2026-01-05.gz"),
            ],
        };
        let policy = Policy { archive_count: 3, backup_count: 5, ..policy() };
        let steps: Vec<Action> = actions(&copies, &policy);
        assert_eq!(
            steps,
            vec![Action::Gzip {
                from: "b/app.log.2026-01-05".into(),
                to: "a/app.log.2026-01-05.gz".into()
            }]
        );
        // And when that copy is itself past the count, both of its files go.
        let policy = Policy { archive_count: 2, backup_count: 5, ..policy };
        let copies =
            Copies { backups: vec![copy("b", "app.log.2026-01-03")], archive: copies.archive };
        let steps: Vec<Action> = actions(&copies, &policy);
        assert_eq!(
            steps,
            vec![
                Action::Delete { path: "a/app.log.2026-01-03.gz".into() },
                Action::Delete { path: "b/app.log.2026-01-03".into() },
            ]
        );
    }

    #[test]
    fn gzip_is_verified_and_recovers_from_a_crash_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app.log.2026-01-01");
        fs::write(&src, b"line one\nline two\n").unwrap();
        let to = dir.path().join("archive/app.log.2026-01-01.gz");
        // Simulate the crash: the .gz is whole and in place, the source still there.
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let mut enc = GzEncoder::new(File::create(&to).unwrap(), Compression::fast());
        enc.write_all(b"line one\nline two\n").unwrap();
        enc.finish().unwrap();
        assert_eq!(gzip_file(&src, &to, &mut |_| {}).unwrap(), Outcome::AlreadyDone(to.clone()));
        assert!(!src.exists());
        // A different file under the target name is never overwritten: next number.
        fs::write(&src, b"other\n").unwrap();
        let out = gzip_file(&src, &to, &mut |_| {}).unwrap();
        assert_eq!(out, Outcome::Done(dir.path().join("archive/app.log.2026-01-01.1.gz")));
        assert_eq!(checksum_gz(&to).unwrap().0, 18);
        let mut text = String::new();
        MultiGzDecoder::new(
            File::open(dir.path().join("archive/app.log.2026-01-01.1.gz")).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "other\n");
        assert!(fs::read_dir(dir.path().join("archive")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp-")));
    }

    #[test]
    fn a_source_gone_meanwhile_is_no_failure() {
        // regression (issue 8): `logs archive` beside the writer failed with "No such file
        // or directory" for copies the writer had moved since they were listed.
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("backups/app.log.2026-01-01");
        let to = dir.path().join("archive/app.log.2026-01-01");
        let gz = dir.path().join("archive/app.log.2026-01-01.gz");
        let gone = Outcome::Gone(from.clone());
        let mut none = |_| {};
        for action in [
            Action::Move { from: from.clone(), to: to.clone() },
            Action::Gzip { from: from.clone(), to: gz.clone() },
        ] {
            assert_eq!(execute(&action, &mut none).unwrap(), gone, "{action:?}");
        }
        assert!(!dir.path().join("archive").exists());
    }

    #[test]
    #[cfg(unix)] // removing a file open for reading
    fn a_gz_that_appears_while_compressing_is_compared_not_a_failure() {
        // regression (issue 8): "...gz appeared while it was written" when the writer
        // compressed the same copy meanwhile.
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("app.log.2026-01-01");
        let to = dir.path().join("archive/app.log.2026-01-01.gz");
        let text = b"line one\nline two\n";
        let gz_of = |bytes: &[u8]| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        };
        // The same copy, compressed and its source removed by the writer meanwhile.
        fs::write(&from, text).unwrap();
        let mut writer = |_| {
            if !to.exists() {
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::write(&to, gz_of(text)).unwrap();
                fs::remove_file(&from).unwrap();
            }
        };
        assert_eq!(gzip_file(&from, &to, &mut writer).unwrap(), Outcome::AlreadyDone(to.clone()));
        assert_eq!(checksum_gz(&to).unwrap().0, text.len() as u64);
        // Another copy under that name meanwhile: kept, ours takes the next number.
        fs::remove_file(&to).unwrap();
        fs::write(&from, text).unwrap();
        let mut other = |_| {
            if !to.exists() {
                fs::write(&to, gz_of(b"another copy\n")).unwrap();
            }
        };
        let next = dir.path().join("archive/app.log.2026-01-01.1.gz");
        assert_eq!(gzip_file(&from, &to, &mut other).unwrap(), Outcome::Done(next.clone()));
        assert_eq!(checksum_gz(&to).unwrap().0, 13);
        assert_eq!(checksum_gz(&next).unwrap().0, text.len() as u64);
        assert!(!from.exists());
        let names: Vec<String> = fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn stale_temps_of_dead_writers_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!(".tmp-{}-app.log.gz", std::process::id()));
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let dead = dir.path().join(".tmp-4194304-app.log.gz");
        let foreign = dir.path().join("app.log.2026-01-01");
        for p in [&mine, &dead, &foreign] {
            fs::write(p, "x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), vec![dead.clone()]);
        assert!(mine.exists() && foreign.exists() && !dead.exists());
        // Past the age limit even a live writer's temp goes.
        assert_eq!(remove_stale_temps(dir.path(), Duration::ZERO), vec![mine]);
    }
}
