//! Backups the service made itself (SPEC.md section 3, "Backups the service made itself"):
//! folders `<name>/` holding `manifest.json` (`"format": "directory"`, `created_at` as
//! `YYYY-MM-DD HH:MM:SS`, `includes`, no digests) with `users/`, `config/`, ... beside it,
//! and older zips whose `manifest.json` has no `files`. They are listed, counted for the
//! weekly check, `status` and prune, verified for what they carry, and restorable.

use std::{fs, io::Read, path::Path};

use chrono::{DateTime, FixedOffset, Local, NaiveDateTime, TimeZone};
use serde::Deserialize;

use super::manifest::{Includes, NAME};

/// What the service writes in its `manifest.json`: every field optional, unknown ones
/// ignored (it has changed over the years).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ServiceManifest {
    /// The backup's name.
    #[serde(default)]
    pub backup_name: Option<String>,
    /// When it was made: `YYYY-MM-DD HH:MM:SS` or Python's `isoformat()`, local time.
    #[serde(default)]
    pub created_at: Option<String>,
    /// Which parts it holds.
    #[serde(default)]
    pub includes: Option<ServiceIncludes>,
    /// `"directory"` for a folder backup.
    #[serde(default)]
    pub format: Option<String>,
    /// Whether it lists its `files` with digests: a folder backup this tool wrote
    /// (`--format directory`), verified in full, rather than the service's own.
    #[serde(default, rename = "files", deserialize_with = "present")]
    pub has_files: bool,
}

/// `true` for a field that is there, whatever it holds (not kept).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// The service's `includes` (no `code`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct ServiceIncludes {
    /// `users/`.
    #[serde(default)]
    pub users: bool,
    /// `config/`.
    #[serde(default)]
    pub config: bool,
    /// `logs/`.
    #[serde(default)]
    pub logs: bool,
    /// `code/` (the service's newer manifests, and ours).
    #[serde(default)]
    pub code: bool,
}

impl ServiceManifest {
    /// Its parts in this tool's terms.
    pub fn includes(&self) -> Includes {
        let i = self.includes.unwrap_or_default();
        Includes { users: i.users, config: i.config, logs: i.logs, code: i.code }
    }

    /// `created_at`, read as the service writes it.
    pub fn created_at(&self) -> Option<DateTime<FixedOffset>> {
        self.created_at.as_deref().and_then(parse_time)
    }
}

/// A time as the service writes it: RFC 3339, or a local `YYYY-MM-DD HH:MM:SS` /
/// `isoformat()` without an offset.
pub fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t);
    }
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    Local.from_local_datetime(&naive).earliest().map(|t| t.fixed_offset())
}

/// The manifest of a folder backup at `dir`, when it is one.
pub fn folder_manifest(dir: &Path) -> Option<ServiceManifest> {
    let file = fs::File::open(dir.join(NAME)).ok()?;
    serde_json::from_reader(std::io::BufReader::new(file.take(16 << 20))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_services_times_and_manifests_are_read() {
        assert!(parse_time("2026-11-25 01:00:00").is_some());
        assert!(parse_time("2026-11-25T01:00:00.123456").is_some());
        assert!(parse_time("2026-11-25T01:00:00+01:00").is_some());
        assert!(parse_time("yesterday").is_none());
        let m: ServiceManifest = serde_json::from_str(
            r#"{"backup_name": "weekly_backup_2026-11-25_01-00-00", "format": "directory",
                "created_at": "2026-11-25 01:00:00", "includes": {"users": true, "config": true},
                "system_info": {"total_users": 2, "backup_size": "unknown"}}"#,
        )
        .unwrap();
        assert_eq!(m.includes(), Includes { users: true, config: true, logs: false, code: false });
        assert!(m.created_at().is_some());
    }
}
