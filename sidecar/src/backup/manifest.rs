//! `manifest.json`, the last entry of every backup (SPEC section 3).

use serde::{Deserialize, Serialize};

pub use crate::pack::FileEntry;

/// The manifest's name inside the zip.
pub const NAME: &str = "manifest.json";

/// What a backup holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The backup's name (the zip's file name without `.zip`).
    pub backup_name: String,
    /// When it was made, RFC 3339 with offset.
    pub created_at: String,
    /// Which parts it holds.
    pub includes: Includes,
    /// Counts.
    pub system_info: SystemInfo,
    /// The sidecar version that wrote it.
    pub tool_version: String,
    /// Every stored file (the manifest not included).
    pub files: Vec<FileEntry>,
}

/// Which parts a backup holds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Includes {
    /// `users/<id>/...` from `data/users/`.
    pub users: bool,
    /// `config/.env`, `config/requirements.txt`, `config/user_index.json`.
    pub config: bool,
    /// `logs/*.log`.
    pub logs: bool,
    /// `code/...`.
    pub code: bool,
}

/// Counts over the stored files.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SystemInfo {
    /// User folders stored.
    pub total_users: u64,
    /// Files stored (links included, the manifest not).
    pub file_count: u64,
    /// Their uncompressed size.
    pub total_bytes: u64,
}
