//! Restoring from a backup: verify → free-space check → safety backup → extract into a
//! staging folder inside `data/` → swap by rename → roll back on any failure → system check.
//!
//! The swap keeps what it replaces in `data/.restore-old-<pid>/` until every item is in
//! place and a `COMMITTED` marker is written. A run killed half way is rolled back by the
//! next run that takes the lock ([`recover_interrupted`]), so the data is either all old
//! or all new.

use std::{
    fs::{self, File},
    io::{self, BufReader, Read as _},
    path::{Path, PathBuf},
};

use crate::report::BarReader;
use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::{
    backup::{self, create, manifest::Manifest},
    collect, fsx, paths, zipcheck, Ctx, FailPoint, Problem,
};

const OLD_PREFIX: &str = ".restore-old-";
const STAGING_PREFIX: &str = ".restore-staging-";
const COMMITTED: &str = "COMMITTED";
/// A committed restore's previous data on its way out: deleted without a second look.
const DONE_PREFIX: &str = ".restore-done-";

/// What to restore.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The users folder (or one user with `user`).
    pub users: bool,
    /// Config files to their original places.
    pub config: bool,
    /// Only this user's folder.
    pub user: Option<String>,
}

/// One thing swapped in: `key` names it inside the old folder.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// Stable name inside `.restore-old-*`: `users`, `user/<id>` or `config/<file>`.
    pub key: String,
    /// The live path it replaces.
    pub live: PathBuf,
    /// The prefix of its entries in the zip (`users/`, `users/<id>/`, `config/.env`).
    pub entry: String,
    /// Files the backup holds for it.
    pub files: u64,
    /// Their size.
    pub bytes: u64,
    /// With `--dry-run`: how the live files differ from the backup's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// How the live files of an item differ from the backup's (for `--dry-run`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Changes {
    /// Same content.
    pub unchanged: u64,
    /// Different content: would be overwritten.
    pub changed: Vec<String>,
    /// In the backup only: would be created.
    pub added: Vec<String>,
    /// Live only: would be removed.
    pub removed: Vec<String>,
}

/// What a restore did or would do.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The backup restored from.
    pub backup: String,
    /// The safety backup made first (none in a dry run).
    pub safety_backup: Option<String>,
    /// What was (or would be) replaced.
    pub items: Vec<Item>,
    /// What did not stop the restore but should be known (free space unreadable, links
    /// not restored on this platform).
    #[serde(skip)]
    pub warnings: Vec<Problem>,
}

/// The live path for a key, or `None` for a key this version does not know.
fn live_for(ctx: &Ctx, key: &str) -> Option<PathBuf> {
    if key == "users" {
        return Some(ctx.data_dir().join("users"));
    }
    if let Some(id) = key.strip_prefix("user/") {
        return paths::is_folder_name(id).then(|| ctx.data_dir().join("users").join(id));
    }
    let file = key.strip_prefix("config/")?;
    collect::config_files(ctx)
        .into_iter()
        .find(|(_, name)| name.strip_prefix("config/") == Some(file))
        .map(|(path, _)| path)
}

/// Plans the items of a restore of `scope` from the verified zip at `path`.
fn plan(ctx: &Ctx, manifest: &Manifest, path: &Path, scope: &Scope) -> Result<Vec<Item>> {
    // Folders by prefix (`users/`), single files by their exact name (`config/.env`).
    let count = |entry: &str| {
        manifest
            .files
            .iter()
            .filter(
                |f| if entry.ends_with('/') { f.path.starts_with(entry) } else { f.path == entry },
            )
            .fold((0, 0), |(n, b), f| (n + 1, b + f.size))
    };
    let mut items = Vec::new();
    if scope.users {
        match &scope.user {
            Some(id) => {
                let prefix = format!("users/{id}/");
                let (files, bytes) = count(&prefix);
                if files == 0 {
                    let users: Vec<&str> = manifest
                        .files
                        .iter()
                        .filter_map(|f| f.path.strip_prefix("users/")?.split('/').next())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let held = if users.is_empty() {
                        "it holds no users".to_string()
                    } else {
                        format!("the users it holds: {}", users.join(", "))
                    };
                    return Err(crate::error::usage(format!(
                        "no user {:?} in this backup; {held}",
                        paths::printable(id)
                    )));
                }
                items.push(Item {
                    key: format!("user/{id}"),
                    live: ctx.data_dir().join("users").join(id),
                    entry: prefix,
                    files,
                    bytes,
                    changes: None,
                });
            }
            None => {
                let (files, bytes) = count("users/");
                if files == 0 {
                    bail!("{} holds no users/ folder to restore", ctx.show(path));
                }
                items.push(Item {
                    key: "users".into(),
                    live: ctx.data_dir().join("users"),
                    entry: "users/".into(),
                    files,
                    bytes,
                    changes: None,
                });
            }
        }
    }
    if scope.config {
        let mut any = false;
        for (live, name) in collect::config_files(ctx) {
            let (files, bytes) = count(name);
            if files > 0 {
                any = true;
                let file = name.trim_start_matches("config/");
                items.push(Item {
                    key: format!("config/{file}"),
                    live,
                    entry: name.to_string(),
                    files,
                    bytes,
                    changes: None,
                });
            }
        }
        if !any {
            bail!("{} holds no config files to restore", ctx.show(path));
        }
    }
    Ok(items)
}

/// Compares an item's live files with the backup's, by SHA-256.
fn changes(manifest: &Manifest, item: &Item) -> Changes {
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Changes::default();
    let mut in_backup = std::collections::BTreeSet::new();
    for f in &manifest.files {
        let rel = if item.entry.ends_with('/') {
            match f.path.strip_prefix(&item.entry) {
                Some(rel) => rel,
                None => continue,
            }
        } else if f.path == item.entry {
            ""
        } else {
            continue;
        };
        in_backup.insert(rel.to_string());
        let live = if rel.is_empty() { item.live.clone() } else { item.live.join(rel) };
        let now = match &f.link {
            Some(_) => {
                fs::read_link(&live).ok().map(|t| t.to_string_lossy().into_owned().into_bytes())
            }
            None => None,
        };
        let digest = match now {
            Some(target) => Some(fsx::sha256_hex(&target)),
            None if f.link.is_some() => None,
            None => File::open(&live)
                .and_then(|mut file| fsx::sha256_of(&mut file, &mut buf, 0))
                .ok()
                .map(|d| fsx::hex(&d.sha256)),
        };
        match digest {
            None => out.added.push(f.path.clone()),
            Some(d) if d == f.sha256 => out.unchanged += 1,
            Some(_) => out.changed.push(f.path.clone()),
        }
    }
    if item.entry.ends_with('/') {
        let mut stack = vec![item.live.clone()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                    continue;
                }
                let rel =
                    p.strip_prefix(&item.live).map(|r| r.to_string_lossy().replace('\\', "/"));
                if let Ok(rel) = rel {
                    if !in_backup.contains(&rel) {
                        out.removed.push(format!("{}{rel}", item.entry));
                    }
                }
            }
        }
        out.removed.sort();
    }
    out
}

/// What the disk really holds for `path` (a file or a folder; links count as nothing):
/// (bytes, files). A sparse file counts the blocks it has, not its length.
fn stored_size(path: &Path) -> (u64, u64) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|r| {
                r.flatten()
                    .map(|e| stored_size(&e.path()))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            })
            .unwrap_or((0, 0)),
        Ok(m) if m.is_file() => (crate::fsx::allocated_size(path, &m), 1),
        _ => (0, 0),
    }
}

/// A file system block: every file extracted takes whole ones.
const BLOCK: u64 = 4096;
/// What a zip entry costs beyond its data (headers, the manifest's line), about.
const ENTRY_OVERHEAD: u64 = 300;

/// The free space a restore needs: what it writes. The extracted files (each rounded up
/// to whole blocks), plus the safety backup: the live users and config as the disk holds
/// them, compressed as well as the backup being restored compressed its own data.
fn space_needed(ctx: &Ctx, manifest: &Manifest, items: &[Item], zip_len: u64) -> u64 {
    let extracted: u64 = manifest
        .files
        .iter()
        .filter(|f| items.iter().any(|i| covers(i, &f.path)))
        .map(|f| f.size.div_ceil(BLOCK).max(1) * BLOCK)
        .sum();
    let (mut live, mut files) = stored_size(&ctx.data_dir().join("users"));
    for (path, _) in collect::config_files(ctx) {
        let (b, n) = stored_size(&path);
        live += b;
        files += n;
    }
    let ratio = if manifest.system_info.total_bytes == 0 {
        1.0
    } else {
        (zip_len as f64 / manifest.system_info.total_bytes as f64).min(1.0)
    };
    let safety = (live as f64 * ratio) as u64 + (files + 1) * ENTRY_OVERHEAD;
    extracted + safety
}

/// Whether the zip entry `name` belongs to `item`.
fn covers(item: &Item, name: &str) -> bool {
    if item.entry.ends_with('/') {
        name.starts_with(&item.entry)
    } else {
        name == item.entry
    }
}

/// Restores `scope` from the backup at `path` (with `dry_run`: says what would change and
/// changes nothing).
pub fn restore(ctx: &Ctx, path: &Path, scope: &Scope, dry_run: bool) -> Result<Outcome> {
    // A bad `--user` is bad usage, refused before anything is read or written.
    if let Some(id) = scope.user.as_deref().filter(|id| !paths::is_folder_name(id)) {
        return Err(crate::error::usage(format!(
            "invalid user id {id:?}: expected a folder name under data/users"
        )));
    }
    let mut warnings = Vec::new();
    // A rollback that failed earlier left the previous data in `.restore-old-*`: never
    // restore over it (the next swap could reuse the folder and delete what it holds).
    if let Some(left) = fs::read_dir(ctx.data_dir())
        .into_iter()
        .flatten()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(OLD_PREFIX))
    {
        bail!(
            "{} holds the data an earlier restore could not put back; look through it, move \
             what you need back into data/, remove it, then restore again; nothing restored",
            ctx.show(&left.path())
        );
    }
    let report = backup::verify::backup(path);
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let manifest = match report.manifest {
        Some(m) if problems.is_empty() => m,
        _ => bail!(
            "{} is not a valid backup; nothing restored:\n  {}",
            ctx.show(path),
            problems.join("\n  ")
        ),
    };
    let items = plan(ctx, &manifest, path, scope)?;
    let backup = ctx.show(path);
    // Space: what the restore will write (the extracted files and the safety backup).
    // A folder the service wrote is stored uncompressed: its own size.
    let zip_len = if path.is_dir() {
        fsx::folder_size(path)
    } else {
        fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    };
    let needed = space_needed(ctx, &manifest, &items, zip_len);
    let data = ctx.data_dir();
    // Measured on the data folder, or the root while there is none (a dry run makes nothing).
    let probe = if data.is_dir() { data.clone() } else { ctx.root.clone() };
    match fs4::available_space(&probe) {
        Ok(free) if free < needed => bail!(
            "not enough free space in {}: {free} bytes free, {needed} needed; nothing restored",
            ctx.show(&data)
        ),
        Ok(_) => {}
        Err(e) => {
            warnings.push(Problem::at(ctx.show(&data), format!("cannot read the free space: {e}")))
        }
    }
    if dry_run {
        let mut items = items;
        for item in &mut items {
            item.changes = Some(changes(&manifest, item));
        }
        return Ok(Outcome { backup, safety_backup: None, items, warnings });
    }
    drop(manifest);
    fs::create_dir_all(&data).with_context(|| format!("creating {}", ctx.show(&data)))?;

    // The safety backup: users and config as they are now. No safety, no restore.
    let dir = ctx.backups_dir();
    let name = backup::unique_name(&dir, backup::SAFETY_PREFIX, &ctx.stamp());
    let options = create::Options {
        includes: backup::manifest::Includes {
            users: true,
            config: true,
            logs: false,
            code: false,
        },
        format: create::Format::Zip,
    };
    let safety = (|| {
        ctx.fail_at(FailPoint::Safety)?;
        let (sources, skipped) = create::collect(ctx, &options)?;
        // Whatever the safety backup leaves out would be gone after the swap.
        if !skipped.left_out.is_empty() || !skipped.warnings.is_empty() {
            let all = skipped.left_out.iter().chain(&skipped.warnings);
            let list: Vec<String> = all.map(ToString::to_string).collect();
            bail!(
                "the safety backup would leave out files the restore replaces:\n  {}",
                list.join("\n  ")
            );
        }
        create::write(ctx, &dir, &name, &options, sources)
    })()
    .context("making the safety backup; nothing restored")?;
    let safety_shown = ctx.show(&safety.0);
    tracing::info!(target: "mhm::sidecar", "backup restore: made the safety backup {safety_shown}");

    let pid = std::process::id();
    let staging = data.join(format!("{STAGING_PREFIX}{pid}"));
    let old = data.join(format!("{OLD_PREFIX}{pid}"));
    let result = extract(ctx, path, &items, &staging, &mut warnings)
        .and_then(|()| swap(ctx, &items, &staging, &old));
    let _ = fs::remove_dir_all(&staging);
    if let Err(e) = result {
        let rolled = rollback(ctx, &old);
        return Err(match rolled {
            Ok(()) => e.context(format!(
                "restore failed; the previous data was put back (safety backup: {safety_shown})"
            )),
            Err(r) => e.context(format!(
                "restore failed AND rolling back failed ({r:#}); the previous data is in {} \
                 (safety backup: {safety_shown})",
                ctx.show(&old)
            )),
        });
    }
    discard_committed(&old);
    Ok(Outcome { backup, safety_backup: Some(safety_shown), items, warnings })
}

/// Fails when `dest`, or any folder between `staging` and it, is a symbolic link.
fn refuse_links_on_the_way(staging: &Path, dest: &Path, name: &str) -> Result<()> {
    let Ok(rel) = dest.strip_prefix(staging) else {
        bail!("entry {name:?} refused: it would land outside the staging folder");
    };
    let mut at = staging.to_path_buf();
    for part in rel.components() {
        at.push(part);
        if at.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            bail!(
                "entry {name:?} refused: it lies under (or is) the link {} stored earlier in \
                 the backup; the whole backup is refused",
                paths::show(staging, &at)
            );
        }
    }
    Ok(())
}

/// Extracts the items' entries into `staging/<key>`.
fn extract(
    ctx: &Ctx,
    path: &Path,
    items: &[Item],
    staging: &Path,
    warnings: &mut Vec<Problem>,
) -> Result<()> {
    let total = items.iter().map(|i| i.bytes).sum();
    let bar = ctx.progress.start("restore", total);
    if staging.exists() {
        fs::remove_dir_all(staging).with_context(|| format!("removing {}", ctx.show(staging)))?;
    }
    fs::create_dir_all(staging).with_context(|| format!("creating {}", ctx.show(staging)))?;
    if path.is_dir() {
        // A folder the service wrote: its files copied, never its links followed.
        for item in items {
            let src = path.join(item.entry.trim_end_matches('/'));
            copy_tree(ctx, &src, &staging.join(&item.key), &*bar)?;
        }
        bar.finish();
        ctx.fail_at(FailPoint::Extract)?;
        return Ok(());
    }
    let file = File::open(path).with_context(|| format!("opening {}", ctx.show(path)))?;
    let (mut archive, _) = zipcheck::open(BufReader::new(file))
        .map_err(|e| anyhow::anyhow!("{}: not a readable zip archive: {e}", ctx.show(path)))?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i)?;
        let name = entry.name().to_string();
        if let Some(why) = paths::unsafe_name(&name) {
            bail!("entry {name:?} refused: {why}");
        }
        let Some(item) = items.iter().find(|it| covers(it, &name)) else {
            continue;
        };
        let rest = &name[item.entry.len()..];
        let dest = if rest.is_empty() {
            staging.join(&item.key)
        } else {
            staging.join(&item.key).join(rest)
        };
        // A link extracted earlier must never be followed: an entry under (or named as)
        // one could write outside the staging folder, whatever its target looked like.
        refuse_links_on_the_way(staging, &dest, &name)?;
        if entry.is_dir() {
            fs::create_dir_all(&dest).with_context(|| format!("creating {}", ctx.show(&dest)))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", ctx.show(parent)))?;
        }
        if entry.is_symlink() {
            // Config files land at the root, where a link's target would mean something
            // else than in the backup: they are only ever regular files.
            if !item.entry.ends_with('/') {
                bail!("entry {name:?} refused: a config file stored as a link");
            }
            let mut target = String::new();
            (&mut entry).take(4096).read_to_string(&mut target)?;
            if let Some(w) = make_link(ctx, &target, &dest)? {
                warnings.push(w);
            }
            continue;
        }
        // Never over a file extracted earlier: on a file system that ignores case (Windows,
        // macOS) `Notes.json` and `notes.json` are one file, and the second would silently
        // replace the first.
        let mut out = match fs::OpenOptions::new().write(true).create_new(true).open(&dest) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => bail!(
                "entry {name:?} refused: {} exists already in the staging folder (its name \
                 differs only in case from another entry, and this file system does not tell \
                 them apart); nothing restored",
                ctx.show(&dest)
            ),
            Err(e) => return Err(e).with_context(|| format!("creating {}", ctx.show(&dest))),
        };
        // No more than the directory declares (verify compared it with the manifest).
        let declared = entry.size();
        let mut limited = (&mut entry).take(declared.saturating_add(1));
        let copied = io::copy(&mut BarReader { inner: &mut limited, bar: &*bar }, &mut out);
        let copied = copied.with_context(|| format!("extracting {name} to {}", ctx.show(&dest)))?;
        if copied != declared {
            bail!("entry {name:?} holds other than the {declared} bytes the zip directory says");
        }
        // The mode the zip recorded (the file's own when it was backed up); owner-only when
        // it recorded none: restore never makes a file readable by more users than it was.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = entry.unix_mode().map_or(0o600, |m| m & 0o777);
            out.set_permissions(fs::Permissions::from_mode(mode))
                .with_context(|| format!("setting permissions on {}", ctx.show(&dest)))?;
        }
        out.sync_all().with_context(|| format!("syncing {}", ctx.show(&dest)))?;
    }
    bar.finish();
    ctx.fail_at(FailPoint::Extract)?;
    // Items the backup holds as folders must exist even when empty.
    for item in items {
        if item.entry.ends_with('/') {
            fs::create_dir_all(staging.join(&item.key))?;
        }
    }
    Ok(())
}

/// Copies the file or folder `src` to `dest` (files synced); a link is refused, not
/// followed: the folder was verified, but it is not ours and can change.
fn copy_tree(ctx: &Ctx, src: &Path, dest: &Path, bar: &dyn crate::Bar) -> Result<()> {
    let meta = fs::symlink_metadata(src).with_context(|| format!("reading {}", ctx.show(src)))?;
    if meta.file_type().is_symlink() {
        bail!("{}: a link in a folder backup; the whole backup is refused", ctx.show(src));
    }
    if meta.is_dir() {
        fs::create_dir_all(dest).with_context(|| format!("creating {}", ctx.show(dest)))?;
        let mut entries: Vec<_> = fs::read_dir(src)
            .with_context(|| format!("reading {}", ctx.show(src)))?
            .collect::<io::Result<_>>()
            .with_context(|| format!("reading {}", ctx.show(src)))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            copy_tree(ctx, &e.path(), &dest.join(e.file_name()), bar)?;
        }
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", ctx.show(parent)))?;
    }
    let mut input = File::open(src).with_context(|| format!("opening {}", ctx.show(src)))?;
    let mut out = File::create(dest).with_context(|| format!("creating {}", ctx.show(dest)))?;
    io::copy(&mut BarReader { inner: &mut input, bar }, &mut out)
        .with_context(|| format!("copying {} to {}", ctx.show(src), ctx.show(dest)))?;
    out.sync_all().with_context(|| format!("syncing {}", ctx.show(dest)))
}

#[cfg(unix)]
fn make_link(ctx: &Ctx, target: &str, dest: &Path) -> Result<Option<Problem>> {
    std::os::unix::fs::symlink(target, dest)
        .with_context(|| format!("creating link {}", ctx.show(dest)))?;
    Ok(None)
}

#[cfg(not(unix))]
fn make_link(ctx: &Ctx, target: &str, dest: &Path) -> Result<Option<Problem>> {
    Ok(Some(Problem::at(
        ctx.show(dest),
        format!("a link to {target}: links are not restored on this platform"),
    )))
}

/// Moves each live item into `old/` (or marks it absent) and the staged one into place.
fn swap(ctx: &Ctx, items: &[Item], staging: &Path, old: &Path) -> Result<()> {
    fs::create_dir_all(old.join("config"))
        .with_context(|| format!("creating {}", ctx.show(old)))?;
    fs::create_dir_all(old.join("user"))?;
    fsx::sync_dir(old);
    for (n, item) in items.iter().enumerate() {
        if n == 1 {
            ctx.fail_at(FailPoint::Swap)?;
        }
        let kept = old.join(&item.key);
        if item.live.symlink_metadata().is_ok() {
            fs::rename(&item.live, &kept)
                .with_context(|| format!("moving {} aside", ctx.show(&item.live)))?;
        } else {
            let marker = absent_marker(old, &item.key);
            if let Some(parent) = marker.parent() {
                fs::create_dir_all(parent)?;
            }
            File::create(&marker)?.sync_all()?;
            fsx::sync_dir(&marker);
        }
        fsx::sync_dir(&kept);
        if let Some(parent) = item.live.parent() {
            fs::create_dir_all(parent)?;
        }
        let staged = staging.join(&item.key);
        fs::rename(&staged, &item.live).with_context(|| {
            format!("moving {} into place as {}", ctx.show(&staged), ctx.show(&item.live))
        })?;
        fsx::sync_dir(&item.live);
    }
    for item in items.iter().filter(|i| i.entry.ends_with('/')) {
        links_stay_in_users(ctx, &item.live)?;
    }
    ctx.fail_at(FailPoint::Commit)?;
    File::create(old.join(COMMITTED))?.sync_all()?;
    fsx::sync_dir(&old.join(COMMITTED));
    Ok(())
}

/// Fails when a link under `dir` (a restored folder, in place) resolves outside
/// `data/users/` on disk: the backup was checked before, but the links beside it (other
/// users' live folders) were not part of it.
fn links_stay_in_users(ctx: &Ctx, dir: &Path) -> Result<()> {
    let users = ctx.data_dir().join("users");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        let entries = fs::read_dir(&at).with_context(|| format!("reading {}", ctx.show(&at)))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", ctx.show(&at)))?;
            let ft = e.file_type().with_context(|| format!("reading {}", ctx.show(&e.path())))?;
            if ft.is_dir() {
                stack.push(e.path());
                continue;
            }
            if !ft.is_symlink() {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(&users)
                .ok()
                .and_then(|r| r.to_str())
                .map(|r| r.replace('\\', "/"));
            match rel.map(|r| paths::resolve_on_disk(&users, &r)) {
                Some(Ok(dest)) if !dest.is_empty() => {}
                Some(Ok(_)) => {
                    bail!("the restored link {} leads to data/users itself", ctx.show(&path))
                }
                Some(Err(why)) => {
                    bail!("the restored link {} leads outside data/users: {why}", ctx.show(&path))
                }
                None => {
                    bail!("the restored link {} has a name that cannot be checked", ctx.show(&path))
                }
            }
        }
    }
    Ok(())
}

/// Where `swap` records that the item `key` had nothing live: `old/absent/<key>`, a
/// folder of its own, so no live name (a user folder may be called anything) can be taken
/// for a marker.
fn absent_marker(old: &Path, key: &str) -> PathBuf {
    old.join(ABSENT).join(key)
}

const ABSENT: &str = "absent";

/// Puts back everything recorded in `old` and removes it.
fn rollback(ctx: &Ctx, old: &Path) -> Result<()> {
    if !old.exists() {
        return Ok(());
    }
    // The keys as `swap` recorded them: what it moved aside under `old/`, and what had
    // nothing live under `old/absent/`. Names are taken as they are, never rewritten.
    let mut keys = Vec::new();
    for base in [old.to_path_buf(), old.join(ABSENT)] {
        if base.join("users").symlink_metadata().is_ok() && !keys.iter().any(|k| k == "users") {
            keys.push("users".to_string());
        }
        for sub in ["user", "config"] {
            for e in fs::read_dir(base.join(sub)).into_iter().flatten().flatten() {
                let Ok(name) = e.file_name().into_string() else {
                    bail!("{}: a name that is not UTF-8; left as it is", ctx.show(&e.path()));
                };
                let key = format!("{sub}/{name}");
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
    }
    let discarded = old.join(".discarded");
    for (n, key) in keys.into_iter().enumerate() {
        let Some(live) = live_for(ctx, &key) else { continue };
        let kept = old.join(&key);
        // Whatever is live now is the restored copy (or nothing): moved aside by one
        // rename, not deleted in place, so no moment leaves a half-deleted folder live.
        if live.symlink_metadata().is_ok() {
            fs::create_dir_all(&discarded)
                .with_context(|| format!("creating {}", ctx.show(&discarded)))?;
            let aside = discarded.join(n.to_string());
            fs::rename(&live, &aside)
                .with_context(|| format!("moving {} aside", ctx.show(&live)))?;
        }
        if kept.symlink_metadata().is_ok() {
            fs::rename(&kept, &live)
                .with_context(|| format!("putting {} back", ctx.show(&live)))?;
        }
        // Done with this key: a later run (after a failure on another key) must not
        // handle it again, or it would move aside what is live by then.
        let _ = fs::remove_file(absent_marker(old, &key));
        fsx::sync_dir(&live);
        fsx::sync_dir(&kept);
    }
    fs::remove_dir_all(old).with_context(|| format!("removing {}", ctx.show(old)))?;
    Ok(())
}

/// Removes a committed restore's previous data. First an atomic rename to
/// `.restore-done-*` (synced), so a removal cut short (a kill, a file held open, a full
/// disk) can never look like an interrupted restore and be "rolled back" over the restored
/// data; then the delete, which a later run finishes if need be.
fn discard_committed(old: &Path) {
    let Some(parent) = old.parent() else { return };
    let suffix = old.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let suffix = suffix.strip_prefix(OLD_PREFIX).unwrap_or(&suffix).to_string();
    let done = fsx::unique_path(&parent.join(format!("{DONE_PREFIX}{suffix}")));
    if fs::rename(old, &done).is_ok() {
        fsx::sync_dir(&done);
        let _ = fs::remove_dir_all(&done);
        fsx::sync_dir(&done);
    }
}

/// Finishes or rolls back a restore that a crash interrupted. Call with the lock held.
/// Returns what it did, for the caller to report.
pub fn recover_interrupted(ctx: &Ctx) -> Vec<String> {
    let mut done = Vec::new();
    let data = ctx.data_dir();
    for e in fs::read_dir(&data).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name.starts_with(OLD_PREFIX) {
            if path.join(COMMITTED).exists() {
                discard_committed(&path);
                done.push(format!("finished an interrupted restore (removed {name})"));
            } else {
                match rollback(ctx, &path) {
                    Ok(()) => done.push(format!("rolled back an interrupted restore ({name})")),
                    Err(e) => done.push(format!(
                        "could not roll back an interrupted restore in {}: {e:#}",
                        ctx.show(&path)
                    )),
                }
            }
        } else if name.starts_with(DONE_PREFIX) {
            // A committed restore's old data whose removal was cut short: never roll back.
            let _ = fs::remove_dir_all(&path);
            done.push(format!("removed the previous data of a finished restore ({name})"));
        } else if name.starts_with(STAGING_PREFIX) {
            let _ = fs::remove_dir_all(&path);
            done.push(format!("removed the staging folder of an interrupted restore ({name})"));
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::{Includes, SystemInfo};

    #[test]
    fn space_needed_is_the_extracted_blocks_plus_a_compressed_safety_backup() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("data/users/u1");
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join("a.bin"), vec![7u8; 10_000]).unwrap();
        let ctx = Ctx::new(root.path(), chrono::Utc::now()).unwrap();
        let file = |path: &str, size| crate::pack::FileEntry {
            path: path.into(),
            size,
            sha256: String::new(),
            link: None,
        };
        let manifest = Manifest {
            backup_name: "b".into(),
            created_at: String::new(),
            includes: Includes::default(),
            system_info: SystemInfo { total_users: 1, file_count: 3, total_bytes: 20_000 },
            tool_version: String::new(),
            files: vec![file("users/u1/x", 1), file("users/u1/y", 5000), file("config/.env", 9)],
        };
        let item = Item {
            key: "users".into(),
            live: ctx.data_dir().join("users"),
            entry: "users/".into(),
            files: 2,
            bytes: 5001,
            changes: None,
        };
        // The backup holds 20,000 bytes in 10,000: the live 10,000 count as 5,000.
        let needed = space_needed(&ctx, &manifest, &[item], 10_000);
        assert_eq!(needed, (4096 + 8192) + (5000 + 2 * ENTRY_OVERHEAD));
    }
}
