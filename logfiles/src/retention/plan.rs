//! [`plan`]: which copies move, which are compressed, which go, by the rule ([`Policy`]), as
//! [`Step`]s. Touches nothing.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use super::copies::{age, Copies, LogCopy};
use crate::time::Zone;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::CopyName;
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
}
