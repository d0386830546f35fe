//! Versioned tool outputs (SPEC section 5): `tools rotate` and `tools save-result`.
//!
//! A version of `<stem><ext>` is named `<stem>_<YYYY-MM-DD_HHMMSS>_<NNNN><ext>` (local
//! time; NNNN counts up from 0001 within one second, so no version is ever overwritten).
//! A file's versions are exactly the names that parse this way for its own stem and
//! extension: `report_v2_2026-01-01_120000_0001.json` is not a version of `report.json`.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use chrono::NaiveDateTime;
use serde::Serialize;
use serde_json::Value;

use crate::{error::usage, files, paths, Ctx};

/// The versions kept by default.
pub const DEFAULT_KEEP: usize = 7;
const TIME_FORMAT: &str = "%Y-%m-%d_%H%M%S";
/// `YYYY-MM-DD_HHMMSS`.
const TIME_LEN: usize = 17;

// === names ===

/// A file name's stem and extension (with its dot; empty when there is none), split as
/// [`Path::file_stem`] does: `a.tar.gz` is `a.tar` + `.gz`, `.env` has no extension.
pub fn split_name(file_name: &str) -> (&str, &str) {
    match file_name.rfind('.') {
        Some(0) | None => (file_name, ""),
        Some(i) => (&file_name[..i], &file_name[i..]),
    }
}

/// The name of version `seq` at `time` of a file with this stem and extension.
pub fn version_name(stem: &str, ext: &str, time: NaiveDateTime, seq: u32) -> String {
    format!("{stem}_{}_{seq:04}{ext}", time.format(TIME_FORMAT))
}

/// The time and number of `file_name` when it is a version of `<stem><ext>`.
pub fn parse_version(file_name: &str, stem: &str, ext: &str) -> Option<(NaiveDateTime, u32)> {
    let middle = file_name.strip_prefix(stem)?.strip_prefix('_')?.strip_suffix(ext)?;
    let time = NaiveDateTime::parse_from_str(middle.get(..TIME_LEN)?, TIME_FORMAT).ok()?;
    let seq = middle.get(TIME_LEN..)?.strip_prefix('_')?;
    if seq.len() < 4 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((time, seq.parse().ok()?))
}

/// One stored version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    /// Where it is.
    pub path: PathBuf,
    /// The time in its name.
    pub time: NaiveDateTime,
    /// Its number within that second.
    pub seq: u32,
}

/// The versions of `<stem><ext>` in `dir`, oldest first.
pub fn versions(ctx: &Ctx, dir: &Path, stem: &str, ext: &str) -> Result<Vec<Version>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", ctx.show(dir))),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", ctx.show(dir)))?;
        let name = e.file_name();
        let Some((time, seq)) = name.to_str().and_then(|n| parse_version(n, stem, ext)) else {
            continue;
        };
        if e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(Version { path: e.path(), time, seq });
        }
    }
    out.sort_by(|a, b| (a.time, a.seq, &a.path).cmp(&(b.time, b.seq, &b.path)));
    Ok(out)
}

// === rotation ===

/// How the current file gets into the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Move it (`tools rotate`).
    Move,
    /// Copy it, leaving it in place to be replaced atomically (`tools save-result`).
    Copy,
}

/// What a rotation did (or would do).
#[derive(Debug, Serialize)]
pub struct Rotation {
    /// The rotated file.
    pub file: String,
    /// The new version.
    pub version: String,
    /// Old versions deleted beyond `--keep`.
    pub deleted: Vec<String>,
}

/// Stores `file` as a new version in `archive_dir`, then keeps only the newest `keep`
/// versions of it (the new one always among them). With `dry_run`, only says so.
pub fn rotate(
    ctx: &Ctx,
    file: &Path,
    archive_dir: &Path,
    keep: usize,
    mode: Mode,
    dry_run: bool,
) -> Result<Rotation> {
    check_keep(keep)?;
    let meta = fs::metadata(file).with_context(|| format!("{}: cannot rotate", ctx.show(file)))?;
    if !meta.is_file() {
        bail!("{}: not a regular file", ctx.show(file));
    }
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        bail!("{}: the file name is not valid UTF-8", ctx.show(file));
    };
    let (stem, ext) = split_name(name);
    let time = ctx.now_local().naive_local();
    let existing = versions(ctx, archive_dir, stem, ext)?;
    let seq = existing.iter().filter(|v| v.time == time).map(|v| v.seq).max().unwrap_or(0) + 1;
    let target = archive_dir.join(version_name(stem, ext, time, seq));
    if target.symlink_metadata().is_ok() {
        bail!("{} exists already; a version is never overwritten", ctx.show(&target));
    }
    // The newest `keep - 1` others stay beside the new version.
    let mut others = existing;
    let doomed: Vec<PathBuf> =
        others.drain(..others.len().saturating_sub(keep - 1)).map(|v| v.path).collect();
    let show = |p: &Path| ctx.show(p);
    let mut rotation = Rotation { file: show(file), version: show(&target), deleted: Vec::new() };
    if dry_run {
        rotation.deleted = doomed.iter().map(|p| show(p)).collect();
        return Ok(rotation);
    }
    fs::create_dir_all(archive_dir)
        .with_context(|| format!("creating {}", ctx.show(archive_dir)))?;
    match mode {
        Mode::Move => files::move_file(file, &target)
            .with_context(|| format!("moving {} to {}", ctx.show(file), ctx.show(&target)))?,
        Mode::Copy => copy_new(ctx, file, &target)?,
    }
    tracing::info!(target: "mhm::sidecar", "tools: {} -> {}", ctx.show(file), ctx.show(&target));
    for p in doomed {
        fs::remove_file(&p).with_context(|| {
            format!("deleting old version {} (the new one is {})", ctx.show(&p), ctx.show(&target))
        })?;
        tracing::info!(target: "mhm::sidecar", "tools: deleted old version {}", ctx.show(&p));
        rotation.deleted.push(show(&p));
    }
    Ok(rotation)
}

fn check_keep(keep: usize) -> Result<()> {
    if keep == 0 {
        return Err(usage("--keep must be at least 1 (the new version is always kept)"));
    }
    Ok(())
}

/// Copies `from` to `to`, which must not exist: a hard link where the file system has
/// them (it fails rather than overwrite), else a synced copy renamed into place.
fn copy_new(ctx: &Ctx, from: &Path, to: &Path) -> Result<()> {
    if fs::hard_link(from, to).is_ok() {
        files::sync_dir(to);
        return Ok(());
    }
    let mut out = files::Atomic::create(to)
        .with_context(|| format!("creating a file beside {}", ctx.show(to)))?;
    let mut src = fs::File::open(from).with_context(|| format!("opening {}", ctx.show(from)))?;
    io::copy(&mut src, out.file())
        .with_context(|| format!("copying {} to {}", ctx.show(from), ctx.show(out.temp())))?;
    out.commit_new().with_context(|| format!("a version is never overwritten: {}", ctx.show(to)))
}

// === save-result ===

/// Where `data` for `save-result` comes from.
#[derive(Debug)]
pub enum Input<'a> {
    /// Standard input.
    Stdin,
    /// A file.
    File(&'a Path),
}

/// What `save-result` did (or would do).
#[derive(Debug, Serialize)]
pub struct Saved {
    /// The results file written.
    pub path: String,
    /// The rotation of the previous results file, when there was one.
    pub rotated: Option<Rotation>,
}

/// Reads and parses the data; nothing is changed when it is not JSON.
pub fn read_input(ctx: &Ctx, input: &Input) -> Result<Value> {
    let (bytes, from) = match input {
        Input::Stdin => {
            let mut b = Vec::new();
            io::Read::read_to_end(&mut io::stdin().lock(), &mut b)
                .context("reading the data from standard input")?;
            (b, "standard input".to_string())
        }
        Input::File(p) => {
            (fs::read(p).with_context(|| format!("reading {}", ctx.show(p)))?, ctx.show(p))
        }
    };
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{from}: not valid JSON; nothing changed"))
}

/// Writes `development_tools/<domain>/jsons/<tool>_results.json`, first storing the
/// previous one as a version in `jsons/archive/` (keeping `keep`). The current file is
/// replaced atomically, so readers see the old or the new results, never none.
pub fn save_result(
    ctx: &Ctx,
    tool: &str,
    domain: &str,
    input: &Input,
    keep: usize,
    dry_run: bool,
) -> Result<Saved> {
    paths::check_plain_name("tool name", tool)?;
    paths::check_plain_name("domain", domain)?;
    check_keep(keep)?;
    let data = read_input(ctx, input)?;
    let dir = ctx.root.join("development_tools").join(domain).join("jsons");
    let path = dir.join(format!("{tool}_results.json"));
    let local = ctx.now_local();
    let doc = serde_json::json!({
        "generated_by": concat!("mhm-sidecar ", env!("CARGO_PKG_VERSION"), " tools save-result"),
        "last_generated": local.format("%Y-%m-%d %H:%M:%S").to_string(),
        "timestamp": local.to_rfc3339(),
        "tool_name": tool,
        "domain": domain,
        "data": data,
    });
    let exists = match path.symlink_metadata() {
        Ok(m) if m.is_file() => true,
        Ok(_) => bail!("{}: exists but is not a regular file", ctx.show(&path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("reading {}", ctx.show(&path))),
    };
    let archive_dir = dir.join("archive");
    if dry_run {
        let rotated = if exists {
            Some(rotate(ctx, &path, &archive_dir, keep, Mode::Copy, true)?)
        } else {
            None
        };
        return Ok(Saved { path: ctx.show(&path), rotated });
    }
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", ctx.show(&dir)))?;
    for p in files::remove_stale_temps(&dir) {
        tracing::info!(target: "mhm::sidecar", "tools save-result: removed leftover {}", ctx.show(&p));
    }
    // The new file first (synced under a temporary name), so a failure leaves the old one.
    let mut out = files::Atomic::create(&path)
        .with_context(|| format!("creating a file beside {}", ctx.show(&path)))?;
    let mut text = serde_json::to_vec_pretty(&doc).context("encoding the results")?;
    text.push(b'\n');
    io::Write::write_all(out.file(), &text)
        .with_context(|| format!("writing {}", ctx.show(out.temp())))?;
    let rotated = if exists {
        Some(rotate(ctx, &path, &archive_dir, keep, Mode::Copy, false)?)
    } else {
        None
    };
    out.commit_replace().with_context(|| format!("writing {}", ctx.show(&path)))?;
    tracing::info!(target: "mhm::sidecar", "tools save-result: wrote {}", ctx.show(&path));
    Ok(Saved { path: ctx.show(&path), rotated })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_stems_do_not_parse() {
        let t = NaiveDateTime::parse_from_str("2026-03-20_103000", TIME_FORMAT).unwrap();
        let n = version_name("report", ".json", t, 7);
        assert_eq!(n, "report_2026-03-20_103000_0007.json");
        assert_eq!(parse_version(&n, "report", ".json"), Some((t, 7)));
        assert_eq!(
            parse_version("report_2026-03-20_103000_12345.json", "report", ".json"),
            Some((t, 12345))
        );
        assert_eq!(
            parse_version(&version_name("report_v2", ".json", t, 1), "report", ".json"),
            None
        );
        assert_eq!(parse_version(&n, "report", ".txt"), None);
        assert_eq!(parse_version("report_2026-03-20_103000_01.json", "report", ".json"), None);
        assert_eq!(parse_version("report_2026-03-20_103000_0001x.json", "report", ".json"), None);
        let bare = version_name("Makefile", "", t, 1);
        assert_eq!(parse_version(&bare, "Makefile", ""), Some((t, 1)));
    }

    #[test]
    fn split() {
        assert_eq!(split_name("a.json"), ("a", ".json"));
        assert_eq!(split_name("a.tar.gz"), ("a.tar", ".gz"));
        assert_eq!(split_name(".env"), (".env", ""));
        assert_eq!(split_name("Makefile"), ("Makefile", ""));
    }
}
