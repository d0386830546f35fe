//! The check of a backup: the archive scanned by [`crate::verify`] against the backup's own
//! manifest (ours, in a zip or a folder), and its fields checked; a backup the service made
//! itself (a folder or zip whose manifest lists no files, a per-user backup) is checked for
//! what it carries and listed as found.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use super::{
    manifest::{self as backup_manifest, Manifest as BackupManifest},
    service::{self, ServiceManifest},
    user::{self, USER_METADATA},
};
use crate::{
    files,
    pack::FileEntry,
    report::Bar,
    verify::{
        check, check_count_and_total, check_created_at, json_problems, scan_folder, scan_zip,
        Links, Listing, Report, Scan, Seen,
    },
    Problem,
};

/// Verifies the backup at `path`: a zip of ours; or one the service made itself (a folder
/// with a `manifest.json`, or a zip whose manifest lists no files), whose entries are
/// checked for what they carry and listed in the returned manifest with the digests read.
pub fn backup(path: &Path) -> Report<BackupManifest> {
    backup_with(path, &crate::NoProgress)
}

/// [`backup`], telling `bar` the compressed bytes of a zip's entries as they are read.
pub fn backup_with(path: &Path, bar: &dyn Bar) -> Report<BackupManifest> {
    if user::is_user_backup(path) {
        return user_backup(path);
    }
    if path.is_dir() {
        let scan: Scan<serde_json::Value> = scan_folder(path, backup_manifest::NAME);
        let bad = |e: serde_json::Error| Problem::at(backup_manifest::NAME, format!("{e}"));
        // A folder that lists its files with digests is ours (`--format directory`),
        // checked in full; one that does not is the service's.
        if matches!(&scan.manifest, Some(Ok(v)) if v.get("files").is_some()) {
            let scan = scan.map(|v| {
                serde_json::from_value::<backup_manifest::DirManifest>(v)
                    .map(backup_manifest::DirManifest::into_manifest)
                    .map_err(bad)
            });
            return check(
                Ok(scan),
                backup_manifest::NAME,
                "the backup",
                Links::UsersOnly,
                check_backup_manifest,
            );
        }
        let scan = scan.map(|v| serde_json::from_value::<ServiceManifest>(v).map_err(bad));
        return service_backup(path, Ok(scan));
    }
    match scan_zip::<AnyManifest>(path, backup_manifest::NAME, bar) {
        Ok(scan) if matches!(scan.manifest, Some(Ok(AnyManifest::Service(_)))) => {
            let scan = scan.map(|m| match m {
                AnyManifest::Service(m) => Ok(m),
                AnyManifest::Ours(_) => Err(Problem::general("unreachable")),
            });
            service_backup(path, Ok(scan))
        }
        other => {
            let scan = other.map(|s| {
                s.map(|m| match m {
                    AnyManifest::Ours(m) => Ok(m),
                    AnyManifest::Service(_) => Err(Problem::general("unreachable")),
                })
            });
            check(scan, backup_manifest::NAME, "the zip", Links::UsersOnly, check_backup_manifest)
        }
    }
}

/// A backup manifest of ours, or the service's (which lists no files).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AnyManifest {
    Ours(BackupManifest),
    Service(ServiceManifest),
}

/// The check of a backup the service made: the same reading (CRCs, sizes, names, links),
/// then the manifest's own fields and every JSON file parsing; the files listed are the
/// ones found, with the digests read.
fn service_backup(
    path: &Path,
    scan: Result<Scan<ServiceManifest>, Problem>,
) -> Report<BackupManifest> {
    let scan = scan.map(|mut scan| {
        let manifest = scan.manifest.take();
        let mut extra = Vec::new();
        let synthesized = manifest.map(|m| {
            m.map(|m| {
                let json = scan.seen.keys().filter(|n| n.ends_with(".json"));
                extra.extend(json_problems(path, json));
                synthesize(path, &m, &scan.seen, &mut extra)
            })
        });
        let at = scan.problems.len();
        scan.problems.extend(extra.into_iter().enumerate().map(|(i, p)| (at + i, p)));
        Scan {
            entries: scan.entries,
            seen: scan.seen,
            manifest: synthesized,
            problems: scan.problems,
        }
    });
    let mut report =
        check(scan, backup_manifest::NAME, "the backup", Links::UsersOnly, check_backup_manifest);
    report.made_by_service = true;
    report
}

/// Verifies one of the service's per-user backups (`user_backup_<id>_<time>.zip`, made
/// before a save that updates several parts of one user's data): no manifest of ours, a
/// `backup_metadata.json` (`user_id`, `backup_date`, `files_backed_up`) beside the user's
/// files. Every entry is read (CRCs, sizes, names, links), every JSON entry must parse, the
/// metadata must be an object whose `files_backed_up` are all there; the listing returned
/// is what was found, with the digests read.
pub fn user_backup(path: &Path) -> Report<BackupManifest> {
    let scan =
        scan_zip::<serde_json::Value>(path, USER_METADATA, &crate::NoProgress).map(|mut scan| {
            let meta = scan.manifest.take();
            let mut extra = Vec::new();
            let json = scan.seen.keys().filter(|n| n.ends_with(".json") && *n != USER_METADATA);
            extra.extend(json_problems(path, json));
            let manifest =
                meta.map(|m| m.and_then(|v| user_listing(path, &v, &scan.seen, &mut extra)));
            let at = scan.problems.len();
            scan.problems.extend(extra.into_iter().enumerate().map(|(i, p)| (at + i, p)));
            Scan { entries: scan.entries, seen: scan.seen, manifest, problems: scan.problems }
        });
    let mut report = check(scan, USER_METADATA, "the backup", Links::UsersOnly, |_, _, _| {});
    report.made_by_service = true;
    report
}

/// What a scan found, as a manifest lists it, and the user folders among it.
fn listing_of(seen: &BTreeMap<String, Seen>) -> (Vec<FileEntry>, BTreeSet<&str>) {
    let files = seen
        .iter()
        .map(|(name, s)| FileEntry {
            path: name.clone(),
            size: s.size,
            sha256: files::hex(&s.sha256),
            link: s.link.clone(),
        })
        .collect();
    let users = seen
        .keys()
        .filter_map(|n| n.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    (files, users)
}

/// Our listing for a per-user backup, from its metadata and what was found.
fn user_listing(
    path: &Path,
    meta: &serde_json::Value,
    seen: &BTreeMap<String, Seen>,
    problems: &mut Vec<Problem>,
) -> Result<BackupManifest, Problem> {
    let Some(meta) = meta.as_object() else {
        return Err(Problem::at(USER_METADATA, "not a JSON object"));
    };
    match meta.get("files_backed_up") {
        None => {}
        Some(serde_json::Value::Array(listed)) => {
            for f in listed {
                match f.as_str() {
                    Some(f) if f == USER_METADATA || seen.contains_key(f) => {}
                    Some(f) => problems.push(Problem::at(
                        USER_METADATA,
                        format!("files_backed_up names {f:?}, which the zip does not hold"),
                    )),
                    None => problems.push(Problem::at(
                        USER_METADATA,
                        "files_backed_up holds something that is not a name",
                    )),
                }
            }
        }
        Some(_) => problems.push(Problem::at(USER_METADATA, "files_backed_up is not a list")),
    }
    let stem = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zip").to_string())
        .unwrap_or_default();
    let created_at =
        meta.get("backup_date").and_then(|d| d.as_str()).and_then(service::parse_time).map_or_else(
            || chrono::DateTime::UNIX_EPOCH.fixed_offset().to_rfc3339(),
            |t| t.to_rfc3339(),
        );
    let (files, users) = listing_of(seen);
    Ok(BackupManifest {
        backup_name: stem,
        created_at,
        includes: backup_manifest::Includes { users: true, ..Default::default() },
        system_info: backup_manifest::SystemInfo {
            total_users: users.len() as u64,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
        },
        tool_version: "MHM (the service's per-user backup)".to_string(),
        files,
    })
}

/// Our manifest for a service backup: its name, time and parts, and every file found.
fn synthesize(
    path: &Path,
    m: &ServiceManifest,
    seen: &BTreeMap<String, Seen>,
    problems: &mut Vec<Problem>,
) -> BackupManifest {
    let fallback_name = path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".zip").to_string())
        .unwrap_or_default();
    let backup_name = match m.backup_name.as_deref().map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            problems.push(Problem::at(backup_manifest::NAME, "backup_name is missing"));
            fallback_name
        }
    };
    let created_at = match (m.created_at.as_deref(), m.created_at()) {
        (_, Some(t)) => t.to_rfc3339(),
        (None, None) => {
            problems.push(Problem::at(backup_manifest::NAME, "created_at is missing"));
            String::new()
        }
        (Some(raw), None) => {
            problems.push(Problem::at(
                backup_manifest::NAME,
                format!("created_at {raw:?} is not a time"),
            ));
            String::new()
        }
    };
    let (files, users) = listing_of(seen);
    let mut includes = m.includes();
    // What it holds decides: an older manifest may say less than the zip carries.
    includes.users |= !users.is_empty();
    BackupManifest {
        backup_name,
        // An unreadable time is reported above; the field check must not report it twice.
        created_at: if created_at.is_empty() {
            chrono::DateTime::UNIX_EPOCH.fixed_offset().to_rfc3339()
        } else {
            created_at
        },
        includes,
        system_info: backup_manifest::SystemInfo {
            total_users: users.len() as u64,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
        },
        tool_version: "MHM (the service's own backup)".to_string(),
        files,
    }
}

fn check_backup_manifest(
    m: &BackupManifest,
    seen: &BTreeMap<String, Seen>,
    problems: &mut Vec<Problem>,
) {
    let name = backup_manifest::NAME;
    if m.backup_name.trim().is_empty() {
        problems.push(Problem::at(name, "backup_name is empty"));
    }
    check_created_at(name, &m.created_at, problems);
    let users: BTreeSet<&str> = seen
        .keys()
        .filter_map(|n| n.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    if m.includes.users && users.len() as u64 != m.system_info.total_users {
        problems.push(Problem::at(
            name,
            format!(
                "total_users is {} but the zip holds {} user folder(s)",
                m.system_info.total_users,
                users.len()
            ),
        ));
    }
    if !m.includes.users && !users.is_empty() {
        problems.push(Problem::at(name, "includes.users is false but the zip holds users/"));
    }
    check_count_and_total(
        name,
        m.system_info.file_count,
        m.system_info.total_bytes,
        &m.files,
        problems,
    );
}

impl Listing for BackupManifest {
    fn files(&self) -> &[FileEntry] {
        &self.files
    }
}
