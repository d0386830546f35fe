//! Writing a backup: collect the sources ([`crate::collect`]), stream them into a deflated
//! zip under a `.tmp-*` name ([`crate::pack`]), add the manifest, sync, reopen and verify in
//! full ([`super::verify`]), and only then rename into place. Or, as
//! [`Format::Directory`], the same steps for a folder in the service's directory shape.

use std::{fs, path::PathBuf};

use anyhow::{bail, Context, Result};

use super::{
    manifest::{self, DirManifest, Includes, Manifest, SystemInfo},
    verify,
};
use crate::{
    collect::{self, Skipped, Source, Tree},
    files, pack, Ctx, Problem,
};

/// What to put in a backup.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Which parts.
    pub includes: Includes,
    /// A zip, or a folder.
    pub format: Format,
}

/// How a backup is written: a zip or a folder (a setting, `BACKUP_FORMAT`, parsed with the
/// others in [`crate::settings`]).
pub use crate::settings::Format;

/// Everything `options` selects under the root, in a stable order, plus what is not
/// stored: user data that cannot be (names that are not UTF-8), and what is left out by
/// rule (links pointing outside `data/users`, special files).
pub fn collect(ctx: &Ctx, options: &Options) -> Result<(Vec<Source>, Skipped)> {
    let mut sources = Vec::new();
    let mut skipped = Skipped::default();
    let inc = options.includes;
    if inc.users {
        let users = ctx.data_dir().join("users");
        if users.is_dir() {
            let tree = Tree { ctx, root: &users, label: "data/users" };
            tree.walk(&users, "users", &mut sources, &mut skipped)?;
        }
    }
    if inc.config {
        collect::config(ctx, &mut sources, &mut skipped.warnings)?;
    }
    if inc.logs {
        collect::active_logs(ctx, &mut sources);
    }
    if inc.code {
        collect::code(ctx, &mut sources, &mut skipped.warnings)?;
    }
    Ok((sources, skipped))
}

/// Writes the backup `name` to `<dir>/<name>.zip`: temp, sync, verify, rename. Returns
/// the final path and its manifest (without its file list). Never overwrites a backup.
pub fn write(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    options: &Options,
    sources: Vec<Source>,
) -> Result<(PathBuf, Manifest, Vec<Problem>)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", ctx.show(dir)))?;
    if options.format == Format::Directory {
        return write_directory(ctx, dir, name, options, &sources);
    }
    let final_path = dir.join(format!("{name}.zip"));
    if files::exists(&final_path) {
        bail!("{} exists already; a backup is never overwritten", ctx.show(&final_path));
    }
    let tmp = files::temp_path(&final_path);
    let written = write_tmp(ctx, &tmp, name, options, &sources);
    drop(sources);
    let result = written.and_then(|(mut manifest, vanished)| {
        // The caller needs the counts, not the file list: free it before verifying.
        manifest.files = Vec::new();
        place_verified(ctx, &tmp, &final_path)?;
        Ok((manifest, vanished))
    });
    match result {
        Ok((manifest, vanished)) => Ok((final_path, manifest, gone(ctx, vanished))),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e.context(format!("writing backup {}", ctx.show(&final_path))))
        }
    }
}

fn write_tmp(
    ctx: &Ctx,
    tmp: &std::path::Path,
    name: &str,
    options: &Options,
    sources: &[Source],
) -> Result<(Manifest, Vec<PathBuf>)> {
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = ctx.progress.start("backup", total);
    let mut zip = pack::create(&ctx.root, tmp)?;
    let stored = pack::write_all(&mut zip, tmp, sources, &*bar)?;
    let manifest = new_manifest(ctx, name, options, sources, &stored.files);
    pack::write_json(&mut zip, manifest::NAME, &manifest)?;
    pack::finish(zip, tmp)?;
    bar.finish();
    Ok((manifest, stored.vanished))
}

/// The listed files that were gone when their turn came, as problems to report.
fn gone(ctx: &Ctx, vanished: Vec<PathBuf>) -> Vec<Problem> {
    vanished.into_iter().map(|p| Problem::at(ctx.show(&p), pack::GONE)).collect()
}

/// The last steps of writing a backup, a zip or a folder: verify the temporary one in full,
/// refuse if a backup of the final name appeared meanwhile, rename it into place and make
/// the rename durable ([`files::place_verified`]).
fn place_verified(ctx: &Ctx, tmp: &std::path::Path, final_path: &std::path::Path) -> Result<()> {
    files::place_verified(&ctx.root, tmp, final_path, "backup", |tmp| {
        let report = verify::backup(tmp);
        if report.ok() {
            Ok(())
        } else {
            Err(report.problems_text())
        }
    })
}

/// The manifest of a backup of `sources` stored as `files`, made now.
fn new_manifest(
    ctx: &Ctx,
    name: &str,
    options: &Options,
    sources: &[Source],
    files: &[crate::pack::FileEntry],
) -> Manifest {
    let users: std::collections::BTreeSet<&str> = sources
        .iter()
        .filter_map(|s| s.name.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    Manifest {
        backup_name: name.to_string(),
        created_at: ctx.now_local().to_rfc3339(),
        includes: options.includes,
        system_info: SystemInfo {
            total_users: users.len() as u64,
            file_count: files.len() as u64,
            total_bytes: files.iter().map(|f| f.size).sum(),
        },
        tool_version: concat!("mhm-sidecar ", env!("CARGO_PKG_VERSION")).to_string(),
        files: files.to_vec(),
    }
}

/// The folder form: `<dir>/<name>/` in the service's directory shape, written under a
/// `.tmp-*` name (each file copied through SHA-256 and synced, the manifest last), verified
/// in full, then renamed into place. Never over a backup of either form.
fn write_directory(
    ctx: &Ctx,
    dir: &std::path::Path,
    name: &str,
    options: &Options,
    sources: &[Source],
) -> Result<(PathBuf, Manifest, Vec<Problem>)> {
    let final_path = dir.join(name);
    let taken = |p: &std::path::Path| p.symlink_metadata().is_ok();
    if taken(&final_path) || taken(&dir.join(format!("{name}.zip"))) {
        bail!("{} exists already; a backup is never overwritten", ctx.show(&final_path));
    }
    let tmp = files::temp_path(&final_path);
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = ctx.progress.start("backup", total);
    let mut vanished = Vec::new();
    let result = (|| -> Result<Manifest> {
        let stored = pack::write_folder(&ctx.root, &tmp, sources, &*bar)?;
        vanished = stored.vanished;
        let manifest = new_manifest(ctx, name, options, sources, &stored.files);
        let on_disk = DirManifest::from_manifest(manifest.clone(), ctx.now_local());
        let path = tmp.join(manifest::NAME);
        let mut f = crate::pack::create_private(&ctx.root, &path)?;
        // Indented with two spaces, as the service's json.dump(indent=2) writes it.
        serde_json::to_writer_pretty(&mut f, &on_disk).context("writing the manifest")?;
        f.sync_all().with_context(|| format!("syncing {}", ctx.show(&path)))?;
        files::sync_dir(&path);
        bar.finish();
        place_verified(ctx, &tmp, &final_path)?;
        Ok(manifest)
    })();
    match result {
        Ok(mut manifest) => {
            manifest.files = Vec::new();
            Ok((final_path, manifest, gone(ctx, vanished)))
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e.context(format!("writing backup {}", ctx.show(&final_path))))
        }
    }
}
