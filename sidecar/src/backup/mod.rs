//! User-data backups (SPEC section 3): create, list, verify, prune, weekly, restore.

pub mod create;
pub mod manifest;
pub mod service;
pub mod user;
pub mod verify;

use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{BufReader, Read},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;

use self::manifest::{Includes, Manifest};
use crate::{collect, files, paths, Ctx, Problem};

/// Name prefixes of the kinds.
pub const WEEKLY_PREFIX: &str = "weekly_backup_";
/// Safety backups made before a restore.
pub const SAFETY_PREFIX: &str = "pre_restore_safety_";
/// Manual backups' default prefix.
pub const MANUAL_PREFIX: &str = "mhm_backup_";

/// Which retention group a backup belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `weekly_backup_*`.
    Weekly,
    /// Anything else.
    Manual,
    /// `pre_restore_safety_*`.
    Safety,
    /// `user_backup_<id>_<time>`: the service's per-user backups (`user.rs`).
    User,
}

impl Kind {
    /// The kind of the backup named `name`.
    pub fn of(name: &str) -> Self {
        if name.starts_with(WEEKLY_PREFIX) {
            Kind::Weekly
        } else if name.starts_with(SAFETY_PREFIX) {
            Kind::Safety
        } else if user::user_of(name).is_some() {
            Kind::User
        } else {
            Kind::Manual
        }
    }
}

/// One backup in `data/backups/`, as `backup list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct Info {
    /// File name without `.zip`.
    pub name: String,
    /// Retention group.
    pub kind: Kind,
    /// Where it is.
    pub path: PathBuf,
    /// From the manifest; else from the name; else the file's mtime.
    pub created_at: Option<DateTime<FixedOffset>>,
    /// Size on disk.
    pub size: u64,
    /// From the manifest.
    pub includes: Option<Includes>,
    /// Structurally valid: the zip opens, the manifest parses and lists only entries that
    /// are there with their sizes. `backup verify` reads every byte.
    pub valid: bool,
    /// `"mhm"` for a backup the service made itself (a folder, or a zip whose manifest
    /// lists no files); absent for ours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_by: Option<&'static str>,
}

/// The time in a name ending `_YYYYMMDD_HHMMSS[_N]` (ours) or `_YYYY-MM-DD_HH-MM-SS` (the
/// service's), read as local time.
fn time_from_name(name: &str) -> Option<DateTime<FixedOffset>> {
    let at = |len: usize, format: &str| {
        (0..name.len().saturating_sub(len - 1)).rev().find_map(|i| {
            let s = name.get(i..i + len)?;
            let t = NaiveDateTime::parse_from_str(s, format).ok()?;
            Local.from_local_datetime(&t).earliest().map(|d| d.fixed_offset())
        })
    };
    at(15, "%Y%m%d_%H%M%S").or_else(|| at(19, "%Y-%m-%d_%H-%M-%S"))
}

/// Every backup in `data/backups` (zips, and folders the service wrote), oldest first.
pub fn list(ctx: &Ctx) -> Result<Vec<Info>> {
    let dir = ctx.backups_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", ctx.show(&dir))),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", ctx.show(&dir)))?;
        let file_name = e.file_name().to_string_lossy().into_owned();
        if file_name.starts_with('.') {
            continue;
        }
        let meta = e.metadata().ok();
        // A folder the service wrote: `<name>/manifest.json` beside what it holds.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let Some(m) = service::folder_manifest(&e.path()) else { continue };
            let name = file_name.clone();
            let created_at =
                m.created_at().or_else(|| time_from_name(&name)).or_else(|| mtime(&meta));
            out.push(Info {
                kind: Kind::of(&name),
                path: e.path(),
                created_at,
                size: files::folder_size(&e.path()),
                includes: Some(m.includes()),
                valid: true,
                // A folder with digests is ours (`--format directory`).
                made_by: (!m.has_files).then_some("mhm"),
                name,
            });
            continue;
        }
        let Some(name) = file_name.strip_suffix(".zip") else { continue };
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if user::user_of(name).is_some() {
            out.push(Info {
                name: name.to_string(),
                kind: Kind::User,
                path: e.path(),
                created_at: time_from_name(name).or_else(|| mtime(&meta)),
                size: meta.map(|m| m.len()).unwrap_or(0),
                // Not a backup of ours or the service's whole-data kind: not pushed, not
                // the newest, pruned by its own rule.
                includes: None,
                valid: user::quick_check(&e.path()),
                made_by: Some("mhm"),
            });
            continue;
        }
        let (manifest, valid) = match quick_check(&e.path()) {
            Some((m, valid)) => (Some(m), valid),
            None => (None, false),
        };
        if manifest.is_none() {
            if let Some(m) = service_zip_manifest(&e.path()) {
                out.push(Info {
                    name: name.to_string(),
                    kind: Kind::of(name),
                    path: e.path(),
                    created_at: m
                        .created_at()
                        .or_else(|| time_from_name(name))
                        .or_else(|| mtime(&meta)),
                    size: meta.map(|m| m.len()).unwrap_or(0),
                    includes: Some(m.includes()),
                    valid: true,
                    made_by: Some("mhm"),
                });
                continue;
            }
        }
        let created_at = manifest
            .as_ref()
            .and_then(|m| DateTime::parse_from_rfc3339(&m.created_at).ok())
            .or_else(|| time_from_name(name))
            .or_else(|| {
                meta.as_ref()
                    .and_then(|m| m.modified().ok())
                    .map(|t| DateTime::<Utc>::from(t).with_timezone(&Local).fixed_offset())
            });
        out.push(Info {
            name: name.to_string(),
            kind: Kind::of(name),
            path: e.path(),
            created_at,
            size: meta.map(|m| m.len()).unwrap_or(0),
            includes: manifest.map(|m| m.includes),
            valid,
            made_by: None,
        });
    }
    out.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(out)
}

fn mtime(meta: &Option<fs::Metadata>) -> Option<DateTime<FixedOffset>> {
    meta.as_ref()
        .and_then(|m| m.modified().ok())
        .map(|t| DateTime::<Utc>::from(t).with_timezone(&Local).fixed_offset())
}

/// The manifest of a zip the service wrote (one without `files`), when it is one.
fn service_zip_manifest(path: &Path) -> Option<service::ServiceManifest> {
    let (mut archive, _) = crate::zipcheck::open(BufReader::new(File::open(path).ok()?)).ok()?;
    let entry = archive.by_name(manifest::NAME).ok()?;
    let m: serde_json::Value = serde_json::from_reader(entry.take(16 << 20)).ok()?;
    if m.get("files").is_some() || !m.is_object() {
        return None;
    }
    serde_json::from_value(m).ok()
}

/// The manifest and whether the zip's central directory matches it (no data read).
fn quick_check(path: &Path) -> Option<(Manifest, bool)> {
    let (mut archive, _) = crate::zipcheck::open(BufReader::new(File::open(path).ok()?)).ok()?;
    let mut bytes = Vec::new();
    archive.by_name(manifest::NAME).ok()?.take(64 << 20).read_to_end(&mut bytes).ok()?;
    let m: Manifest = serde_json::from_slice(&bytes).ok()?;
    let valid =
        m.files.iter().all(|f| {
            archive.by_name(&f.path).is_ok_and(|e| e.size() == f.size || f.link.is_some())
        }) && archive.len() == m.files.len() + 1;
    Some((m, valid))
}

/// A backup given as a path, or a name in `data/backups/` with or without `.zip`.
pub fn resolve(ctx: &Ctx, spec: &str) -> Result<PathBuf> {
    let as_path = Path::new(spec);
    if as_path.is_file() || service::folder_manifest(as_path).is_some() {
        return Ok(as_path.to_path_buf());
    }
    let dir = ctx.backups_dir();
    if !spec.contains(['/', '\\']) {
        for candidate in [dir.join(spec), dir.join(format!("{spec}.zip"))] {
            if candidate.is_file() || service::folder_manifest(&candidate).is_some() {
                return Ok(candidate);
            }
        }
    }
    // Name the next step: the backups there are (the newest few), and the command that
    // lists them all.
    let mut names: Vec<(Option<chrono::DateTime<chrono::FixedOffset>>, String)> =
        list(ctx).unwrap_or_default().into_iter().map(|b| (b.created_at, b.name)).collect();
    names.sort();
    let there = if names.is_empty() {
        format!("there are no backups in {} yet", ctx.show(&dir))
    } else {
        newest_there(names.into_iter().rev().map(|(_, n)| n), "mhm-sidecar backup list")
    };
    anyhow::bail!("no backup {spec:?}: not a file, and not found in {}; {there}", ctx.show(&dir))
}

/// The next step after a name that was not found: the newest few names there are
/// (`newest_first`, not empty) and the command that lists them all, as in "the newest
/// there: a, b and 3 more; `mhm-sidecar backup list` shows them all".
pub fn newest_there(newest_first: impl IntoIterator<Item = String>, list_command: &str) -> String {
    const SHOWN: usize = 5;
    let all: Vec<String> = newest_first.into_iter().collect();
    let more = match all.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let shown = all.into_iter().take(SHOWN).collect::<Vec<_>>().join(", ");
    format!("the newest there: {shown}{more}; `{list_command}` shows them all")
}

/// Checks a user-given backup name ([`paths::check_plain_name`]).
pub fn check_name(name: &str) -> Result<()> {
    paths::check_plain_name("backup name", name)
}

/// `<prefix><stamp>`, or `<prefix><stamp>_N` when taken.
pub fn unique_name(dir: &Path, prefix: &str, stamp: &str) -> String {
    files::unique_stem(&format!("{prefix}{stamp}"), |n| {
        dir.join(format!("{n}.zip")).exists() || dir.join(n).symlink_metadata().is_ok()
    })
}

/// A backup just made, and the prune after it.
#[derive(Debug)]
pub struct Made {
    /// Where it is.
    pub path: PathBuf,
    /// Its manifest (without the file list).
    pub manifest: Manifest,
    /// What the prune after it did.
    pub pruned: Vec<PruneStep>,
    /// Files left out by rule (links pointing outside, special files), and files gone
    /// between the listing and their turn (the service removed them meanwhile).
    pub warnings: Vec<Problem>,
    /// User data the backup could not hold (names that are not UTF-8): the backup is
    /// written with everything else, and the caller must treat it as a failure.
    pub left_out: Vec<Problem>,
}

/// Writes the backup `name` with `includes`, then prunes (asking `off_site`, see [`prune`]).
/// User data it cannot hold is listed in [`Made::left_out`] (a backup of the rest beats no
/// backup, but it is no success).
pub fn make(
    ctx: &Ctx,
    name: &str,
    includes: Includes,
    format: create::Format,
    policy: PrunePolicy,
    off_site: &dyn OffSite,
) -> Result<Made> {
    let options = create::Options { includes, format };
    let (sources, skipped) = create::collect(ctx, &options)?;
    let collect::Skipped { left_out, mut warnings } = skipped;
    for w in &warnings {
        tracing::warn!(target: "mhm::sidecar", "backup {name}: left out {w}");
    }
    for w in &left_out {
        tracing::error!(target: "mhm::sidecar", "backup {name}: leaves out user data: {w}");
    }
    let (path, manifest, vanished) =
        create::write(ctx, &ctx.backups_dir(), name, &options, sources)?;
    for w in vanished {
        tracing::warn!(target: "mhm::sidecar", "backup {name}: left out {w}");
        warnings.push(w);
    }
    tracing::info!(target: "mhm::sidecar", "backup create: wrote {} ({} files, {} bytes)", ctx.show(&path), manifest.system_info.file_count, manifest.system_info.total_bytes);
    let pruned = prune(ctx, policy, false, off_site)?;
    Ok(Made { path, manifest, pruned, warnings, left_out })
}

/// What the weekly check decided.
#[derive(Debug)]
pub enum Weekly {
    /// The newest weekly backup is younger than 7 days.
    NotDue {
        /// Its name.
        newest: String,
        /// Its age in whole days.
        age_days: i64,
    },
    /// A weekly backup is due: its name.
    Due(String),
}

/// The newest weekly backup made at or before `now`: one stamped in the future (the clock
/// was ahead) is not this week's.
pub fn newest_weekly(backups: &[Info], now: DateTime<Utc>) -> Option<&Info> {
    backups.iter().rev().find(|b| b.kind == Kind::Weekly && b.created_at.is_none_or(|t| t <= now))
}

/// Whether a weekly backup is due: none exists, the newest is 7 or more days old, or the
/// newest does not pass the quick check (a corrupted one is replaced at the next run, not a
/// week later). Other kinds neither count nor push weekly ones out, nor do weekly ones
/// stamped in the future.
pub fn weekly_due(ctx: &Ctx) -> Result<Weekly> {
    let backups = list(ctx)?;
    let newest = newest_weekly(&backups, ctx.now).filter(|b| b.valid);
    if let Some(b) = newest {
        if let Some(t) = b.created_at {
            let age = ctx.now.fixed_offset().signed_duration_since(t);
            if age < chrono::Duration::days(7) {
                return Ok(Weekly::NotDue { newest: b.name.clone(), age_days: age.num_days() });
            }
        }
    }
    Ok(Weekly::Due(unique_name(&ctx.backups_dir(), WEEKLY_PREFIX, &ctx.stamp())))
}

/// What a weekly backup holds.
pub const WEEKLY_INCLUDES: Includes =
    Includes { users: true, config: true, logs: false, code: false };

/// One decision of `backup prune`.
#[derive(Debug, Serialize)]
pub struct PruneStep {
    /// The backup (or temporary file).
    pub name: String,
    /// Why it goes.
    pub why: String,
    /// What happened to it.
    pub result: PruneResult,
}

/// What happened to one backup `prune` chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PruneResult {
    /// Deleted.
    Deleted,
    /// A dry run: it would be deleted.
    WouldDelete,
    /// Deleting it failed: why.
    Failed(String),
    /// Past the rule, but kept: it was never pushed off-site.
    Kept,
}

crate::report::outcome_text!(PruneResult {
    Deleted => "deleted",
    WouldDelete => "would delete",
    Kept => "kept",
});

impl PruneStep {
    /// Whether the step failed.
    pub fn failed(&self) -> bool {
        matches!(self.result, PruneResult::Failed(_))
    }
}

/// Prune settings.
#[derive(Clone, Copy, Debug)]
pub struct PrunePolicy {
    /// Backups this old or older go.
    pub retention: Duration,
    /// At most this many per kind.
    pub max_count: usize,
}

impl PrunePolicy {
    /// `BACKUP_RETENTION_DAYS` 30, `BACKUP_MAX_COUNT` 10.
    pub const DEFAULT: Self = Self { retention: Duration::from_secs(30 * 86_400), max_count: 10 };

    /// The policy from flags when given, else `BACKUP_RETENTION_DAYS` (30) and
    /// `BACKUP_MAX_COUNT` (10) from the environment or `.env`.
    pub fn from_settings(ctx: &Ctx, days: Option<u64>, max_count: Option<u64>) -> Result<Self> {
        let days = ctx.settings.backup_retention_days.or_flag(days)?;
        let max = ctx.settings.backup_max_count.or_flag(max_count)?;
        Ok(Self {
            retention: Duration::from_secs(days.saturating_mul(86_400)),
            max_count: usize::try_from(max).unwrap_or(usize::MAX),
        })
    }
}

/// Deletes a backup: a zip, or (the service's) a folder, first renamed to a temporary name
/// so that a removal cut short never leaves something that looks like a backup.
fn remove_backup(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        let aside = files::temp_path(path);
        fs::rename(path, &aside)?;
        files::sync_dir(path);
        fs::remove_dir_all(&aside)
    } else {
        fs::remove_file(path)
    }
}

/// What the off-site store holds, as prune asks it: a backup whose only copy is here is
/// kept while copies are kept off-site. The store implements it (`remote::FromSettings`);
/// [`NoOffSite`] where there is none. Passed in, so that backups know nothing of the store.
pub trait OffSite {
    /// Whether copies are kept off-site at all (asked only when something would go).
    fn configured(&self, ctx: &Ctx) -> bool;
    /// The names of the whole copies in the store; `None` when it cannot be listed.
    fn copies(&self, ctx: &Ctx) -> Option<BTreeSet<String>>;
}

/// No off-site store: backups are pruned by the local rules alone.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOffSite;

impl OffSite for NoOffSite {
    fn configured(&self, _: &Ctx) -> bool {
        false
    }

    fn copies(&self, _: &Ctx) -> Option<BTreeSet<String>> {
        None
    }
}

/// Deletes (or, with `dry_run`, lists) backups past the policy; never the newest valid one,
/// nor (while `off_site` is configured) one never pushed there.
pub fn prune(
    ctx: &Ctx,
    policy: PrunePolicy,
    dry_run: bool,
    off_site: &dyn OffSite,
) -> Result<Vec<PruneStep>> {
    let dir = ctx.backups_dir();
    let mut steps = Vec::new();
    let now = ctx.now.fixed_offset();
    // Only zips with a manifest of ours are backups: another `*.zip` someone put in
    // data/backups (photos, an export) is neither counted nor ever deleted.
    let backups: Vec<Info> = list(ctx)?.into_iter().filter(|b| b.includes.is_some()).collect();
    let mut doomed: Vec<(&Info, String)> = Vec::new();
    for kind in [Kind::Weekly, Kind::Manual, Kind::Safety] {
        let mut of_kind: Vec<&Info> = backups.iter().filter(|b| b.kind == kind).collect();
        of_kind.reverse(); // newest first
        for (i, b) in of_kind.into_iter().enumerate() {
            let age =
                b.created_at.map(|t| now.signed_duration_since(t)).and_then(|d| d.to_std().ok());
            let why = if age.is_some_and(|a| a >= policy.retention) {
                format!("older than {} days", policy.retention.as_secs() / 86_400)
            } else if i >= policy.max_count {
                format!("more than {} {:?} backups", policy.max_count, kind).to_lowercase()
            } else {
                continue;
            };
            doomed.push((b, why));
        }
    }
    if !doomed.is_empty() {
        // The newest backup that verifies in full is kept whatever the rules say.
        let newest_valid = backups.iter().rev().find(|b| verify::backup(&b.path).ok());
        if let Some(keep) = newest_valid {
            doomed.retain(|(b, _)| b.path != keep.path);
        }
        // And the newest valid one that holds user data, should the newest be, say, logs only.
        let newest_with_users = backups
            .iter()
            .rev()
            .filter(|b| b.includes.as_ref().is_some_and(|i| i.users))
            .find(|b| verify::backup(&b.path).ok());
        if let Some(keep) = newest_with_users {
            doomed.retain(|(b, _)| b.path != keep.path);
        }
    }
    // While off-site copies are configured, the only copy of a backup that never reached
    // the store is kept (a failed or pending push must not make it go away); when the
    // store cannot be listed, nothing is known to be there, so every one is kept.
    if !doomed.is_empty() && off_site.configured(ctx) {
        let in_store = off_site.copies(ctx);
        doomed.retain(|(b, why)| {
            let pushed = b.path.is_dir() // folder backups are not pushed unless named
                || in_store.as_ref().is_some_and(|s| s.contains(&b.name));
            if !pushed {
                tracing::warn!(target: "mhm::sidecar", "backup prune: kept {} ({why}): it was never pushed off-site", b.name);
                steps.push(PruneStep {
                    name: b.name.clone(),
                    why: format!("{why}, but kept: never pushed off-site"),
                    result: PruneResult::Kept,
                });
            }
            pushed
        });
    }
    for (b, why) in doomed {
        let result = if dry_run {
            PruneResult::WouldDelete
        } else {
            match remove_backup(&b.path) {
                Ok(()) => {
                    tracing::info!(target: "mhm::sidecar", "backup prune: deleted {} ({why})", b.name);
                    PruneResult::Deleted
                }
                Err(e) => PruneResult::Failed(e.to_string()),
            }
        };
        steps.push(PruneStep { name: b.name.clone(), why, result });
    }
    steps.extend(prune_user_backups(ctx, policy, dry_run)?);
    if dry_run {
        for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > files::STALE_AFTER);
            if name.starts_with(files::TEMP_PREFIX) && old {
                steps.push(PruneStep {
                    name,
                    why: "leftover temporary file".into(),
                    result: PruneResult::WouldDelete,
                });
            }
        }
    } else {
        for p in files::remove_stale_temps(&dir) {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            steps.push(PruneStep {
                name,
                why: "leftover temporary file".into(),
                result: PruneResult::Deleted,
            });
        }
    }
    Ok(steps)
}

/// The service's per-user backups, by their own rule: the newest
/// [`user::KEEP_PER_USER`] of each user, none older than the retention (`BACKUP_RETENTION_DAYS`).
fn prune_user_backups(ctx: &Ctx, policy: PrunePolicy, dry_run: bool) -> Result<Vec<PruneStep>> {
    let now = ctx.now.fixed_offset();
    let mut by_user: std::collections::BTreeMap<String, Vec<Info>> = Default::default();
    for b in list(ctx)?.into_iter().filter(|b| b.kind == Kind::User) {
        if let Some(user) = user::user_of(&b.name) {
            by_user.entry(user.to_string()).or_default().push(b);
        }
    }
    let mut steps = Vec::new();
    for (user, mut backups) in by_user {
        backups.reverse(); // newest first
        for (i, b) in backups.iter().enumerate() {
            let age =
                b.created_at.map(|t| now.signed_duration_since(t)).and_then(|d| d.to_std().ok());
            let why = if age.is_some_and(|a| a >= policy.retention) {
                format!("older than {} days", policy.retention.as_secs() / 86_400)
            } else if i >= user::KEEP_PER_USER {
                format!("more than {} per-user backups of {user}", user::KEEP_PER_USER)
            } else {
                continue;
            };
            let result = if dry_run {
                PruneResult::WouldDelete
            } else {
                match fs::remove_file(&b.path) {
                    Ok(()) => {
                        tracing::info!(target: "mhm::sidecar", "backup prune: deleted {} ({why})", b.name);
                        PruneResult::Deleted
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => PruneResult::Failed(e.to_string()),
                }
            };
            steps.push(PruneStep { name: b.name.clone(), why, result });
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_name_times() {
        assert_eq!(Kind::of("weekly_backup_20260101_010000"), Kind::Weekly);
        assert_eq!(Kind::of("pre_restore_safety_20260101_010000"), Kind::Safety);
        assert_eq!(Kind::of("mine"), Kind::Manual);
        assert!(time_from_name("mhm_backup_20260101_010203").is_some());
        assert!(time_from_name("mhm_backup_20260101_010203_2").is_some());
        assert!(time_from_name("nodate").is_none());
    }
}
