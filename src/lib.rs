//! `mhm-log`: a `tracing` layer and the rotating file writer under it, for a service that
//! must never lose its logs.
//!
//! Logs rotate *in process*: at midnight (local or UTC) or when the next event would take
//! a file past `max_bytes`, but never a file under `min_rotate_bytes` (5 KiB) or started
//! less than `min_rotate_age` (an hour) ago. Rotated copies go to `backups/<name>.<date>`,
//! overflow to `archive/` (gzipped when asked), and are pruned by count and age, all on a
//! background thread. See SPEC.md section 1 for the whole contract.
//!
//! ```
//! use mhm_log::{LogFiles, ManualClock, RollingFile, Settings};
//! use chrono::{TimeZone, Utc};
//! use tracing_subscriber::prelude::*;
//!
//! let dir = tempfile::tempdir()?;
//! let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap());
//! let (layer, guard) = LogFiles::builder(dir.path())
//!     .settings(Settings::default())
//!     .clock(clock.clone())
//!     .route("mhm::discord", "discord.log")
//!     .default_file("app.log")
//!     .errors_file("errors.log")
//!     .build()?;
//! let subscriber = tracing_subscriber::registry().with(layer);
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(target: "mhm::discord", user = 42, "connected");
//!     tracing::warn!(target: "mhm::core", "slow reply");
//! });
//! drop(guard);
//! let discord = std::fs::read_to_string(dir.path().join("discord.log"))?;
//! assert!(discord.ends_with(" - mhm::discord - INFO - connected | {\"user\": 42}\n"));
//! assert!(std::fs::read_to_string(dir.path().join("errors.log"))?.contains("WARNING - slow reply"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod clock;
mod error;
mod format;
mod layer;
mod policy;
mod writer;

// A copy's name, its day and the retention rule live in `mhm-logfiles`, which the
// sidecar shares; applications never need them, so nothing of it is exported here.
use mhm_logfiles::naming;

/// The retention rule and its file operations (`mhm-logfiles`), with the file helpers
/// the writer's background thread uses beside them.
mod retention {
    pub(crate) use mhm_fsx::{remove_stale_temps, sync_dir};
    pub(crate) use mhm_logfiles::{retention::*, time::system_time_nanos};
}

pub use clock::{Clock, ManualClock};
pub use error::{InitError, SettingsError};
pub use layer::{Format, LogFiles, LogFilesBuilder, LogFilesGuard};
pub use policy::{RotateAt, Settings, WriteMode};
pub use writer::{Builder as RollingFileBuilder, EventWriter, RollingFile, Stats};
