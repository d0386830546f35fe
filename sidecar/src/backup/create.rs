//! Writing a backup: collect the sources ([`crate::collect`]), stream them into a deflated
//! zip under a `.tmp-*` name ([`crate::pack`]), add the manifest, sync, reopen and verify in
//! full ([`crate::verify`]), and only then rename into place.

use std::{fs, path::PathBuf};

use anyhow::{bail, Context, Result};

use super::manifest::{self, Includes, Manifest, SystemInfo};
use crate::{
    collect::{self, Skipped, Source, Tree},
    fsx, pack, verify, Ctx,
};

/// What to put in a backup.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Which parts.
    pub includes: Includes,
}

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
) -> Result<(PathBuf, Manifest)> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", ctx.show(dir)))?;
    let final_path = dir.join(format!("{name}.zip"));
    if fsx::exists(&final_path) {
        bail!("{} exists already; a backup is never overwritten", ctx.show(&final_path));
    }
    let tmp = fsx::temp_path(&final_path);
    let written = write_tmp(ctx, &tmp, name, options, &sources);
    drop(sources);
    let result = written.and_then(|mut manifest| {
        // The caller needs the counts, not the file list: free it before verifying.
        manifest.files = Vec::new();
        let report = verify::backup(&tmp);
        if !report.ok() {
            bail!("the new backup failed verification, deleted: {}", report.problems_text());
        }
        if fsx::exists(&final_path) {
            bail!("{} appeared while the backup was written", ctx.show(&final_path));
        }
        fs::rename(&tmp, &final_path)
            .with_context(|| format!("renaming {} to {}", ctx.show(&tmp), ctx.show(&final_path)))?;
        fsx::sync_dir(&final_path);
        Ok(manifest)
    });
    match result {
        Ok(manifest) => Ok((final_path, manifest)),
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
) -> Result<Manifest> {
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let bar = ctx.progress.start("backup", total);
    let mut zip = pack::create(&ctx.root, tmp)?;
    let files = pack::write_all(&mut zip, tmp, sources, &*bar)?;
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
    pack::write_json(&mut zip, manifest::NAME, &manifest)?;
    pack::finish(zip, tmp)?;
    bar.finish();
    Ok(manifest)
}
