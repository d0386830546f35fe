//! Restoring from a backup: verify → free-space check → safety backup → extract into a
//! staging folder inside `data/` → swap by rename → roll back on any failure → system check.
//!
//! The swap keeps what it replaces in `data/.restore-old-<pid>/` until every item is in
//! place and a `COMMITTED` marker is written. A run killed half way is rolled back by the
//! next run that takes the lock ([`recover_interrupted`], called by [`recover`]), so the
//! data is either all old or all new.
//!
//! | step | module |
//! |---|---|
//! | what to restore, the items, the dry run's changes, the space needed | `plan.rs` |
//! | into the staging folder | `extract.rs` |
//! | into place, the marker, the rollback, an interrupted one finished | `swap.rs` |
//! | what a killed run leaves behind, cleaned by the next | [`recover`] |

mod extract;
mod plan;
pub mod recover;
mod swap;

use std::{fs, path::Path};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use self::plan::{Changes, Item, Scope};
pub use self::swap::recover_interrupted;
use self::swap::{OLD_PREFIX, STAGING_PREFIX};
use crate::{
    backup::{self, create},
    files, paths, Ctx, FailPoint, Problem,
};

/// What a restore did or would do.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The backup restored from.
    pub backup: String,
    /// The safety backup made first (none in a dry run).
    pub safety_backup: Option<String>,
    /// What was (or would be) replaced.
    pub items: Vec<Item>,
    /// What did not stop the restore but should be known (free space unreadable, links
    /// not restored on this platform).
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// Restores `scope` from the backup at `path` (with `dry_run`: says what would change and
/// changes nothing).
pub fn restore(ctx: &Ctx, path: &Path, scope: &Scope, dry_run: bool) -> Result<Outcome> {
    // A bad `--user` is bad usage, refused before anything is read or written.
    if let Some(id) = scope.user.as_deref() {
        paths::check_user_id(id)?;
    }
    let mut warnings = Vec::new();
    // A rollback that failed earlier left the previous data in `.restore-old-*`: never
    // restore over it (the next swap could reuse the folder and delete what it holds).
    if let Some(left) = fs::read_dir(ctx.data_dir())
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(OLD_PREFIX))
    {
        bail!(
            "{} holds the data an earlier restore could not put back; look through it, move \
             what you need back into data/, remove it, then restore again; nothing restored",
            ctx.show(&left.path())
        );
    }
    let report = backup::verify::backup(path);
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let manifest = match report.manifest {
        Some(m) if problems.is_empty() => m,
        _ => bail!(
            "{} is not a valid backup; nothing restored:\n  {}",
            ctx.show(path),
            problems.join("\n  ")
        ),
    };
    let items = plan::plan(ctx, &manifest, path, scope)?;
    let backup = ctx.show(path);
    // Space: what the restore will write (the extracted files and the safety backup).
    // A folder the service wrote is stored uncompressed: its own size.
    let zip_len = if path.is_dir() {
        files::folder_size(path)
    } else {
        fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    let needed = plan::space_needed(ctx, &manifest, &items, zip_len);
    let data = ctx.data_dir();
    // Measured on the data folder, or the root while there is none (a dry run makes nothing).
    let probe = if data.is_dir() { data.clone() } else { ctx.root.clone() };
    match fs4::available_space(&probe) {
        Ok(free) if free < needed => bail!(
            "not enough free space in {}: {free} bytes free, {needed} needed; nothing restored",
            ctx.show(&data)
        ),
        Ok(_) => {}
        Err(e) => {
            warnings.push(Problem::at(ctx.show(&data), format!("cannot read the free space: {e}")))
        }
    }
    if dry_run {
        let mut items = items;
        for item in &mut items {
            item.changes = Some(plan::changes(&manifest, item));
        }
        return Ok(Outcome { backup, safety_backup: None, items, warnings });
    }
    drop(manifest);
    fs::create_dir_all(&data).with_context(|| format!("creating {}", ctx.show(&data)))?;

    // The safety backup: users and config as they are now. No safety, no restore.
    let dir = ctx.backups_dir();
    let name = backup::unique_name(&dir, backup::SAFETY_PREFIX, &ctx.stamp());
    let options = create::Options {
        includes: backup::manifest::Includes {
            users: true,
            config: true,
            logs: false,
            code: false,
        },
        format: create::Format::Zip,
    };
    let safety = (|| {
        ctx.fail_at(FailPoint::Safety)?;
        let (sources, skipped) = create::collect(ctx, &options)?;
        // Whatever the safety backup leaves out would be gone after the swap.
        if !skipped.left_out.is_empty() || !skipped.warnings.is_empty() {
            let all = skipped.left_out.iter().chain(&skipped.warnings);
            let list: Vec<String> = all.map(ToString::to_string).collect();
            bail!(
                "the safety backup would leave out files the restore replaces:\n  {}",
                list.join("\n  ")
            );
        }
        create::write(ctx, &dir, &name, &options, sources)
    })()
    .context("making the safety backup; nothing restored")?;
    let safety_shown = ctx.show(&safety.0);
    tracing::info!(target: "mhm::sidecar", "backup restore: made the safety backup {safety_shown}");

    let pid = std::process::id();
    let staging = data.join(format!("{STAGING_PREFIX}{pid}"));
    let old = data.join(format!("{OLD_PREFIX}{pid}"));
    let result = extract::extract(ctx, path, &items, &staging, &mut warnings)
        .and_then(|()| swap::swap(ctx, &items, &staging, &old));
    let _ = fs::remove_dir_all(&staging);
    if let Err(e) = result {
        let rolled = swap::rollback(ctx, &old);
        return Err(match rolled {
            Ok(()) => e.context(format!(
                "restore failed; the previous data was put back (safety backup: {safety_shown})"
            )),
            Err(r) => e.context(format!(
                "restore failed AND rolling back failed ({r:#}); the previous data is in {} \
                 (safety backup: {safety_shown})",
                ctx.show(&old)
            )),
        });
    }
    swap::discard_committed(&old);
    Ok(Outcome { backup, safety_backup: Some(safety_shown), items, warnings })
}
