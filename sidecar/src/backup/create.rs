//! Writing a backup: collect the sources, stream each through SHA-256 into a deflated zip
//! entry under a `.tmp-*` name, sync, reopen and verify, and only then rename into place.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use zip::{write::SimpleFileOptions, CompressionMethod, ZipWriter};

use super::{
    manifest::{self, FileEntry, Includes, Manifest, SystemInfo},
    paths, verify,
};
use crate::{context::Ctx, fsutil};

/// One thing to store.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its path in the zip.
    pub name: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its size when collected (0 for links).
    pub size: u64,
    /// For a symlink: its target, as stored.
    pub link: Option<String>,
}

/// What to put in a backup.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Which parts.
    pub includes: Includes,
}

/// Everything `options` selects under the root, in a stable order, plus warnings
/// (links pointing outside `data/users`, unreadable entries).
pub fn collect(ctx: &Ctx, options: &Options) -> Result<(Vec<Source>, Vec<String>)> {
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let inc = options.includes;
    if inc.users {
        let users = ctx.data_dir().join("users");
        if users.is_dir() {
            walk_users(&users, &users, "users", &mut sources, &mut warnings)?;
        }
    }
    if inc.config {
        for (path, name) in config_files(ctx) {
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => {
                    sources.push(Source { name: name.to_string(), size: m.len(), path, link: None })
                }
                Ok(_) => warnings.push(format!("{}: not a regular file, skipped", path.display())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => bail!("{}: {e}", path.display()),
            }
        }
    }
    if inc.logs {
        let logs = ctx.logs_dir();
        if let Ok(entries) = fs::read_dir(&logs) {
            let mut found: Vec<(String, PathBuf, u64)> = Vec::new();
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".log") && e.file_type().is_ok_and(|t| t.is_file()) {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    found.push((name, e.path(), size));
                }
            }
            found.sort();
            for (name, path, size) in found {
                sources.push(Source { name: format!("logs/{name}"), path, size, link: None });
            }
        }
    }
    if inc.code {
        collect_code(ctx, &mut sources, &mut warnings)?;
    }
    Ok((sources, warnings))
}

/// The config files and their names in the zip.
pub fn config_files(ctx: &Ctx) -> [(PathBuf, &'static str); 3] {
    [
        (ctx.root.join(".env"), "config/.env"),
        (ctx.root.join("requirements.txt"), "config/requirements.txt"),
        (ctx.data_dir().join("user_index.json"), "config/user_index.json"),
    ]
}

pub(crate) fn walk_users(
    users_root: &Path,
    dir: &Path,
    prefix: &str,
    out: &mut Vec<Source>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
            warnings.push(format!("{}: name is not valid UTF-8, skipped", path.display()));
            continue;
        };
        let name = format!("{prefix}/{file_name}");
        let ft = e.file_type().with_context(|| format!("reading {}", path.display()))?;
        if ft.is_symlink() {
            let target =
                fs::read_link(&path).with_context(|| format!("reading link {}", path.display()))?;
            let resolved = paths::normalize(&dir.join(&target));
            let inside = resolved.starts_with(users_root) && resolved != users_root;
            match (inside, target.to_str()) {
                (true, Some(t)) if !target.is_absolute() => {
                    out.push(Source { name, path, size: 0, link: Some(t.replace('\\', "/")) })
                }
                (true, _) => {
                    // An absolute link inside users/: store it relative so it stays inside.
                    let rel = relative_link(dir, &resolved);
                    match rel {
                        Some(t) => out.push(Source { name, path, size: 0, link: Some(t) }),
                        None => warnings.push(format!(
                            "{}: link target not representable, skipped",
                            path.display()
                        )),
                    }
                }
                (false, _) => warnings.push(format!(
                    "{}: symlink points outside data/users ({}), skipped",
                    path.display(),
                    target.display()
                )),
            }
        } else if ft.is_dir() {
            walk_users(users_root, &path, &name, out, warnings)?;
        } else if ft.is_file() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Source { name, path, size, link: None });
        } else {
            warnings.push(format!("{}: not a file, folder or link, skipped", path.display()));
        }
    }
    Ok(())
}

fn relative_link(from_dir: &Path, to: &Path) -> Option<String> {
    let from: Vec<_> = from_dir.components().collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    for c in &to_c[common..] {
        parts.push(c.as_os_str().to_str()?.to_string());
    }
    Some(parts.join("/"))
}

/// Folders never stored under `code/`.
const CODE_SKIP: &[&str] = &[
    ".git",
    "target",
    "venv",
    ".venv",
    "env",
    ".env.d",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    "node_modules",
    ".cache",
    ".idea",
    ".vscode",
    "site-packages",
    ".eggs",
    "build",
    "dist",
    "htmlcov",
];

pub(crate) fn collect_code(
    ctx: &Ctx,
    out: &mut Vec<Source>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let root = ctx.root.clone();
    let top_skip = [root.join("logs"), root.join("data")];
    let walker = ignore::WalkBuilder::new(&root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .ignore(false)
        .parents(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            let name = e.file_name().to_string_lossy();
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            // A folder holding `pyvenv.cfg` is a virtual environment whatever its name.
            let skip_dir = is_dir
                && (CODE_SKIP.contains(&name.as_ref())
                    || name.ends_with(".egg-info")
                    || e.path().join("pyvenv.cfg").is_file());
            !skip_dir && !top_skip.iter().any(|p| p == e.path())
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warnings.push(format!("code: {e}"));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&root) else { continue };
        let Some(rel) = rel.to_str() else {
            warnings.push(format!("{}: name is not valid UTF-8, skipped", entry.path().display()));
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(Source {
            name: format!("code/{}", rel.replace('\\', "/")),
            path: entry.path().to_path_buf(),
            size,
            link: None,
        });
    }
    Ok(())
}

/// Writes the backup `name` to `<dir>/<name>.zip`: temp, sync, verify, rename. Returns
/// the final path and its manifest. Never overwrites an existing backup.
pub fn write(
    ctx: &Ctx,
    dir: &Path,
    name: &str,
    options: &Options,
    sources: Vec<Source>,
) -> Result<(PathBuf, Manifest)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let final_path = dir.join(format!("{name}.zip"));
    if final_path.symlink_metadata().is_ok() {
        bail!("{} exists already; a backup is never overwritten", final_path.display());
    }
    let tmp = dir.join(format!(".tmp-{}-{name}.zip", std::process::id()));
    let written = write_tmp(ctx, &tmp, name, options, &sources);
    drop(sources);
    let result = written.and_then(|mut manifest| {
        // The caller needs the counts, not the file list: free it before verifying.
        manifest.files = Vec::new();
        let report = verify::verify(&tmp);
        if !report.problems.is_empty() {
            bail!("the new backup failed verification, deleted: {}", report.problems.join("; "));
        }
        if final_path.symlink_metadata().is_ok() {
            bail!("{} appeared while the backup was written", final_path.display());
        }
        fs::rename(&tmp, &final_path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), final_path.display()))?;
        mhm_log::retention::sync_dir(&final_path);
        Ok(manifest)
    });
    match result {
        Ok(manifest) => Ok((final_path, manifest)),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e.context(format!("writing backup {}", final_path.display())))
        }
    }
}

/// Entries at or above this size are written with ZIP64 headers (a file may grow while
/// it is read; the margin keeps a file just under 4 GiB safe).
const ZIP64_FROM: u64 = 0xFFFF_FFFF - (64 << 20);

pub(crate) type Zip = ZipWriter<BufWriter<File>>;

pub(crate) fn base_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .unix_permissions(0o600)
}

/// Stores one source in `zip`, streaming it through SHA-256; returns its manifest entry.
pub(crate) fn store(
    zip: &mut Zip,
    src: &Source,
    buf: &mut [u8],
    bar: &Option<indicatif::ProgressBar>,
) -> Result<FileEntry> {
    let base = base_options();
    if let Some(target) = &src.link {
        zip.add_symlink(src.name.as_str(), target.as_str(), base)
            .with_context(|| format!("storing link {}", src.path.display()))?;
        return Ok(FileEntry {
            path: src.name.clone(),
            size: target.len() as u64,
            sha256: manifest::hex(&Sha256::digest(target.as_bytes())),
            link: Some(target.clone()),
        });
    }
    let mut input =
        File::open(&src.path).with_context(|| format!("opening {}", src.path.display()))?;
    let meta = input.metadata().ok();
    let size_now = meta.as_ref().map(|m| m.len()).unwrap_or(src.size);
    let mut opts = base.large_file(size_now.max(src.size) >= ZIP64_FROM);
    if let Some(t) = meta.and_then(|m| m.modified().ok()).and_then(zip_time) {
        opts = opts.last_modified_time(t);
    }
    zip.start_file(src.name.as_str(), opts)
        .with_context(|| format!("starting entry {}", src.name))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let n = match input.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", src.path.display())),
        };
        hasher.update(&buf[..n]);
        zip.write_all(&buf[..n]).with_context(|| format!("compressing {}", src.path.display()))?;
        size += n as u64;
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    Ok(FileEntry {
        path: src.name.clone(),
        size,
        sha256: manifest::hex(&hasher.finalize()),
        link: None,
    })
}

/// Finishes a zip and syncs its file.
pub(crate) fn finish(zip: Zip, path: &Path) -> Result<()> {
    let writer = zip.finish().with_context(|| format!("finishing {}", path.display()))?;
    let file = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    file.sync_all().with_context(|| format!("syncing {}", path.display()))
}

/// Below this much data one thread does it all: sharding would cost more than it saves.
const PARALLEL_FROM: u64 = 4 << 20;

fn write_tmp(
    ctx: &Ctx,
    tmp: &Path,
    name: &str,
    options: &Options,
    sources: &[Source],
) -> Result<Manifest> {
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = crate::context::progress_bar(ctx, total, "backup");
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let mut zip = ZipWriter::new(BufWriter::with_capacity(1 << 16, create_private(tmp)?));
    let files = if workers > 1 && total >= PARALLEL_FROM && sources.len() > 1 {
        store_parallel(&mut zip, tmp, sources, workers, &bar)?
    } else {
        let mut buf = vec![0u8; 1 << 16];
        sources
            .iter()
            .map(|src| store(&mut zip, src, &mut buf, &bar))
            .collect::<Result<Vec<_>>>()?
    };
    let users: std::collections::BTreeSet<&str> = sources
        .iter()
        .filter_map(|s| s.name.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    let manifest = Manifest {
        backup_name: name.to_string(),
        created_at: ctx.now_local().to_rfc3339(),
        includes: options.includes,
        system_info: SystemInfo {
            total_users: users.len() as u64,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
        },
        tool_version: concat!("mhm-sidecar ", env!("CARGO_PKG_VERSION")).to_string(),
        files,
    };
    zip.start_file(manifest::NAME, base_options()).context("starting manifest.json")?;
    serde_json::to_writer_pretty(&mut zip, &manifest).context("writing manifest.json")?;
    finish(zip, tmp)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(manifest)
}

/// Whether a source can be compressed in a shard and raw-copied: zip's raw copy loses the
/// link attribute, and writes a zeroed ZIP64 size for entries over 4 GiB (Info-ZIP then
/// reads them as empty), so links and huge files are stored by the merging thread.
fn shardable(src: &Source) -> bool {
    src.link.is_none() && src.size < ZIP64_FROM
}

/// Compresses the sources on `workers` threads and writes them into `zip` in order.
///
/// The sources are cut into chunks of consecutive files (at most [`CHUNK_FILES`] files or
/// [`CHUNK_BYTES`] bytes). Threads take chunks one at a time and compress each into its own
/// small zip beside `tmp`; this thread copies finished chunks, in order, into `zip` without
/// recompressing (a raw copy), then deletes them. Threads stay at most [`WINDOW`] chunks
/// ahead, so temporary disk use and memory stay bounded however large the data.
fn store_parallel(
    zip: &mut Zip,
    tmp: &Path,
    sources: &[Source],
    workers: usize,
    bar: &Option<indicatif::ProgressBar>,
) -> Result<Vec<FileEntry>> {
    use std::sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Condvar, Mutex,
    };
    let chunks = chunk(sources);
    let chunk_path = |c: usize| {
        let mut s = tmp.as_os_str().to_owned();
        s.push(format!(".part{c}"));
        PathBuf::from(s)
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let merged = (Mutex::new(0usize), Condvar::new());
    let (tx, rx) = mpsc::channel::<(usize, Result<Vec<FileEntry>>)>();
    let window = WINDOW.max(workers);
    let result = std::thread::scope(|scope| -> Result<Vec<FileEntry>> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, failed, merged, chunks) = (&next, &failed, &merged, &chunks);
            scope.spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let c = next.fetch_add(1, Ordering::SeqCst);
                    let Some(range) = chunks.get(c) else { break };
                    {
                        let mut m = merged.0.lock().unwrap_or_else(|e| e.into_inner());
                        while c >= *m + window && !failed.load(Ordering::SeqCst) {
                            m = merged.1.wait(m).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let path = chunk_path(c);
                    let mut run = || -> Result<Vec<FileEntry>> {
                        let file = create_private(&path)?;
                        let mut part = ZipWriter::new(BufWriter::with_capacity(1 << 16, file));
                        let mut done = Vec::new();
                        for src in sources[range.clone()].iter().filter(|s| shardable(s)) {
                            done.push(store(&mut part, src, &mut buf, bar)?);
                        }
                        finish(part, &path)?;
                        Ok(done)
                    };
                    let r = run();
                    let stop = r.is_err();
                    let _ = tx.send((c, r));
                    if stop {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut merge = || -> Result<Vec<FileEntry>> {
            let mut files = Vec::with_capacity(sources.len());
            let mut pending = std::collections::BTreeMap::new();
            let mut buf = vec![0u8; 1 << 16];
            for c in 0..chunks.len() {
                let entries = loop {
                    if let Some(e) = pending.remove(&c) {
                        break e;
                    }
                    let (k, r) =
                        rx.recv().map_err(|_| anyhow::anyhow!("a compression thread stopped"))?;
                    pending.insert(k, r?);
                };
                let path = chunk_path(c);
                let f = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
                let mut part = zip::ZipArchive::new(io::BufReader::with_capacity(1 << 16, f))
                    .with_context(|| format!("reading {}", path.display()))?;
                let mut entries = entries.into_iter();
                let mut j = 0;
                for src in &sources[chunks[c].clone()] {
                    if !shardable(src) {
                        files.push(store(zip, src, &mut buf, bar)?);
                        continue;
                    }
                    let entry = entries.next().ok_or_else(|| {
                        anyhow::anyhow!("{} was not compressed", src.path.display())
                    })?;
                    let raw = part
                        .by_index_raw(j)
                        .with_context(|| format!("reading {}", path.display()))?;
                    zip.raw_copy_file(raw)
                        .with_context(|| format!("copying {} into the backup", entry.path))?;
                    files.push(entry);
                    j += 1;
                }
                drop(part);
                let _ = fs::remove_file(&path);
                *merged.0.lock().unwrap_or_else(|e| e.into_inner()) = c + 1;
                merged.1.notify_all();
            }
            Ok(files)
        };
        let result = merge();
        if result.is_err() {
            failed.store(true, Ordering::SeqCst);
            // Wake threads waiting for the window; take the lock so none misses it.
            let _guard = merged.0.lock().unwrap_or_else(|e| e.into_inner());
            merged.1.notify_all();
        }
        result
    });
    if result.is_err() {
        for c in 0..chunks.len() {
            let _ = fs::remove_file(chunk_path(c));
        }
    }
    result
}

/// At most this many files in one chunk.
const CHUNK_FILES: usize = 512;
/// At most about this many bytes in one chunk (a larger file is a chunk of its own).
const CHUNK_BYTES: u64 = 16 << 20;
/// Chunks the compressing threads may finish ahead of the merge.
const WINDOW: usize = 6;

/// Consecutive runs of sources, each at most [`CHUNK_FILES`] files and about [`CHUNK_BYTES`].
fn chunk(sources: &[Source]) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, s) in sources.iter().enumerate() {
        if i > start && (i - start >= CHUNK_FILES || bytes + s.size > CHUNK_BYTES) {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s.size;
    }
    if start < sources.len() {
        chunks.push(start..sources.len());
    }
    chunks
}

/// A file time as a zip time (local, two-second precision); `None` outside 1980..2107.
fn zip_time(t: std::time::SystemTime) -> Option<zip::DateTime> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::<chrono::Local>::from(t);
    zip::DateTime::from_date_and_time(
        u16::try_from(t.year()).ok()?,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .ok()
}

/// Creates `path` (new, owner-only on unix).
pub(crate) fn create_private(path: &Path) -> Result<File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path).with_context(|| format!("creating {}", path.display()))?;
    fsutil::owner_only(&file)
        .with_context(|| format!("setting permissions on {}", path.display()))?;
    Ok(file)
}
