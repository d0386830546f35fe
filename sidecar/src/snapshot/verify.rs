//! The check of a snapshot: the archive scanned by [`crate::verify`] against
//! `snapshot_manifest.json`, and its fields checked.

use std::{collections::BTreeMap, fs, path::Path};

use super::manifest::{Manifest as SnapshotManifest, MANIFEST as SNAPSHOT_MANIFEST};
use crate::{
    pack::FileEntry,
    verify::{
        check, check_count_and_total, check_created_at, scan_folder, scan_zip, Links, Listing,
        Report, Seen,
    },
    Problem,
};

/// Verifies the snapshot at `path`: a zip, or a folder written with `--no-compress`.
pub fn snapshot(path: &Path) -> Report<SnapshotManifest> {
    let scan = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(scan_folder(path, SNAPSHOT_MANIFEST)),
        Ok(_) => scan_zip(path, SNAPSHOT_MANIFEST, &crate::NoProgress),
        Err(e) => Err(Problem::general(format!("cannot open: {e}"))),
    };
    check(scan, SNAPSHOT_MANIFEST, "the snapshot", Links::OwnPart, check_snapshot_manifest)
}

fn check_snapshot_manifest(
    m: &SnapshotManifest,
    _seen: &BTreeMap<String, Seen>,
    problems: &mut Vec<Problem>,
) {
    if m.snapshot_name.trim().is_empty() {
        problems.push(Problem::at(SNAPSHOT_MANIFEST, "snapshot_name is empty"));
    }
    check_created_at(SNAPSHOT_MANIFEST, &m.created_at, problems);
    for f in &m.files {
        let top = f.path.split('/').next().unwrap_or("");
        let allowed = (top == "code" && m.includes.code) || (top == "data" && m.includes.user_data);
        if !allowed {
            problems.push(Problem::at(&f.path, "not under a part the manifest includes"));
        }
    }
    check_count_and_total(SNAPSHOT_MANIFEST, m.file_count, m.total_bytes, &m.files, problems);
}

impl Listing for SnapshotManifest {
    fn files(&self) -> &[FileEntry] {
        &self.files
    }
}
