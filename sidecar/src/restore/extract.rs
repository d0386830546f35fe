//! Extracting a verified backup's items into the staging folder: a zip entry by entry
//! (names and links refused on the way, never over a file extracted earlier), or a folder
//! the service wrote, copied without following its links.

use std::{
    fs::{self, File},
    io::{self, BufReader, Read as _},
    path::Path,
};

use anyhow::{bail, Context, Result};

use super::plan::{covers, Item};
use crate::{paths, report::BarReader, zipcheck, Ctx, FailPoint, Problem};

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
pub(super) fn extract(
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
