//! Project snapshots (SPEC section 6): `DIR/mhm_snapshot_YYYYMMDD_HHMMSS.zip` (or a folder
//! with `--no-compress`) holding `code/` (the files `backup --include-code` selects,
//! documentation included), `data/` with `--include-user-data` (everything under `data/`
//! but `backups/`, the lock and temporary files) and `snapshot_manifest.json`.
//!
//! Written like a backup: under a `.tmp-*` name in DIR, streamed file by file through
//! SHA-256 (memory stays flat), synced, verified in full, and only then renamed into
//! place. The zip writing and the file selection are the backup's own
//! ([`crate::backup::create`]).

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::ZipWriter;

use crate::{
    backup::{
        create::{self, Source},
        manifest::{hex, FileEntry},
        paths,
    },
    context::Ctx,
};

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

/// How to write a snapshot.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Also store `data/` (without `data/backups/`).
    pub include_user_data: bool,
    /// A folder instead of a zip.
    pub no_compress: bool,
}

/// Everything a snapshot of `ctx.root` stores, plus warnings. No snapshot in `archive_dir`
/// is taken (snapshots kept inside the project must not nest).
pub fn collect(
    ctx: &Ctx,
    archive_dir: &Path,
    options: &Options,
) -> Result<(Vec<Source>, Vec<String>)> {
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    create::collect_code(ctx, &mut sources, &mut warnings)?;
    if options.include_user_data {
        collect_data(ctx, &mut sources, &mut warnings)?;
    }
    // Earlier snapshots (and ones being written) are never stored again, wherever the
    // archive folder is, the project root itself included.
    let archive_dir = absolute(archive_dir)?;
    sources.retain(|s| {
        let temp =
            s.path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".tmp-"));
        let in_snapshot = s
            .path
            .strip_prefix(&archive_dir)
            .ok()
            .and_then(|rel| rel.components().next())
            .and_then(|c| c.as_os_str().to_str())
            .is_some_and(|first| first.starts_with(PREFIX) || first.starts_with(".tmp-"));
        !temp && !in_snapshot
    });
    Ok((sources, warnings))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p)
        .map(|p| paths::normalize(&p))
        .with_context(|| format!("resolving {}", p.display()))
}

/// `data/...`: every entry of `<root>/data` but `backups/`, the lock, and temporary files.
fn collect_data(ctx: &Ctx, out: &mut Vec<Source>, warnings: &mut Vec<String>) -> Result<()> {
    let data = ctx.data_dir();
    let mut entries: Vec<_> = match fs::read_dir(&data) {
        Ok(e) => {
            e.collect::<io::Result<_>>().with_context(|| format!("reading {}", data.display()))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", data.display())),
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            warnings.push(format!("{}: name is not valid UTF-8, skipped", path.display()));
            continue;
        };
        if name == "backups" || name == ".sidecar.lock" || name.starts_with(".tmp-") {
            continue;
        }
        let ft = e.file_type().with_context(|| format!("reading {}", path.display()))?;
        if ft.is_dir() {
            create::walk_users(&data, &path, &format!("data/{name}"), out, warnings)?;
        } else if ft.is_file() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Source { name: format!("data/{name}"), path, size, link: None });
        } else {
            warnings.push(format!("{}: not a regular file or folder, skipped", path.display()));
        }
    }
    Ok(())
}

/// Removes what a crashed `snapshot create` left in `dir`: `.tmp-<pid>-mhm_snapshot_*`
/// zips and folders whose writer is gone or that are older than an hour. Call only while
/// holding the sidecar lock. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = crate::fsutil::remove_stale_temps(dir);
    let Ok(entries) = fs::read_dir(dir) else { return removed };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-") else { continue };
        let Some((pid, snapshot)) = rest.split_once('-') else { continue };
        if !snapshot.starts_with(PREFIX) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > std::time::Duration::from_secs(3600));
        let gone = pid
            .parse::<u32>()
            .is_ok_and(|p| p != std::process::id() && !mhm_log::retention::process_alive(p));
        if (old || gone) && fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// `mhm_snapshot_<stamp>`, or `..._N` when a zip or folder of that name exists.
pub fn unique_name(dir: &Path, stamp: &str) -> String {
    let base = format!("{PREFIX}{stamp}");
    let taken = |n: &str| {
        dir.join(n).symlink_metadata().is_ok()
            || dir.join(format!("{n}.zip")).symlink_metadata().is_ok()
    };
    if !taken(&base) {
        return base;
    }
    (1..).map(|n| format!("{base}_{n}")).find(|n| !taken(n)).unwrap_or(base)
}

/// Writes a snapshot of `sources` into `dir` as `name` (`.zip`, or a folder): temp, sync,
/// verify, rename. Returns the final path and the manifest.
pub fn write(
    ctx: &Ctx,
    dir: &Path,
    name: &str,
    options: &Options,
    sources: &[Source],
) -> Result<(PathBuf, Manifest)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file_name = if options.no_compress { name.to_string() } else { format!("{name}.zip") };
    let final_path = dir.join(&file_name);
    if final_path.symlink_metadata().is_ok() {
        bail!("{} exists already; a snapshot is never overwritten", final_path.display());
    }
    let tmp = dir.join(format!(".tmp-{}-{file_name}", std::process::id()));
    let includes = Includes { code: true, user_data: options.include_user_data };
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = crate::context::progress_bar(ctx, total, "snapshot");
    let make_manifest = |files: Vec<FileEntry>| Manifest {
        snapshot_name: name.to_string(),
        created_at: ctx.now_local().to_rfc3339(),
        includes,
        file_count: files.len() as u64,
        total_bytes: files.iter().map(|f| f.size).sum(),
        tool_version: concat!("mhm-sidecar ", env!("CARGO_PKG_VERSION")).to_string(),
        files,
    };
    let result = (|| -> Result<Manifest> {
        let manifest = if options.no_compress {
            let manifest = make_manifest(write_folder(&tmp, sources, &bar)?);
            let path = tmp.join(MANIFEST);
            let mut f = create::create_private(&path)?;
            serde_json::to_writer_pretty(&mut f, &manifest).context("writing the manifest")?;
            f.sync_all().with_context(|| format!("syncing {}", path.display()))?;
            mhm_log::retention::sync_dir(&path);
            manifest
        } else {
            write_zip(&tmp, sources, &bar, make_manifest)?
        };
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let report = verify(&tmp);
        if !report.ok() {
            bail!("the new snapshot failed verification, deleted: {}", report.problems.join("; "));
        }
        if final_path.symlink_metadata().is_ok() {
            bail!("{} appeared while the snapshot was written", final_path.display());
        }
        fs::rename(&tmp, &final_path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), final_path.display()))?;
        mhm_log::retention::sync_dir(&final_path);
        Ok(manifest)
    })();
    match result {
        Ok(m) => Ok((final_path, m)),
        Err(e) => {
            let _ =
                if options.no_compress { fs::remove_dir_all(&tmp) } else { fs::remove_file(&tmp) };
            Err(e.context(format!("writing snapshot {}", final_path.display())))
        }
    }
}

/// The zip: each source streamed into its entry, then the manifest, then a sync.
fn write_zip(
    tmp: &Path,
    sources: &[Source],
    bar: &Option<indicatif::ProgressBar>,
    make_manifest: impl FnOnce(Vec<FileEntry>) -> Manifest,
) -> Result<Manifest> {
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, create::create_private(tmp)?));
    let mut buf = vec![0u8; 1 << 16];
    let files = sources
        .iter()
        .map(|s| create::store(&mut zip, s, &mut buf, bar))
        .collect::<Result<Vec<_>>>()?;
    let manifest = make_manifest(files);
    zip.start_file(MANIFEST, create::base_options()).context("starting snapshot_manifest.json")?;
    serde_json::to_writer_pretty(&mut zip, &manifest).context("writing snapshot_manifest.json")?;
    create::finish(zip, tmp)?;
    Ok(manifest)
}

/// The folder form: each file copied (streamed through SHA-256) and synced.
fn write_folder(
    tmp: &Path,
    sources: &[Source],
    bar: &Option<indicatif::ProgressBar>,
) -> Result<Vec<FileEntry>> {
    fs::create_dir(tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut files = Vec::with_capacity(sources.len());
    let mut buf = vec![0u8; 1 << 16];
    for s in sources {
        let dest = tmp.join(&s.name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if let Some(target) = &s.link {
            link(target, &dest)?;
            files.push(FileEntry {
                path: s.name.clone(),
                size: target.len() as u64,
                sha256: hex(&Sha256::digest(target.as_bytes())),
                link: Some(target.clone()),
            });
            continue;
        }
        let mut input =
            File::open(&s.path).with_context(|| format!("opening {}", s.path.display()))?;
        let mut out = create::create_private(&dest)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", s.path.display())),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).with_context(|| format!("writing {}", dest.display()))?;
            size += n as u64;
            if let Some(bar) = bar {
                bar.inc(n as u64);
            }
        }
        out.sync_all().with_context(|| format!("syncing {}", dest.display()))?;
        files.push(FileEntry {
            path: s.name.clone(),
            size,
            sha256: hex(&hasher.finalize()),
            link: None,
        });
    }
    Ok(files)
}

#[cfg(unix)]
fn link(target: &str, dest: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, dest)
        .with_context(|| format!("creating link {}", dest.display()))
}

#[cfg(not(unix))]
fn link(_target: &str, dest: &Path) -> Result<()> {
    bail!("{}: links in a folder snapshot need a unix system; use a zip snapshot", dest.display())
}

// === verify ===

/// What verification found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The snapshot.
    pub path: String,
    /// The manifest, when it could be read.
    #[serde(skip)]
    pub manifest: Option<Manifest>,
    /// Files read.
    pub entries: usize,
    /// Every problem, each naming the entry.
    pub problems: Vec<String>,
}

impl Report {
    /// No problem.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What was found for one stored file: size, digest, link target.
type Seen = BTreeMap<String, (u64, String, Option<String>)>;

/// Verifies a snapshot zip or folder: every file read to its end and its digest compared
/// with the manifest, nothing missing, nothing extra, the counts right.
pub fn verify(path: &Path) -> Report {
    let mut report = Report { path: path.display().to_string(), ..Report::default() };
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => {
            report.problems.push(format!("{}: cannot open: {e}", path.display()));
            return report;
        }
    };
    let mut seen = Seen::new();
    let manifest = if meta.is_dir() {
        scan_folder(path, &mut seen, &mut report)
    } else {
        scan_zip(path, &mut seen, &mut report)
    };
    report.entries = seen.len();
    match manifest {
        None => report.problems.push(format!("{MANIFEST}: missing")),
        Some(Err(e)) => report.problems.push(e),
        Some(Ok(m)) => {
            check_manifest(&m, &seen, &mut report.problems);
            report.manifest = Some(m);
        }
    }
    report
}

fn scan_zip(path: &Path, seen: &mut Seen, report: &mut Report) -> Option<Result<Manifest, String>> {
    let opened = File::open(path)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))
        .and_then(|f| {
            zip::ZipArchive::new(io::BufReader::new(f))
                .map_err(|e| format!("{}: not a readable zip archive: {e}", path.display()))
        });
    let mut archive = match opened {
        Ok(a) => a,
        Err(e) => {
            report.problems.push(e);
            return None;
        }
    };
    let mut manifest = None;
    let mut buf = vec![0u8; 1 << 16];
    for i in 0..archive.len() {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(format!("entry #{i}: cannot be read: {e}"));
                continue;
            }
        };
        let name = entry.name().to_string();
        if let Some(why) = paths::unsafe_name(&name) {
            report.problems.push(format!("entry {name:?}: refused: {why}"));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        if name == MANIFEST {
            manifest = Some(read_manifest(&mut entry));
            continue;
        }
        let is_link = entry.is_symlink();
        match digest(&mut entry, &mut buf, is_link) {
            Ok((size, sha, target)) => {
                if size != entry.size() {
                    report.problems.push(format!(
                        "{name}: the zip directory says {} bytes, the data holds {size}",
                        entry.size()
                    ));
                }
                seen.insert(name, (size, sha, target));
            }
            Err(e) => report.problems.push(format!("{name}: corrupt: {e}")),
        }
    }
    manifest
}

fn scan_folder(
    root: &Path,
    seen: &mut Seen,
    report: &mut Report,
) -> Option<Result<Manifest, String>> {
    let mut manifest = None;
    let mut buf = vec![0u8; 1 << 16];
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(format!("{}: cannot read: {e}", dir.display()));
                continue;
            }
        };
        for e in entries.flatten() {
            let path = e.path();
            let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
                report.problems.push(format!("{}: name is not valid UTF-8", path.display()));
                continue;
            };
            let name = format!("{prefix}{file_name}");
            let Ok(ft) = e.file_type() else {
                report.problems.push(format!("{name}: cannot be read"));
                continue;
            };
            if ft.is_dir() {
                stack.push((path, format!("{name}/")));
            } else if ft.is_symlink() {
                match fs::read_link(&path) {
                    Ok(t) => {
                        let t = t.to_string_lossy().into_owned();
                        let sha = hex(&Sha256::digest(t.as_bytes()));
                        seen.insert(name, (t.len() as u64, sha, Some(t)));
                    }
                    Err(e) => report.problems.push(format!("{name}: cannot read link: {e}")),
                }
            } else if name == MANIFEST {
                manifest = Some(
                    File::open(&path)
                        .map_err(|e| format!("{MANIFEST}: cannot open: {e}"))
                        .and_then(|mut f| read_manifest(&mut f)),
                );
            } else {
                match File::open(&path).and_then(|mut f| digest(&mut f, &mut buf, false)) {
                    Ok(found) => {
                        seen.insert(name, found);
                    }
                    Err(e) => report.problems.push(format!("{name}: cannot be read: {e}")),
                }
            }
        }
    }
    manifest
}

fn read_manifest(r: &mut impl Read) -> Result<Manifest, String> {
    let mut bytes = Vec::new();
    r.take(256 << 20).read_to_end(&mut bytes).map_err(|e| format!("{MANIFEST}: corrupt: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("{MANIFEST}: malformed: {e}"))
}

/// Size, SHA-256 and (for a link) target of what `r` holds, read to its end.
fn digest(
    r: &mut impl Read,
    buf: &mut [u8],
    is_link: bool,
) -> io::Result<(u64, String, Option<String>)> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut target = Vec::new();
    loop {
        let n = match r.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if is_link && target.len() < 4096 {
            target.extend_from_slice(&buf[..n]);
        }
        size += n as u64;
    }
    let target = is_link.then(|| String::from_utf8_lossy(&target).into_owned());
    Ok((size, hex(&hasher.finalize()), target))
}

fn check_manifest(m: &Manifest, seen: &Seen, problems: &mut Vec<String>) {
    if m.snapshot_name.trim().is_empty() {
        problems.push(format!("{MANIFEST}: snapshot_name is empty"));
    }
    if chrono::DateTime::parse_from_rfc3339(&m.created_at).is_err() {
        problems.push(format!("{MANIFEST}: created_at {:?} is not an RFC 3339 time", m.created_at));
    }
    let mut listed = std::collections::BTreeSet::new();
    for f in &m.files {
        listed.insert(f.path.as_str());
        match seen.get(&f.path) {
            None => problems.push(format!("{}: listed in the manifest but missing", f.path)),
            Some((size, sha, link)) => {
                if *size != f.size {
                    problems
                        .push(format!("{}: size {size} but the manifest says {}", f.path, f.size));
                }
                if *sha != f.sha256 {
                    problems.push(format!("{}: SHA-256 differs from the manifest", f.path));
                }
                if link.is_some() != f.link.is_some() {
                    problems.push(format!("{}: link/file kind differs from the manifest", f.path));
                }
            }
        }
        let top = f.path.split('/').next().unwrap_or("");
        let allowed = (top == "code" && m.includes.code) || (top == "data" && m.includes.user_data);
        if !allowed {
            problems.push(format!("{}: not under a part the manifest includes", f.path));
        }
    }
    for name in seen.keys().filter(|n| !listed.contains(n.as_str())) {
        problems.push(format!("{name}: in the snapshot but not in the manifest"));
    }
    if m.file_count != m.files.len() as u64 {
        problems.push(format!(
            "{MANIFEST}: file_count is {} but {} files are listed",
            m.file_count,
            m.files.len()
        ));
    }
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    if m.total_bytes != total {
        problems.push(format!(
            "{MANIFEST}: total_bytes is {} but the listed files add up to {total}",
            m.total_bytes
        ));
    }
}

// === list ===

/// One snapshot in a folder, as `snapshot list` shows it.
#[derive(Debug, Serialize)]
pub struct Info {
    /// Its name (without `.zip`).
    pub name: String,
    /// `zip` or `folder`.
    pub kind: &'static str,
    /// Where it is.
    pub path: PathBuf,
    /// From the manifest.
    pub created_at: Option<String>,
    /// Size on disk (a folder: its files added up).
    pub size: u64,
    /// From the manifest.
    pub file_count: Option<u64>,
    /// From the manifest.
    pub includes: Option<Includes>,
    /// The manifest could be read (`snapshot verify` reads every byte).
    pub manifest_ok: bool,
}

/// The snapshots in `dir`, by name (so oldest first).
pub fn list(dir: &Path) -> Result<Vec<Info>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        let Some(file_name) = e.file_name().to_str().map(str::to_owned) else { continue };
        if !file_name.starts_with(PREFIX) {
            continue;
        }
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        let (name, kind, manifest, size) = if ft.is_dir() {
            let m =
                File::open(path.join(MANIFEST)).ok().and_then(|mut f| read_manifest(&mut f).ok());
            (file_name.clone(), "folder", m, folder_size(&path))
        } else if let (true, Some(stem)) = (ft.is_file(), file_name.strip_suffix(".zip")) {
            let m = File::open(&path)
                .ok()
                .and_then(|f| zip::ZipArchive::new(io::BufReader::new(f)).ok())
                .and_then(|mut z| {
                    z.by_name(MANIFEST).ok().and_then(|mut e| read_manifest(&mut e).ok())
                });
            (stem.to_string(), "zip", m, e.metadata().map(|m| m.len()).unwrap_or(0))
        } else {
            continue;
        };
        out.push(Info {
            name,
            kind,
            path,
            created_at: manifest.as_ref().map(|m| m.created_at.clone()),
            size,
            file_count: manifest.as_ref().map(|m| m.file_count),
            includes: manifest.as_ref().map(|m| m.includes),
            manifest_ok: manifest.is_some(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn folder_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => folder_size(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
