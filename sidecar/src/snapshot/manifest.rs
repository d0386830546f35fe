//! `snapshot_manifest.json`, the last entry of every snapshot (SPEC section 6).

use serde::{Deserialize, Serialize};

use crate::pack::FileEntry;

/// The manifest's name in a snapshot.
pub const MANIFEST: &str = "snapshot_manifest.json";
/// Snapshot names start with this.
pub const PREFIX: &str = "mhm_snapshot_";

/// What a snapshot holds.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Includes {
    /// `code/...`.
    pub code: bool,
    /// `data/...`.
    pub user_data: bool,
}

/// `snapshot_manifest.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The snapshot's name (without `.zip`).
    pub snapshot_name: String,
    /// When it was made, RFC 3339 with offset.
    pub created_at: String,
    /// Which parts it holds.
    pub includes: Includes,
    /// Files stored (the manifest not counted).
    pub file_count: u64,
    /// Their uncompressed size.
    pub total_bytes: u64,
    /// The sidecar version that wrote it.
    pub tool_version: String,
    /// Every stored file.
    pub files: Vec<FileEntry>,
}
