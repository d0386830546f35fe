//! Which copies move to `archive/`, which are compressed, which are deleted ([`plan`],
//! which touches nothing); and the crash-safe file operations that carry it out
//! ([`execute`]). Shared by the writer's background thread and the sidecar's
//! `logs archive`, so both apply one rule.
//!
//! ```
//! use mhm_logfiles::{retention::{plan, Copies, Policy}, time::Zone};
//! use std::time::Duration;
//!
//! let copies = Copies::default(); // normally `scan_log(..)`
//! let policy = Policy::new(5, 20, Duration::from_secs(30 * 86_400), true);
//! assert!(plan(&copies, &policy, 0, Zone::Utc, "logs/archive".as_ref()).is_empty());
//! ```
//!
//! Every gzip is written to `.tmp-*` in the destination folder, synced, verified by
//! decompressing it and comparing length and CRC-32 with the source, renamed into place,
//! and only then is the source removed: a crash at any point leaves the original or a
//! whole `.gz` under its final name, never neither and never a truncated `.gz`.

mod copies;
mod files;
mod plan;

pub use copies::{age, scan_dir, scan_log, sort, Copies, LogCopy};
pub use files::{checksum_gz, checksum_plain, execute, free_name, gzip_file, Outcome};
pub use plan::{plan, Action, Policy, Step};
