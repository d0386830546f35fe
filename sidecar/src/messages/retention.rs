//! Retention of archive files: those older than `MESSAGE_ARCHIVE_RETENTION_DAYS` (by the
//! time in their names) are deleted; 0 keeps them forever.

use std::{fs, path::Path};

use chrono::Duration;

use super::archive::archive_files;
use super::report::UserReport;
use crate::{Ctx, Problem};

/// Deletes (or, in a dry run, lists) the archive files in `dir` past the retention.
pub(super) fn apply_retention(
    ctx: &Ctx,
    dir: &Path,
    retention_days: u64,
    dry_run: bool,
    ur: &mut UserReport,
    problems: &mut Vec<Problem>,
) {
    if retention_days == 0 {
        return;
    }
    // A limit beyond the calendar's range deletes nothing.
    let Some(limit) = i64::try_from(retention_days).ok().and_then(Duration::try_days) else {
        return;
    };
    let now = ctx.now.fixed_offset();
    for (path, t) in archive_files(ctx, dir, problems) {
        if now.signed_duration_since(t) < limit {
            continue;
        }
        if !dry_run {
            if let Err(e) = fs::remove_file(&path) {
                problems.push(Problem::at(ctx.show(&path), format!("cannot delete: {e}")));
                continue;
            }
            ur.changed = true;
            tracing::info!(target: "mhm::sidecar", "messages archive: deleted {} (older than {retention_days} days)", ctx.show(&path));
        }
        ur.deleted_archives.push(ctx.show(&path));
    }
}
