//! The archive files: their names (ours `sent_messages_archive_<stamp>[_N].json`, the
//! service's `sent_messages_archive_YYYY-MM-DD_HH-MM-SS.json`) and times, the messages they
//! hold, the metadata of a new one, and its writing (temporary name, read back, renamed).

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};
use serde_json::{value::RawValue, Value};

use super::shape::{canonical_digest, digests, holds_exactly, local, member, Shape};
use crate::{
    files::{self, PlaceError},
    Ctx, Problem,
};

/// Archive file names start with this.
pub const ARCHIVE_PREFIX: &str = "sent_messages_archive_";

/// `sent_messages_archive_<stamp>.json`, or `..._<stamp>_N.json` when taken.
pub(super) fn unique_archive_path(dir: &Path, stamp: &str) -> PathBuf {
    let stem = files::unique_stem(&format!("{ARCHIVE_PREFIX}{stamp}"), |n| {
        files::exists(&dir.join(format!("{n}.json")))
    });
    dir.join(format!("{stem}.json"))
}

/// The time in an archive file name, read as local time; `None` when it is not one.
pub fn archive_time(file_name: &str) -> Option<DateTime<FixedOffset>> {
    let rest = file_name.strip_prefix(ARCHIVE_PREFIX)?.strip_suffix(".json")?;
    // The service's own: `YYYY-MM-DD_HH-MM-SS`.
    if let Ok(t) = NaiveDateTime::parse_from_str(rest, "%Y-%m-%d_%H-%M-%S") {
        return local(t);
    }
    let (stamp, n) = match rest.get(15..) {
        Some("") => (rest, None),
        Some(tail) => (rest.get(..15)?, Some(tail.strip_prefix('_')?)),
        None => return None,
    };
    if n.is_some_and(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    local(NaiveDateTime::parse_from_str(stamp, "%Y%m%d_%H%M%S").ok()?)
}

/// The user's archive files with their name times, oldest first.
pub(super) fn archive_files(
    ctx: &Ctx,
    dir: &Path,
    problems: &mut Vec<Problem>,
) -> Vec<(PathBuf, DateTime<FixedOffset>)> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(Problem::at(ctx.show(dir), format!("cannot read: {e}")));
            return Vec::new();
        }
    };
    let mut out: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| {
            let t = archive_time(e.file_name().to_str()?)?;
            Some((e.path(), t))
        })
        .collect();
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    out
}

/// Adds the messages of an archive file to the multiset `archived`, or says what is
/// wrong with the file. Its messages stay raw text borrowed from the file's bytes.
pub(super) fn read_archive(
    path: &Path,
    archived: &mut HashMap<[u8; 32], usize>,
) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Archive<'a> {
        #[serde(borrow, alias = "deliveries")]
        messages: Vec<&'a RawValue>,
    }
    let bytes = fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let doc: Archive = serde_json::from_slice(&bytes).map_err(|e| {
        if e.is_data() {
            "not an archive file: no \"deliveries\" or \"messages\" array".to_string()
        } else {
            format!("not valid JSON ({e})")
        }
    })?;
    for m in doc.messages {
        *archived.entry(canonical_digest(m)).or_default() += 1;
    }
    Ok(())
}

/// The metadata of an archive file, in the shape of the file its messages came from:
/// version 2 as the service's own archives (`count`, `oldest_message`, `newest_message`),
/// version 1 as `{"version", "archived_date", "original_file", "total_messages",
/// "date_range"}`. The times are the messages' own values.
pub(super) fn archive_metadata(
    ctx: &Ctx,
    shape: Shape,
    active: &Path,
    old: &[(DateTime<Utc>, &RawValue)],
) -> Value {
    let key = shape.time_key();
    let stamp = |m: Option<&(DateTime<Utc>, &RawValue)>| {
        let raw = m.and_then(|(_, raw)| member(raw, key).ok().flatten())?;
        serde_json::from_str::<Value>(raw.get()).ok()
    };
    let oldest = stamp(old.iter().min_by_key(|(t, _)| *t));
    let newest = stamp(old.iter().max_by_key(|(t, _)| *t));
    match shape {
        Shape::V2 => serde_json::json!({
            "count": old.len(), "oldest_message": oldest, "newest_message": newest,
        }),
        Shape::V1 => serde_json::json!({
            "version": "2.0",
            "archived_date": ctx.now_local().format("%Y-%m-%d %H:%M:%S").to_string(),
            "original_file": ctx.show(active).replace('\\', "/"),
            "total_messages": old.len(),
            "date_range": {"oldest": oldest, "newest": newest},
        }),
    }
}

/// Writes a new archive file at `path`, which must not exist: what `render` writes (JSON in
/// the service's style, [`json_text`]) under a temporary name, with `perms`, synced, read
/// back and compared message by message with `messages` (under `list_key`), then renamed
/// into place.
pub(super) fn write_archive(
    ctx: &Ctx,
    path: &Path,
    (list_key, messages): (&str, &[&RawValue]),
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    of: Option<&fs::Metadata>,
) -> Result<()> {
    let mut file = files::Atomic::create(path)
        .with_context(|| format!("creating a file beside {}", ctx.show(path)))?;
    let tmp = ctx.show(file.temp());
    let mut w = io::BufWriter::with_capacity(1 << 16, file.file());
    render(&mut w).and_then(|()| w.flush()).with_context(|| format!("writing {tmp}"))?;
    drop(w);
    // The archive is the active file's: its owner and group (a run as root must not leave
    // the service a file it cannot read), and never readable by more users.
    if let Some(of) = of {
        #[cfg(unix)]
        crate::service_file::same_owner(file.file(), of)
            .with_context(|| format!("giving {tmp} the owner and group of the file"))?;
        file.set_permissions_of(of).with_context(|| format!("setting permissions on {tmp}"))?;
    }
    file.file().sync_all().with_context(|| format!("writing {tmp}"))?;
    let verify = |t: &Path| holds_exactly(t, list_key, digests(messages)).with_context(|| tmp);
    file.commit_verified(verify).map_err(|e| match e {
        PlaceError::Refused(e) => e,
        other => other.into_error(path).context(format!("writing {}", ctx.show(path))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names() {
        assert!(archive_time("sent_messages_archive_20260101_120000.json").is_some());
        assert!(archive_time("sent_messages_archive_20260101_120000_12.json").is_some());
        assert!(archive_time("sent_messages_archive_20260101_120000_.json").is_none());
        assert!(archive_time("sent_messages_archive_20260101_120000_x.json").is_none());
        assert!(archive_time("sent_messages_archive_2026.json").is_none());
        assert!(archive_time("sent_messages.json").is_none());
    }
}
