//! What a killed run leaves behind, cleaned by the next run that takes the lock, before it
//! does anything else: an interrupted restore is rolled back or finished
//! ([`super::recover_interrupted`]), and the temporary files of dead writers in `data/`
//! and `data/backups/` are removed (a safety backup or a backup cut short is a full-size
//! `.tmp-<pid>-*.zip`; a state file cut short a `.tmp-<pid>-.sidecar_state.json`).
//!
//! ```
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir_all(root.path().join("data/backups"))?;
//! let ctx = mhm_sidecar::Ctx::new(root.path(), chrono::Utc::now())?;
//! assert!(mhm_sidecar::recover::after_crash(&ctx).is_empty());
//! # Ok::<(), anyhow::Error>(())
//! ```

use super::swap::recover_interrupted;
use crate::{files, Ctx};

/// Cleans up after a killed run (call with the lock held). Returns what it did, one
/// sentence each, for the caller to report.
pub fn after_crash(ctx: &Ctx) -> Vec<String> {
    let mut done = recover_interrupted(ctx);
    for dir in [ctx.data_dir(), ctx.backups_dir()] {
        for p in files::remove_stale_temps(&dir) {
            done.push(format!("removed {}, left by a run that was stopped", ctx.show(&p)));
        }
    }
    done
}
