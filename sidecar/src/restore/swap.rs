//! The swap and its undoing: each live item moved into `.restore-old-<pid>/` (or marked
//! absent) and the staged one renamed into place, `COMMITTED` written last; a failure, or
//! a run killed before the marker, is rolled back; a committed one's old data discarded.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use super::plan::{live_for, Item};
use crate::{files, paths, Ctx, FailPoint};

pub(super) const OLD_PREFIX: &str = ".restore-old-";

pub(super) const STAGING_PREFIX: &str = ".restore-staging-";

const COMMITTED: &str = "COMMITTED";

/// A committed restore's previous data on its way out: deleted without a second look.
const DONE_PREFIX: &str = ".restore-done-";

/// Moves each live item into `old/` (or marks it absent) and the staged one into place.
pub(super) fn swap(ctx: &Ctx, items: &[Item], staging: &Path, old: &Path) -> Result<()> {
    fs::create_dir_all(old.join("config"))
        .with_context(|| format!("creating {}", ctx.show(old)))?;
    fs::create_dir_all(old.join("user"))?;
    files::sync_dir(old);
    for (n, item) in items.iter().enumerate() {
        if n == 1 {
            ctx.fail_at(FailPoint::Swap)?;
        }
        let kept = old.join(&item.key);
        if item.live.symlink_metadata().is_ok() {
            fs::rename(&item.live, &kept)
                .with_context(|| format!("moving {} aside", ctx.show(&item.live)))?;
        } else {
            let marker = absent_marker(old, &item.key);
            if let Some(parent) = marker.parent() {
                fs::create_dir_all(parent)?;
            }
            File::create(&marker)?.sync_all()?;
            files::sync_dir(&marker);
        }
        files::sync_dir(&kept);
        if let Some(parent) = item.live.parent() {
            fs::create_dir_all(parent)?;
        }
        let staged = staging.join(&item.key);
        fs::rename(&staged, &item.live).with_context(|| {
            format!("moving {} into place as {}", ctx.show(&staged), ctx.show(&item.live))
        })?;
        files::sync_dir(&item.live);
    }
    for item in items.iter().filter(|i| i.entry.ends_with('/')) {
        links_stay_in_users(ctx, &item.live)?;
    }
    ctx.fail_at(FailPoint::Commit)?;
    File::create(old.join(COMMITTED))?.sync_all()?;
    files::sync_dir(&old.join(COMMITTED));
    Ok(())
}

/// Fails when a link under `dir` (a restored folder, in place) resolves outside
/// `data/users/` on disk: the backup was checked before, but the links beside it (other
/// users' live folders) were not part of it.
fn links_stay_in_users(ctx: &Ctx, dir: &Path) -> Result<()> {
    let users = ctx.data_dir().join("users");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let entries = fs::read_dir(&at).with_context(|| format!("reading {}", ctx.show(&at)))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", ctx.show(&at)))?;
            let ft = e.file_type().with_context(|| format!("reading {}", ctx.show(&e.path())))?;
            if ft.is_dir() {
                stack.push(e.path());
                continue;
            }
            if !ft.is_symlink() {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(&users)
                .ok()
                .and_then(|r| r.to_str())
                .map(|r| r.replace('\\', "/"));
            match rel.map(|r| paths::resolve_on_disk(&users, &r)) {
                Some(Ok(dest)) if !dest.is_empty() => {}
                Some(Ok(_)) => {
                    bail!("the restored link {} leads to data/users itself", ctx.show(&path))
                }
                Some(Err(why)) => {
                    bail!("the restored link {} leads outside data/users: {why}", ctx.show(&path))
                }
                None => {
                    bail!("the restored link {} has a name that cannot be checked", ctx.show(&path))
                }
            }
        }
    }
    Ok(())
}

/// Where `swap` records that the item `key` had nothing live: `old/absent/<key>`, a
/// folder of its own, so no live name (a user folder may be called anything) can be taken
/// for a marker.
fn absent_marker(old: &Path, key: &str) -> PathBuf {
    old.join(ABSENT).join(key)
}

const ABSENT: &str = "absent";

/// Puts back everything recorded in `old` and removes it.
pub(super) fn rollback(ctx: &Ctx, old: &Path) -> Result<()> {
    if !old.exists() {
        return Ok(());
    }
    // The keys as `swap` recorded them: what it moved aside under `old/`, and what had
    // nothing live under `old/absent/`. Names are taken as they are, never rewritten.
    let mut keys = Vec::new();
    for base in [old.to_path_buf(), old.join(ABSENT)] {
        if base.join("users").symlink_metadata().is_ok() && !keys.iter().any(|k| k == "users") {
            keys.push("users".to_string());
        }
        for sub in ["user", "config"] {
            for e in fs::read_dir(base.join(sub)).into_iter().flatten().flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    bail!("{}: a name that is not UTF-8; left as it is", ctx.show(&e.path()));
                };
                let key = format!("{sub}/{name}");
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    let discarded = old.join(".discarded");
    for (n, key) in keys.into_iter().enumerate() {
        let Some(live) = live_for(ctx, &key) else { continue };
        let kept = old.join(&key);
        // Whatever is live now is the restored copy (or nothing): moved aside by one
        // rename, not deleted in place, so no moment leaves a half-deleted folder live.
        if live.symlink_metadata().is_ok() {
            fs::create_dir_all(&discarded)
                .with_context(|| format!("creating {}", ctx.show(&discarded)))?;
            let aside = discarded.join(n.to_string());
            fs::rename(&live, &aside)
                .with_context(|| format!("moving {} aside", ctx.show(&live)))?;
        }
        if kept.symlink_metadata().is_ok() {
            fs::rename(&kept, &live)
                .with_context(|| format!("putting {} back", ctx.show(&live)))?;
        }
        // Done with this key: a later run (after a failure on another key) must not
        // handle it again, or it would move aside what is live by then.
        let _ = fs::remove_file(absent_marker(old, &key));
        files::sync_dir(&live);
        files::sync_dir(&kept);
    }
    fs::remove_dir_all(old).with_context(|| format!("removing {}", ctx.show(old)))?;
    Ok(())
}

/// Removes a committed restore's previous data. First an atomic rename to
/// `.restore-done-*` (synced), so a removal cut short (a kill, a file held open, a full
/// disk) can never look like an interrupted restore and be "rolled back" over the restored
/// data; then the delete, which a later run finishes if need be.
pub(super) fn discard_committed(old: &Path) {
    let Some(parent) = old.parent() else { return };
    let suffix = old.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix = suffix.strip_prefix(OLD_PREFIX).unwrap_or(&suffix).to_string();
    let done = files::unique_path(&parent.join(format!("{DONE_PREFIX}{suffix}")));
    if fs::rename(old, &done).is_ok() {
        files::sync_dir(&done);
        let _ = fs::remove_dir_all(&done);
        files::sync_dir(&done);
    }
}

/// Finishes or rolls back a restore that a crash interrupted. Call with the lock held.
/// Returns what it did, for the caller to report.
pub fn recover_interrupted(ctx: &Ctx) -> Vec<String> {
    let mut done = Vec::new();
    let data = ctx.data_dir();
    for e in fs::read_dir(&data).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with(OLD_PREFIX) {
            if path.join(COMMITTED).exists() {
                discard_committed(&path);
                done.push(format!("finished an interrupted restore (removed {name})"));
            } else {
                match rollback(ctx, &path) {
                    Ok(()) => done.push(format!("rolled back an interrupted restore ({name})")),
                    Err(e) => done.push(format!(
                        "could not roll back an interrupted restore in {}: {e:#}",
                        ctx.show(&path)
                    )),
                }
            }
        } else if name.starts_with(DONE_PREFIX) {
            // A committed restore's old data whose removal was cut short: never roll back.
            let _ = fs::remove_dir_all(&path);
            done.push(format!("removed the previous data of a finished restore ({name})"));
        } else if name.starts_with(STAGING_PREFIX) {
            let _ = fs::remove_dir_all(&path);
            done.push(format!("removed the staging folder of an interrupted restore ({name})"));
        }
    }
    done
}
