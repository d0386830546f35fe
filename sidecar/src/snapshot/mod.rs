//! Project snapshots (SPEC section 6): `DIR/mhm_snapshot_YYYYMMDD_HHMMSS.zip` (or a folder
//! with `--no-compress`) holding `code/` (the files `backup --include-code` selects,
//! documentation included), `data/` with `--include-user-data` (everything under `data/`
//! but `backups/`, the lock and temporary files) and `snapshot_manifest.json`.
//!
//! Written like a backup: under a `.tmp-*` name in DIR, streamed file by file through
//! SHA-256 (memory stays flat), synced, verified in full, and only then renamed into
//! place. The file selection ([`crate::collect`]), the zip writing ([`crate::pack`]) and
//! the check ([`crate::verify`], the manifest's fields in [`verify`]) are the ones backups
//! use.

pub mod manifest;
pub mod verify;

use std::{
    fs::{self, File},
    io::{self, BufReader},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

pub use self::manifest::{Includes, Manifest, MANIFEST, PREFIX};
use crate::{
    collect::{self, Source, Tree},
    files,
    pack::{self, FileEntry},
    paths, Ctx, Problem,
};

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
) -> Result<(Vec<Source>, Vec<Problem>)> {
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    collect::code(ctx, &mut sources, &mut warnings)?;
    if options.include_user_data {
        collect_data(ctx, &mut sources, &mut warnings)?;
    }
    // Earlier snapshots (and ones being written) are never stored again, wherever the
    // archive folder is, the project root itself included.
    let archive_dir = absolute(ctx, archive_dir)?;
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

fn absolute(ctx: &Ctx, p: &Path) -> Result<PathBuf> {
    std::path::absolute(p)
        .map(|p| paths::normalize(&p))
        .with_context(|| format!("resolving {}", ctx.show(p)))
}

/// `data/...`: every entry of `<root>/data` but `backups/`, the lock, and temporary files.
fn collect_data(ctx: &Ctx, out: &mut Vec<Source>, warnings: &mut Vec<Problem>) -> Result<()> {
    let data = ctx.data_dir();
    let mut entries: Vec<_> = match fs::read_dir(&data) {
        Ok(e) => {
            e.collect::<io::Result<_>>().with_context(|| format!("reading {}", ctx.show(&data)))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", ctx.show(&data))),
    };
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_owned) else {
            warnings.push(Problem::at(ctx.show(&path), "name is not valid UTF-8, skipped"));
            continue;
        };
        if name == "backups" || name == ".sidecar.lock" || name.starts_with(".tmp-") {
            continue;
        }
        let ft = e.file_type().with_context(|| format!("reading {}", ctx.show(&path)))?;
        if ft.is_dir() {
            let tree = Tree { ctx, root: &data, label: "data" };
            let mut skipped = collect::Skipped::default();
            tree.walk(&path, &format!("data/{name}"), out, &mut skipped)?;
            warnings.extend(skipped.left_out);
            warnings.extend(skipped.warnings);
        } else if ft.is_file() {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push(Source { name: format!("data/{name}"), path, size, link: None });
        } else {
            warnings.push(Problem::at(ctx.show(&path), "not a regular file or folder, skipped"));
        }
    }
    Ok(())
}

/// Removes what a crashed `snapshot create` left in `dir`: `.tmp-<pid>-mhm_snapshot_*`
/// zips and folders whose writer is gone or that are older than an hour. Call only while
/// holding the sidecar lock. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = files::remove_stale_temps(dir);
    let Ok(entries) = fs::read_dir(dir) else { return removed };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".tmp-") else { continue };
        let Some((pid, snapshot)) = rest.split_once('-') else { continue };
        if !snapshot.starts_with(PREFIX) || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let _ = pid;
        if files::is_stale_temp(&e, files::STALE_AFTER) && fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// `mhm_snapshot_<stamp>`, or `..._N` when a zip or folder of that name exists.
pub fn unique_name(dir: &Path, stamp: &str) -> String {
    files::unique_stem(&format!("{PREFIX}{stamp}"), |n| {
        files::exists(&dir.join(n)) || files::exists(&dir.join(format!("{n}.zip")))
    })
}

/// Writes a snapshot of `sources` into `dir` as `name` (`.zip`, or a folder): temp, sync,
/// verify, rename. Returns the final path, the manifest and the listed files that were
/// gone when their turn came (skipped).
pub fn write(
    ctx: &Ctx,
    dir: &Path,
    name: &str,
    options: &Options,
    sources: &[Source],
) -> Result<(PathBuf, Manifest, Vec<PathBuf>)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", ctx.show(dir)))?;
    let file_name = if options.no_compress { name.to_string() } else { format!("{name}.zip") };
    let final_path = dir.join(&file_name);
    if final_path.symlink_metadata().is_ok() {
        bail!("{} exists already; a snapshot is never overwritten", ctx.show(&final_path));
    }
    let tmp = dir.join(format!(".tmp-{}-{file_name}", std::process::id()));
    let includes = Includes { code: true, user_data: options.include_user_data };
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = ctx.progress.start("snapshot", total);
    let make_manifest = |files: Vec<FileEntry>| Manifest {
        snapshot_name: name.to_string(),
        created_at: ctx.now_local().to_rfc3339(),
        includes,
        file_count: files.len() as u64,
        total_bytes: files.iter().map(|f| f.size).sum(),
        tool_version: concat!("mhm-sidecar ", env!("CARGO_PKG_VERSION")).to_string(),
        files,
    };
    let mut vanished = Vec::new();
    let result = (|| -> Result<Manifest> {
        let manifest = if options.no_compress {
            let stored = pack::write_folder(&ctx.root, &tmp, sources, &*bar)?;
            vanished = stored.vanished;
            let manifest = make_manifest(stored.files);
            let path = tmp.join(MANIFEST);
            let mut f = pack::create_private(&ctx.root, &path)?;
            serde_json::to_writer_pretty(&mut f, &manifest).context("writing the manifest")?;
            f.sync_all().with_context(|| format!("syncing {}", ctx.show(&path)))?;
            files::sync_dir(&path);
            manifest
        } else {
            let mut zip = pack::create(&ctx.root, &tmp)?;
            let stored = pack::write_all(&mut zip, &tmp, sources, &*bar)?;
            vanished = stored.vanished;
            let manifest = make_manifest(stored.files);
            pack::write_json(&mut zip, MANIFEST, &manifest)?;
            pack::finish(zip, &tmp)?;
            manifest
        };
        bar.finish();
        files::place_verified(&ctx.root, &tmp, &final_path, "snapshot", |tmp| {
            let report = self::verify::snapshot(tmp);
            if report.ok() {
                Ok(())
            } else {
                Err(report.problems_text())
            }
        })?;
        Ok(manifest)
    })();
    match result {
        Ok(m) => Ok((final_path, m, vanished)),
        Err(e) => {
            let _ =
                if options.no_compress { fs::remove_dir_all(&tmp) } else { fs::remove_file(&tmp) };
            Err(e.context(format!("writing snapshot {}", ctx.show(&final_path))))
        }
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
pub fn list(ctx: &Ctx, dir: &Path) -> Result<Vec<Info>> {
    let entries = fs::read_dir(dir).with_context(|| format!("reading {}", ctx.show(dir)))?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", ctx.show(dir)))?;
        let Some(file_name) = e.file_name().to_str().map(str::to_owned) else { continue };
        if !file_name.starts_with(PREFIX) {
            continue;
        }
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        let (name, kind, manifest, size) = if ft.is_dir() {
            let m = File::open(path.join(MANIFEST)).ok().and_then(|f| read_manifest(f).ok());
            (file_name.clone(), "folder", m, files::folder_size(&path))
        } else if let (true, Some(stem)) = (ft.is_file(), file_name.strip_suffix(".zip")) {
            let m = File::open(&path)
                .ok()
                .and_then(|f| crate::zipcheck::open(io::BufReader::new(f)).ok())
                .map(|(z, _)| z)
                .and_then(|mut z| z.by_name(MANIFEST).ok().and_then(|e| read_manifest(e).ok()));
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

fn read_manifest(r: impl io::Read) -> serde_json::Result<Manifest> {
    serde_json::from_reader(BufReader::new(r))
}

// === create ===

/// What `snapshot create` did, or with a dry run would do.
#[derive(Debug)]
pub enum Created {
    /// A dry run: what would be written.
    Would {
        /// The snapshot's path.
        target: PathBuf,
        /// What it would hold.
        sources: Vec<Source>,
    },
    /// Written and verified.
    Written {
        /// The snapshot's path.
        path: PathBuf,
        /// Its manifest.
        manifest: Manifest,
        /// Leftovers of crashed runs removed first.
        removed: Vec<PathBuf>,
    },
}

/// `snapshot create`: a verified snapshot of the root in `dir`, plus the files left out.
pub fn create(
    ctx: &Ctx,
    dir: &Path,
    options: &Options,
    dry_run: bool,
) -> Result<(Created, Vec<Problem>)> {
    if files::exists(dir) && !dir.is_dir() {
        bail!("{}: not a folder", ctx.show(dir));
    }
    let (sources, warnings) = collect(ctx, dir, options)?;
    for w in &warnings {
        tracing::warn!(target: "mhm::sidecar", "snapshot: left out {w}");
    }
    let name = unique_name(dir, &ctx.stamp());
    if dry_run {
        let target =
            if options.no_compress { dir.join(&name) } else { dir.join(format!("{name}.zip")) };
        return Ok((Created::Would { target, sources }, warnings));
    }
    let removed = remove_stale_temps(dir);
    for p in &removed {
        tracing::info!(target: "mhm::sidecar", "snapshot: removed the leftover {}", ctx.show(p));
    }
    let (path, manifest, vanished) = write(ctx, dir, &name, options, &sources)?;
    let mut warnings = warnings;
    for p in vanished {
        let w = Problem::at(ctx.show(&p), pack::GONE);
        tracing::warn!(target: "mhm::sidecar", "snapshot: left out {w}");
        warnings.push(w);
    }
    tracing::info!(target: "mhm::sidecar", "snapshot create: wrote {} ({} files, {} bytes)", ctx.show(&path), manifest.file_count, manifest.total_bytes);
    Ok((Created::Written { path, manifest, removed }, warnings))
}
