//! The one check of a backup or a snapshot, used after writing one, by `backup verify`,
//! `snapshot verify`, and before a restore.
//!
//! Every entry is read to its end (so a zip entry's CRC is checked) and hashed; its size is
//! compared with what the zip directory declares; names that could escape (absolute, `..`,
//! backslashes) are refused, and so is every link that, followed as the OS would (through
//! the other links stored beside it), leads out of its own part (`users/`, `code/`,
//! `data/`), every entry stored under a link, and (in a backup) every link outside
//! `users/`; then the manifest, parsed as it streams, must list exactly what is there
//! with the same sizes and digests, and its own fields must hold. Large zips are read on
//! every core (each thread takes every n-th entry of one shared, parsed directory).

mod shared_file;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::{self, File},
    io::{self, BufReader, Read},
    path::Path,
};

use serde::{de::DeserializeOwned, Serialize};
use zip::ZipArchive;

use self::shared_file::SharedFile;
use crate::{
    backup::manifest::{self as backup_manifest, Manifest as BackupManifest},
    backup::service::ServiceManifest,
    fsx,
    pack::FileEntry,
    paths,
    report::Bar,
    snapshot::manifest::{Manifest as SnapshotManifest, MANIFEST as SNAPSHOT_MANIFEST},
    zipcheck, Problem,
};

/// What a check found.
#[derive(Debug, Serialize)]
pub struct Report<M> {
    /// The manifest, when it could be read.
    #[serde(skip)]
    pub manifest: Option<M>,
    /// Entries read.
    pub entries: usize,
    /// Every problem found, each naming the entry; one with the archive as a whole names
    /// none (the caller names the archive).
    pub problems: Vec<Problem>,
    /// Made by the service itself: its manifest holds no digests, so the entries were
    /// checked for what they carry (CRCs, JSON that parses, the manifest's fields) only.
    #[serde(skip)]
    pub made_by_service: bool,
}

impl<M> Default for Report<M> {
    fn default() -> Self {
        Self { manifest: None, entries: 0, problems: Vec::new(), made_by_service: false }
    }
}

impl<M> Report<M> {
    /// No problem.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems on one line, `; ` between them.
    pub fn problems_text(&self) -> String {
        self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

/// Verifies the backup at `path`: a zip of ours; or one the service made itself (a folder
/// with a `manifest.json`, or a zip whose manifest lists no files), whose entries are
/// checked for what they carry and listed in the returned manifest with the digests read.
pub fn backup(path: &Path) -> Report<BackupManifest> {
    backup_with(path, &crate::NoProgress)
}

/// [`backup`], telling `bar` the compressed bytes of a zip's entries as they are read.
pub fn backup_with(path: &Path, bar: &dyn Bar) -> Report<BackupManifest> {
    if crate::backup::user::is_user_backup(path) {
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

/// The metadata file of the service's per-user backups.
pub const USER_METADATA: &str = "backup_metadata.json";

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
            sha256: fsx::hex(&s.sha256),
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
    let created_at = meta
        .get("backup_date")
        .and_then(|d| d.as_str())
        .and_then(crate::backup::service::parse_time)
        .map_or_else(
            || chrono::DateTime::UNIX_EPOCH.fixed_offset().to_rfc3339(),
            |t| t.to_rfc3339(),
        );
    let (files, users) = listing_of(seen);
    Ok(BackupManifest {
        backup_name: stem,
        created_at,
        includes: crate::backup::manifest::Includes { users: true, ..Default::default() },
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

/// The JSON entries among `names` of the backup at `path` (a zip, opened once, or a
/// folder) that do not parse.
fn json_problems<'a>(path: &Path, names: impl Iterator<Item = &'a String>) -> Vec<Problem> {
    let parse = |r: &mut dyn Read| {
        serde_json::from_reader::<_, serde::de::IgnoredAny>(io::BufReader::new(r))
            .map(|_| ())
            .map_err(|e| format!("not valid JSON: {e}"))
    };
    let mut archive = None;
    if !path.is_dir() {
        let opened = File::open(path).map_err(|e| format!("cannot open: {e}")).and_then(|f| {
            zipcheck::open(io::BufReader::new(f)).map_err(|e| format!("cannot read: {e}"))
        });
        match opened {
            Ok((a, _)) => archive = Some(a),
            Err(e) => return vec![Problem::general(e)],
        }
    }
    let mut problems = Vec::new();
    for name in names {
        let parsed = match archive.as_mut() {
            None => File::open(path.join(name))
                .map_err(|e| format!("cannot open: {e}"))
                .and_then(|mut f| parse(&mut f)),
            Some(archive) => archive
                .by_name(name)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|mut entry| {
                    let limit = entry.size();
                    parse(&mut (&mut entry).take(limit))
                }),
        };
        if let Err(e) = parsed {
            problems.push(Problem::at(name, e));
        }
    }
    problems
}

/// Verifies the snapshot at `path`: a zip, or a folder written with `--no-compress`.
pub fn snapshot(path: &Path) -> Report<SnapshotManifest> {
    let scan = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(scan_folder(path, SNAPSHOT_MANIFEST)),
        Ok(_) => scan_zip(path, SNAPSHOT_MANIFEST, &crate::NoProgress),
        Err(e) => Err(Problem::general(format!("cannot open: {e}"))),
    };
    check(scan, SNAPSHOT_MANIFEST, "the snapshot", Links::OwnPart, check_snapshot_manifest)
}

/// What was found for one stored file.
struct Seen {
    size: u64,
    sha256: [u8; 32],
    link: Option<String>,
}

/// Everything read from a zip or folder: its entries, its manifest, and problems.
struct Scan<M> {
    entries: usize,
    seen: BTreeMap<String, Seen>,
    manifest: Option<Result<M, Problem>>,
    problems: Vec<(usize, Problem)>,
}

impl<M> Scan<M> {
    /// The same scan with its manifest turned into another type (or a problem).
    fn map<N>(self, f: impl FnOnce(M) -> Result<N, Problem>) -> Scan<N> {
        Scan {
            entries: self.entries,
            seen: self.seen,
            manifest: self.manifest.map(|m| m.and_then(f)),
            problems: self.problems,
        }
    }
}

impl<M> Default for Scan<M> {
    fn default() -> Self {
        Self { entries: 0, seen: BTreeMap::new(), manifest: None, problems: Vec::new() }
    }
}

/// Which links an archive may hold.
#[derive(Clone, Copy, Debug)]
enum Links {
    /// A backup: links only under `users/` (restore puts config files at the root, where a
    /// link's target would mean something else), resolving into `users/`.
    UsersOnly,
    /// A snapshot: a link resolves into the part it is stored under (`code/`, `data/`).
    OwnPart,
}

fn check<M>(
    scan: Result<Scan<M>, Problem>,
    manifest_name: &str,
    container: &str,
    links: Links,
    fields: impl FnOnce(&M, &BTreeMap<String, Seen>, &mut Vec<Problem>),
) -> Report<M>
where
    M: Listing,
{
    let mut report = Report::default();
    let mut scan = match scan {
        Ok(s) => s,
        Err(p) => {
            report.problems.push(p);
            return report;
        }
    };
    report.entries = scan.entries;
    scan.problems.sort_by_key(|(i, _)| *i);
    report.problems.extend(scan.problems.into_iter().map(|(_, p)| p));
    check_links(&scan.seen, links, &mut report.problems);
    let manifest = match scan.manifest {
        None => {
            report.problems.push(Problem::at(manifest_name, "missing"));
            return report;
        }
        Some(Err(p)) => {
            report.problems.push(p);
            return report;
        }
        Some(Ok(m)) => m,
    };
    check_listed(manifest.files(), &scan.seen, container, &mut report.problems);
    fields(&manifest, &scan.seen, &mut report.problems);
    report.manifest = Some(manifest);
    report
}

/// A manifest that lists stored files.
trait Listing {
    fn files(&self) -> &[FileEntry];
}

impl Listing for BackupManifest {
    fn files(&self) -> &[FileEntry] {
        &self.files
    }
}

impl Listing for SnapshotManifest {
    fn files(&self) -> &[FileEntry] {
        &self.files
    }
}

/// Below this size one thread reads the whole zip.
const PARALLEL_FROM: u64 = 4 << 20;

fn scan_zip<M: DeserializeOwned + Send>(
    path: &Path,
    manifest_name: &str,
    bar: &dyn Bar,
) -> Result<Scan<M>, Problem> {
    let len = fs::metadata(path).map_err(|e| Problem::general(format!("cannot open: {e}")))?.len();
    let threads = if len >= PARALLEL_FROM {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
    } else {
        1
    };
    // One parsed directory, shared by every thread.
    let archive = File::open(path)
        .and_then(SharedFile::new)
        .map_err(|e| Problem::general(format!("cannot open: {e}")))?;
    // Checked before the `zip` crate reads it: counts, sizes and overlaps against the
    // file's real length (see `zipcheck`).
    let (archive, _) = zipcheck::open(archive)
        .map_err(|e| Problem::general(format!("not a readable zip archive: {e}")))?;
    let parts: Vec<Result<Scan<M>, Problem>> = if threads == 1 {
        vec![Ok(scan_entries(archive, 0, 1, manifest_name, bar))]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let archive = archive.clone();
                    s.spawn(move || scan_entries(archive, t, threads, manifest_name, bar))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| Problem::general("a verification thread panicked")))
                .collect()
        })
    };
    let mut all = Scan::default();
    for part in parts {
        let p = part?;
        all.entries += p.entries;
        all.seen.extend(p.seen);
        all.manifest = all.manifest.or(p.manifest);
        all.problems.extend(p.problems);
    }
    Ok(all)
}

/// Reads entries `t`, `t + n`, `t + 2n`, ... of the zip to their end.
fn scan_entries<M: DeserializeOwned>(
    mut archive: ZipArchive<SharedFile>,
    t: usize,
    n: usize,
    manifest_name: &str,
    bar: &dyn Bar,
) -> Scan<M> {
    let mut part = Scan::default();
    let mut buf = vec![0u8; 1 << 16];
    for i in (t..archive.len()).step_by(n) {
        let mut entry = match archive.by_index(i) {
            Ok(e) => {
                bar.inc(e.compressed_size());
                e
            }
            Err(e) => {
                part.problems
                    .push((i, Problem::at(format!("entry #{i}"), format!("cannot be read: {e}"))));
                continue;
            }
        };
        let name = entry.name().to_string();
        part.entries += 1;
        if let Some(why) = paths::unsafe_name(&name) {
            part.problems
                .push((i, Problem::at(format!("entry {name:?}"), format!("refused: {why}"))));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        let is_link = entry.is_symlink();
        let declared = entry.size();
        // Never inflate more than the directory declares (and `zipcheck` bounded that by
        // what the compressed bytes can hold): one byte more shows the lie.
        let mut entry = (&mut entry).take(declared.saturating_add(1));
        if name == manifest_name {
            part.manifest = Some(read_manifest(&mut entry, manifest_name));
            // The entry must also be read to its end so its CRC is checked.
            match io::copy(&mut entry, &mut io::sink()) {
                Err(e) => part.problems.push((i, Problem::at(&name, format!("corrupt: {e}")))),
                Ok(_) if entry.limit() == 0 => {
                    part.problems.push((i, inflates_past(&name, declared)))
                }
                Ok(_) => {}
            }
            continue;
        }
        let read = fsx::sha256_of(&mut entry, &mut buf, if is_link { 4096 } else { 0 });
        let digest = match read {
            Ok(d) => d,
            Err(e) => {
                part.problems.push((i, Problem::at(&name, format!("corrupt: {e}"))));
                continue;
            }
        };
        if digest.size > declared {
            part.problems.push((i, inflates_past(&name, declared)));
            continue;
        }
        if digest.size != declared {
            // Other unzip tools trust the directory's size: it must be right.
            part.problems.push((
                i,
                Problem::at(
                    &name,
                    format!(
                        "the zip directory says {declared} bytes, the data holds {}",
                        digest.size
                    ),
                ),
            ));
        }
        let link = is_link.then(|| String::from_utf8_lossy(&digest.head).into_owned());
        part.seen.insert(name, Seen { size: digest.size, sha256: digest.sha256, link });
    }
    part
}

fn inflates_past(name: &str, declared: u64) -> Problem {
    Problem::at(
        name,
        format!("its data inflate to more than the {declared} bytes the zip directory says (read no further)"),
    )
}

/// Every link, followed as the OS would follow it once the archive is extracted (through
/// the other links stored in it, at most [`paths::MAX_HOPS`] of them), must lead into
/// the part it is stored under; no entry may lie under a stored link (extraction would
/// write through it); a backup holds links under `users/` only.
fn check_links(seen: &BTreeMap<String, Seen>, rule: Links, problems: &mut Vec<Problem>) {
    let link_of = |p: &str| seen.get(p).and_then(|s| s.link.clone());
    for name in seen.keys() {
        let under = name
            .match_indices('/')
            .map(|(i, _)| &name[..i])
            .find(|prefix| seen.get(*prefix).is_some_and(|s| s.link.is_some()));
        if let Some(link) = under {
            problems.push(Problem::at(
                name,
                format!("refused: it lies under the link {link} stored in the same archive"),
            ));
        }
    }
    for (name, target) in seen.iter().filter_map(|(n, s)| Some((n, s.link.as_ref()?))) {
        let top = name.split('/').next().unwrap_or("");
        if matches!(rule, Links::UsersOnly) && top != "users" {
            problems.push(Problem::at(
                name,
                format!(
                    "refused: a link ({target}) outside users/; config files, logs and code are \
                     only ever stored as regular files"
                ),
            ));
            continue;
        }
        if target.contains(['\\', '\0']) {
            problems.push(Problem::at(
                name,
                format!("refused: a link pointing outside ({target:?} holds a backslash or NUL)"),
            ));
            continue;
        }
        match paths::resolve(name, link_of) {
            Ok(dest) if dest.strip_prefix(top).is_some_and(|rest| rest.starts_with('/')) => {}
            Ok(dest) => problems.push(Problem::at(
                name,
                format!(
                    "refused: a link pointing outside {top}/ ({target}, which leads to {dest})"
                ),
            )),
            Err(why) => problems.push(Problem::at(
                name,
                format!("refused: a link pointing outside {top}/ ({target}: {why})"),
            )),
        }
    }
}

/// A manifest parsed as it streams (no copy of its text): a read error shows as
/// "corrupt", a bad document as "malformed".
fn read_manifest<M: DeserializeOwned>(r: &mut impl Read, name: &str) -> Result<M, Problem> {
    serde_json::from_reader::<_, M>(BufReader::new(r)).map_err(|e| {
        if e.is_io() {
            Problem::at(name, format!("corrupt: {e}"))
        } else {
            Problem::at(name, format!("malformed: {e}"))
        }
    })
}

/// A snapshot folder: every file hashed, links read (and checked like a zip's).
fn scan_folder<M: DeserializeOwned>(root: &Path, manifest_name: &str) -> Scan<M> {
    let mut scan = Scan::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let mut at = 0usize;
    let mut problem = |scan: &mut Scan<M>, p: Problem| {
        at += 1;
        scan.problems.push((at, p));
    };
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let what = format!("cannot read: {e}");
                let p = if prefix.is_empty() {
                    Problem::general(what)
                } else {
                    Problem::at(prefix.trim_end_matches('/'), what)
                };
                problem(&mut scan, p);
                continue;
            }
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
                let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                problem(&mut scan, Problem::at(name, "name is not valid UTF-8"));
                continue;
            };
            let name = format!("{prefix}{file_name}");
            let Ok(ft) = e.file_type() else {
                problem(&mut scan, Problem::at(&name, "cannot be read"));
                continue;
            };
            if ft.is_dir() {
                stack.push((path, format!("{name}/")));
                continue;
            }
            scan.entries += 1;
            if ft.is_symlink() {
                match fs::read_link(&path) {
                    Ok(t) => {
                        let t = t.to_string_lossy().into_owned();
                        let d = fsx::sha256_of(&mut t.as_bytes(), &mut buf, 0)
                            .expect("reading from memory cannot fail");
                        scan.seen
                            .insert(name, Seen { size: d.size, sha256: d.sha256, link: Some(t) });
                    }
                    Err(e) => {
                        problem(&mut scan, Problem::at(&name, format!("cannot read link: {e}")))
                    }
                }
            } else if name == manifest_name {
                scan.entries -= 1;
                scan.manifest = Some(
                    File::open(&path)
                        .map_err(|e| Problem::at(manifest_name, format!("cannot open: {e}")))
                        .and_then(|mut f| read_manifest(&mut f, manifest_name)),
                );
            } else {
                match File::open(&path).and_then(|mut f| fsx::sha256_of(&mut f, &mut buf, 0)) {
                    Ok(d) => {
                        scan.seen.insert(name, Seen { size: d.size, sha256: d.sha256, link: None });
                    }
                    Err(e) => {
                        problem(&mut scan, Problem::at(&name, format!("cannot be read: {e}")))
                    }
                }
            }
        }
    }
    scan
}

/// Every listed file is there with its size, digest and kind; nothing else is there.
fn check_listed(
    files: &[FileEntry],
    seen: &BTreeMap<String, Seen>,
    container: &str,
    problems: &mut Vec<Problem>,
) {
    let mut listed = BTreeSet::new();
    for f in files {
        listed.insert(f.path.as_str());
        match seen.get(&f.path) {
            None => problems.push(Problem::at(
                &f.path,
                format!("listed in the manifest but missing from {container}"),
            )),
            Some(s) => {
                if s.size != f.size {
                    problems.push(Problem::at(
                        &f.path,
                        format!("size {} but the manifest says {}", s.size, f.size),
                    ));
                }
                if fsx::hex(&s.sha256) != f.sha256 {
                    problems.push(Problem::at(&f.path, "SHA-256 differs from the manifest"));
                }
                if s.link.is_some() != f.link.is_some() {
                    problems.push(Problem::at(&f.path, "link/file kind differs from the manifest"));
                }
            }
        }
    }
    for name in seen.keys().filter(|n| !listed.contains(n.as_str())) {
        problems.push(Problem::at(name, format!("in {container} but not in the manifest")));
    }
}

fn check_count_and_total(
    name: &str,
    file_count: u64,
    total_bytes: u64,
    files: &[FileEntry],
    problems: &mut Vec<Problem>,
) {
    if file_count != files.len() as u64 {
        problems.push(Problem::at(
            name,
            format!("file_count is {file_count} but {} files are listed", files.len()),
        ));
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total_bytes != total {
        problems.push(Problem::at(
            name,
            format!("total_bytes is {total_bytes} but the listed files add up to {total}"),
        ));
    }
}

fn check_created_at(name: &str, created_at: &str, problems: &mut Vec<Problem>) {
    if chrono::DateTime::parse_from_rfc3339(created_at).is_err() {
        problems
            .push(Problem::at(name, format!("created_at {created_at:?} is not an RFC 3339 time")));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(rule: Links, links: &[(&str, &str)], files: &[&str]) -> Vec<Problem> {
        let seen =
            |link: Option<&str>| Seen { size: 0, sha256: [0; 32], link: link.map(Into::into) };
        let mut all: BTreeMap<String, Seen> =
            links.iter().map(|(n, t)| (n.to_string(), seen(Some(t)))).collect();
        all.extend(files.iter().map(|n| (n.to_string(), seen(None))));
        let mut out = Vec::new();
        check_links(&all, rule, &mut out);
        out
    }

    #[test]
    fn links_stay_in_their_part() {
        let ok = |rule, links: &[(&str, &str)]| problems(rule, links, &[]).is_empty();
        assert!(ok(Links::UsersOnly, &[("users/u1/a", "b")]));
        assert!(ok(Links::UsersOnly, &[("users/u1/a", "../u2/b")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "../../config/.env")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "../../../x")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "/etc/passwd")]));
        assert!(!ok(Links::UsersOnly, &[("users/a", "..")]));
        assert!(!ok(Links::UsersOnly, &[("config/.env", "requirements.txt")]));
        assert!(ok(Links::OwnPart, &[("data/users/u1/a", "../../user_index.json")]));
        assert!(!ok(Links::OwnPart, &[("code/a", "../data/x")]));
        // Through another link: `up` leads to users/, so `x` climbs two levels above it.
        assert!(!ok(Links::UsersOnly, &[("users/u1/up", ".."), ("users/u1/x", "up/../../.env")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "b"), ("users/u1/b", "a")]));
        let under = problems(Links::UsersOnly, &[("users/u1/d", "../u2")], &["users/u1/d/f"]);
        assert!(under[0].what.contains("under the link users/u1/d"), "{under:?}");
    }
}
