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

/// `manifest.json` of a backup written as a folder (`backup create --format directory`,
/// `BACKUP_FORMAT=directory`): the service's own directory shape, which its `BackupManager`
/// lists, validates and restores (`backup_name`, `created_at` as `YYYY-MM-DD HH:MM:SS` local
/// time, `"format": "directory"`, `includes`, `system_info`), with this tool's digests added
/// beside it (`created_at_rfc3339`, `tool_version`, `files`), so it is verified in full.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirManifest {
    /// The folder's name.
    pub backup_name: String,
    /// The service's form: `YYYY-MM-DD HH:MM:SS`, local time.
    pub created_at: String,
    /// `"directory"`.
    pub format: String,
    /// Which parts it holds.
    pub includes: Includes,
    /// The service's counts (`total_users`, `backup_size`) and ours.
    pub system_info: DirSystemInfo,
    /// When it was made, RFC 3339 with offset.
    pub created_at_rfc3339: String,
    /// The sidecar version that wrote it.
    pub tool_version: String,
    /// Every stored file (the manifest not included).
    pub files: Vec<FileEntry>,
}

/// `system_info` of a folder backup: the service's fields and ours.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct DirSystemInfo {
    /// User folders stored.
    pub total_users: u64,
    /// The service's field: bytes stored (it writes `"unknown"`; ours is a number).
    pub backup_size: u64,
    /// Files stored (links included, the manifest not).
    pub file_count: u64,
    /// Their size.
    pub total_bytes: u64,
}

impl DirManifest {
    /// The folder form of `m`, made at `at`.
    pub fn from_manifest(m: Manifest, at: chrono::DateTime<chrono::FixedOffset>) -> Self {
        Self {
            backup_name: m.backup_name,
            created_at: at.format("%Y-%m-%d %H:%M:%S").to_string(),
            format: "directory".to_string(),
            includes: m.includes,
            system_info: DirSystemInfo {
                total_users: m.system_info.total_users,
                backup_size: m.system_info.total_bytes,
                file_count: m.system_info.file_count,
                total_bytes: m.system_info.total_bytes,
            },
            created_at_rfc3339: m.created_at,
            tool_version: m.tool_version,
            files: m.files,
        }
    }

    /// The same in the zip manifest's terms (what the checks compare against).
    pub fn into_manifest(self) -> Manifest {
        Manifest {
            backup_name: self.backup_name,
            created_at: self.created_at_rfc3339,
            includes: self.includes,
            system_info: SystemInfo {
                total_users: self.system_info.total_users,
                file_count: self.system_info.file_count,
                total_bytes: self.system_info.total_bytes,
            },
            tool_version: self.tool_version,
            files: self.files,
        }
    }
}
