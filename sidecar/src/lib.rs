//! `mhm_sidecar`: the maintenance of an MHM root as a library, under the thin
//! `mhm-sidecar` binary (as `rustic_core` is under `rustic`).
//!
//! Every command of the binary is one call here. The library never prints, never reads the
//! command line and never decides an exit code: it takes a [`Ctx`] (the root, the run's
//! time, the settings), reports progress through [`Progress`], and returns typed reports
//! (outcomes as enums, problems as [`Problem`]) that the binary renders as tables or JSON.
//!
//! | SPEC.md section | module |
//! |---|---|
//! | 2 log archival | [`archival`] (names and ages from `mhm_logfiles::retention`) |
//! | 3 backups | [`backup`] (list, kinds, weekly, prune), [`backup::create`], [`restore`], [`verify`] |
//! | 3 `system validate` | [`validate`] |
//! | 4 message archives | [`messages`] (JSON text kept as written: [`json_text`]; the service's lock and the rewrite in place under it: [`service_file`]) |
//! | 5 tool outputs | [`tools`] |
//! | 6 snapshots | [`snapshot`] (written by [`pack`] from [`collect`], checked by [`verify`]) |
//! | 7 `maintain`, `status`, the lock | [`maintain`] + [`state`], [`status`], [`lock`], [`recover`] (in `restore/`) |
//! | 10 off-site copies | [`remote`] |
//! | settings, `.env` | [`context`], [`envfile`] |
//! | write-temp-sync-rename, free names | [`files`] |
//! | zips the sidecar did not just write | [`zipcheck`] (checked before the `zip` crate reads them) |
//!
//! ```
//! use mhm_sidecar::{validate, Ctx};
//!
//! let root = tempfile::tempdir()?;
//! std::fs::create_dir_all(root.path().join("data/users/u1"))?;
//! std::fs::write(root.path().join("data/user_index.json"), r#"{"u1": {}}"#)?;
//! let ctx = Ctx::new(root.path(), chrono::Utc::now())?;
//! let report = validate::check(&ctx);
//! assert!(report.ok(), "{:?}", report.problems);
//! # Ok::<(), anyhow::Error>(())
//! ```

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

pub mod archival;
pub mod backup;
mod collect;
mod context;
pub mod demo;
mod envfile;
pub mod error;
pub mod files;
mod json_text;
pub mod lock;
pub mod maintain;
pub mod messages;
mod notify;
mod pack;
pub mod paths;
pub mod remote;
mod report;
pub mod restore;
pub mod schedule;
mod service_file;
pub mod settings;
pub mod snapshot;
mod state;
pub mod status;
pub mod tools;
pub mod validate;
mod verify;
mod zipcheck;

pub use context::{Ctx, FailPoint, Faults, Hook};
pub use error::{LockedError, UsageError};
pub use report::{Bar, NoProgress, Problem, ProblemKind, Progress};
/// Cleaning up after a killed run, part of [`restore`]; here for its callers.
pub use restore::recover;
