//! Message archives (SPEC section 4): old messages move from each user's
//! `messages/sent_messages.json` into `messages/archives/sent_messages_archive_*.json`.
//!
//! Beside the running service, in two steps, under the service's own lock on the file
//! ([`service_file`]), taken before the file is read and let go after it is replaced:
//! 1. the archive file is written to a `.tmp-*` name, synced, read back and renamed into
//!    place;
//! 2. only then is the active file replaced: its new content written to a `.tmp-*` file
//!    beside it, synced and read back, the file read again by its name and compared with
//!    what was read, and the temporary file renamed over it. When a process that takes no
//!    lock wrote the file meanwhile, it is left as that process left it (reported); its
//!    messages that are also in the new archive are dropped from it by the next run.
//!
//! A crash between the two leaves the moved messages in both files. Every run therefore
//! starts by dropping from the active set each message already present in one of the
//! user's archive files (compared as whole JSON values, counted as a multiset so two equal
//! messages are two), so a rerun finishes the move and never writes a message into a second
//! archive. Messages whose `timestamp` does not parse stay active and are reported. Every
//! value is copied as it was written ([`json_text`]).
//!
//! | part | module |
//! |---|---|
//! | a run, one user at a time, under the service's lock | here |
//! | what a run reports, in all and per user | `report.rs` |
//! | the files' shapes, a message's time, the digests, the read-back check | `shape.rs` |
//! | archive files: names, times, reading, metadata, writing | `archive.rs` |
//! | archive files past the retention | `retention.rs` |
//! | the service's lock and the rewrite in place under it | [`service_file`] (beside [`lock`](crate::lock), the sidecar's own) |

mod archive;
mod report;
mod retention;
mod shape;

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    path::Path,
};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, Utc};
use serde_json::value::RawValue;

use self::{
    archive::{archive_files, archive_metadata, read_archive, unique_archive_path, write_archive},
    retention::apply_retention,
    shape::{
        canonical_digest, digests, holds_exactly, parse_active, time_of_raw, write_active, Parsed,
    },
};
pub use self::{
    archive::{archive_time, ARCHIVE_PREFIX},
    report::{Report, UserReport},
    shape::{time_of, timestamp_of, Shape},
};
use crate::{
    files,
    json_text::{self, Member},
    service_file::{Replaced, ServiceFile},
    Ctx, FailPoint, Problem,
};

/// The active file under a user's folder.
pub const ACTIVE: &str = "sent_messages.json";
/// Default age (days) from which messages are archived.
pub const DEFAULT_DAYS: u32 = 365;

/// The next step after a user id not found: the first few user folders there are.
fn users_there(ctx: &Ctx, users_dir: &Path) -> String {
    let mut ids: Vec<String> = fs::read_dir(users_dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    match ids.len() {
        0 => format!("there are no user folders in {}", ctx.show(users_dir)),
        n => {
            let more = if n > 5 { format!(" and {} more", n - 5) } else { String::new() };
            format!("the users there: {}{more}", ids[..n.min(5)].join(", "))
        }
    }
}

/// Archives messages older than `days` for `user` (or every user), then deletes archive
/// files older than `MESSAGE_ARCHIVE_RETENTION_DAYS`. Problems with one user's files are
/// reported and that user's files left as they were; the other users are still done.
/// An error is returned only for bad usage or settings, before anything changed.
pub fn archive_messages(ctx: &Ctx, user: Option<&str>, days: u32, dry_run: bool) -> Result<Report> {
    let retention = ctx.settings.message_retention_days.get()?;
    let users_dir = ctx.data_dir().join("users");
    let mut report = Report::default();
    let users = match user {
        Some(id) => {
            crate::paths::check_user_id(id)?;
            if !fs::symlink_metadata(users_dir.join(id))
                .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink())
            {
                let what = format!("no such user folder; {}", users_there(ctx, &users_dir));
                report.problems.push(Problem::at(ctx.show(&users_dir.join(id)), what));
                return Ok(report);
            }
            vec![id.to_string()]
        }
        None => list_users(ctx, &users_dir, &mut report.problems),
    };
    for id in users {
        let dir = users_dir.join(&id).join("messages");
        // Never through a link: a user folder, `messages/` or `archives/` that is one
        // (anyone who can write the root can plant it) would send writes and deletions
        // outside the root.
        let linked = [users_dir.join(&id), dir.clone(), dir.join("archives")]
            .into_iter()
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()));
        if let Some(link) = linked {
            report.problems.push(Problem::at(
                ctx.show(&link),
                "a link where a folder belongs: refused (never followed); this user's messages are not archived",
            ));
            continue;
        }
        let mut ur = UserReport { user: id, ..UserReport::default() };
        if !dry_run {
            // What a crashed run left (its writer gone, or older than an hour).
            let removed = files::remove_stale_temps(&dir);
            for p in removed.iter().chain(&files::remove_stale_temps(&dir.join("archives"))) {
                tracing::info!(target: "mhm::sidecar", "messages archive: removed leftover {}", ctx.show(p));
            }
        }
        archive_user(ctx, &dir, days, dry_run, &mut ur, &mut report);
        // Ours in archives/, and the service's own beside the active file.
        for folder in [dir.join("archives"), dir.clone()] {
            apply_retention(ctx, &folder, retention, dry_run, &mut ur, &mut report.problems);
        }
        report.users.push(ur);
    }
    for p in report.problems.iter().chain(&report.warnings) {
        tracing::warn!(target: "mhm::sidecar", "messages archive: {p}");
    }
    Ok(report)
}

fn list_users(ctx: &Ctx, users_dir: &Path, problems: &mut Vec<Problem>) -> Vec<String> {
    let entries = match fs::read_dir(users_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(Problem::at(ctx.show(users_dir), format!("cannot read: {e}")));
            return Vec::new();
        }
    };
    let mut ids = Vec::new();
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match e.file_name().into_string() {
            Ok(name) if !name.starts_with('.') => ids.push(name),
            Ok(_) => {}
            Err(name) => problems.push(Problem::at(
                ctx.show(&users_dir.join(name)),
                "user folder name is not valid UTF-8, skipped",
            )),
        }
    }
    ids.sort();
    ids
}

// === one user ===

fn archive_user(
    ctx: &Ctx,
    dir: &Path,
    days: u32,
    dry_run: bool,
    ur: &mut UserReport,
    report: &mut Report,
) {
    let active_path = dir.join(ACTIVE);
    let show = ctx.show(&active_path);
    // What an interrupted run of an earlier version (which wrote the file over in place)
    // may have left: the messages it kept, possibly nowhere else.
    let journal = dir.join(format!(".{ACTIVE}.journal"));
    if files::exists(&journal) {
        report.warnings.push(Problem::at(
            ctx.show(&journal),
            format!(
                "left by an interrupted run of an earlier version; it may hold messages {show} \
                 lacks: copy back the ones missing, then delete it"
            ),
        ));
    }
    // The service's own lock on its file, held while it is read and replaced (not in a
    // dry run, which changes nothing).
    let mut held = None;
    let bytes = if dry_run {
        match fs::read(&active_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                report.problems.push(Problem::at(show, format!("cannot read: {e}")));
                return;
            }
        }
    } else {
        let mut file = match ServiceFile::lock(&active_path, LOCK_WAIT) {
            Ok(Some(file)) => file,
            Ok(None) => return,
            Err(e) => {
                report.problems.push(Problem::at(show, format!("{e:#}; left as it is")));
                return;
            }
        };
        let read = ctx.fail_at(FailPoint::MessagesLocked).and_then(|()| {
            let bytes = file.read().context("reading it")?;
            Ok(bytes)
        });
        match read {
            Ok(bytes) => {
                held = Some(file);
                bytes
            }
            Err(e) => {
                report.problems.push(Problem::at(show, format!("{e:#}; left as it is")));
                return;
            }
        }
    };
    // Every message stays raw JSON text borrowed from `bytes`: a file of any size costs
    // itself once, plus a pointer per message (no serde_json::Value tree of it all).
    let active = match parse_active(&bytes) {
        Ok(Parsed::Messages(active)) => active,
        Ok(Parsed::Nothing) => return,
        Ok(Parsed::Other(what)) => {
            report.warnings.push(Problem::at(
                show,
                format!("{what}: not a shape the service writes today; left as it is"),
            ));
            return;
        }
        Err(what) => {
            report.problems.push(Problem::at(show, format!("{what}; left as it is")));
            return;
        }
    };
    let problems = &mut report.problems;
    let archives_dir = dir.join("archives");
    // Every message already archived (ours in archives/, the service's own beside the
    // active file), as a multiset of digests of canonical JSON texts.
    let mut archived: HashMap<[u8; 32], usize> = HashMap::new();
    let mut files = archive_files(ctx, &archives_dir, problems);
    files.extend(archive_files(ctx, dir, problems));
    for path in files.into_iter().map(|(p, _)| p) {
        if let Err(what) = read_archive(&path, &mut archived) {
            // Without its content we cannot tell which messages are already archived.
            problems.push(Problem::at(
                ctx.show(&path),
                format!("{what}; messages of this user not archived until it is fixed or removed"),
            ));
            return;
        }
    }
    let shape = active.shape;
    ur.active_before = active.messages.len();
    // Far beyond the calendar's range: nothing is that old.
    let cutoff = ctx
        .now
        .checked_sub_signed(Duration::days(i64::from(days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let mut keep: Vec<&RawValue> = Vec::new();
    let mut old: Vec<(DateTime<Utc>, &RawValue)> = Vec::new();
    for (i, &m) in active.messages.iter().enumerate() {
        if !archived.is_empty() {
            if let Some(n) = archived.get_mut(&canonical_digest(m)).filter(|n| **n > 0) {
                *n -= 1;
                ur.already_archived += 1;
                continue;
            }
        }
        match time_of_raw(m, shape.time_key()) {
            Ok(t) if t <= cutoff => old.push((t, m)),
            Ok(_) => keep.push(m),
            Err(what) => {
                ur.unparsed += 1;
                problems.push(Problem::at(
                    ctx.show(&active_path),
                    format!("message #{i}: {what}; kept in the active file"),
                ));
                keep.push(m);
            }
        }
    }
    drop(archived);
    ur.archived = old.len();
    ur.active_after = keep.len();
    if old.is_empty() && ur.already_archived == 0 {
        return;
    }
    let archive_path =
        if old.is_empty() { None } else { Some(unique_archive_path(&archives_dir, &ctx.stamp())) };
    ur.archive_file = archive_path.as_ref().map(|p| ctx.show(p));
    let Some(mut file) = held else { return };
    let mut archive_written = false;
    let result = (|| -> Result<Replaced> {
        if let Some(path) = &archive_path {
            let messages: Vec<&RawValue> = old.iter().map(|(_, m)| *m).collect();
            let metadata = archive_metadata(ctx, shape, &active_path, &old).to_string();
            let original_file = ctx.show(&active_path).replace('\\', "/");
            let archived_date = ctx.now_local().format("%Y-%m-%d %H:%M:%S").to_string();
            let members: &[(&str, Member)] = match shape {
                Shape::V2 => &[
                    ("schema_version", Member::Raw("2")),
                    ("archived_date", Member::Str(&archived_date)),
                    ("deliveries", Member::List(&messages)),
                    ("metadata", Member::Raw(&metadata)),
                    ("original_file", Member::Str(&original_file)),
                ],
                Shape::V1 => {
                    &[("metadata", Member::Raw(&metadata)), ("messages", Member::List(&messages))]
                }
            };
            let made = !files::exists(&archives_dir);
            fs::create_dir_all(&archives_dir)
                .with_context(|| format!("creating {}", ctx.show(&archives_dir)))?;
            // The active file's metadata, read without following a link.
            let of = fs::symlink_metadata(&active_path).ok();
            #[cfg(unix)]
            if let (true, Some(of)) = (made, &of) {
                // A folder made by a run as another user (root) is the service's, as the
                // file beside it: the service's own runs must read and write it.
                use std::os::unix::fs::MetadataExt;
                std::os::unix::fs::lchown(&archives_dir, Some(of.uid()), Some(of.gid()))
                    .with_context(|| {
                        format!("giving {} the owner of the file", ctx.show(&archives_dir))
                    })?;
            }
            #[cfg(not(unix))]
            let _ = made;
            let render = |out: &mut dyn Write| json_text::write_object(out, 0, members);
            write_archive(ctx, path, (shape.list_key(), &messages), render, of.as_ref())?;
            archive_written = true;
            ctx.fail_at(FailPoint::AfterArchiveWrite)?;
        }
        let updated_at = ctx.now_local().format("%Y-%m-%d %H:%M:%S").to_string();
        let render = |out: &mut dyn Write| write_active(out, &active, &keep, &updated_at);
        let check = |new: &Path| holds_exactly(new, shape.list_key(), digests(&keep));
        file.replace(ctx, render, check, &bytes)
            .with_context(|| format!("replacing {}", ctx.show(&active_path)))
    })();
    match result {
        Ok(Replaced::Done) => {
            ur.changed = true;
            tracing::info!(target: "mhm::sidecar", "messages archive: {}: {} archived to {}, {} already archived, {} kept",
                ur.user, ur.archived, ur.archive_file.as_deref().unwrap_or("-"), ur.already_archived, ur.active_after);
        }
        Ok(Replaced::WrittenMeanwhile) => {
            ur.changed = archive_written;
            ur.written_meanwhile = true;
            let moved = match &ur.archive_file {
                Some(a) => format!(
                    "; its {} message(s) written to {a} are in both until the next run, which \
                     drops them from it",
                    ur.archived
                ),
                None => String::new(),
            };
            problems.push(Problem::at(
                show,
                format!(
                    "written by another process during the run (after it was read); skipped: \
                     left as that process left it{moved}; run it again"
                ),
            ));
        }
        Err(e) => {
            ur.changed = archive_written;
            problems.push(Problem::general(format!("{e:#}")));
        }
    }
}

/// How long to wait for the service to let go of its file (its own writers wait 10 s).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
