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

use std::{
    collections::HashMap,
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::{DateTime, Duration, FixedOffset, Local, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{value::RawValue, Value};

use crate::{
    error::usage,
    fsx,
    json_text::{self, Member},
    service_file::{Replaced, ServiceFile},
    Ctx, FailPoint, Problem,
};

/// The active file under a user's folder.
pub const ACTIVE: &str = "sent_messages.json";
/// Archive file names start with this.
pub const ARCHIVE_PREFIX: &str = "sent_messages_archive_";
/// Default age (days) from which messages are archived.
pub const DEFAULT_DAYS: u32 = 365;
/// The retention setting for archive files, in days (0 keeps them forever).
pub const RETENTION_SETTING: &str = "MESSAGE_ARCHIVE_RETENTION_DAYS";
/// Its default.
pub const DEFAULT_RETENTION_DAYS: u64 = 90;

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// One entry per user looked at.
    pub users: Vec<UserReport>,
    /// Every problem, each naming the file and what is wrong (the run fails).
    pub problems: Vec<Problem>,
    /// Files left as they are because their shape is not one the service writes today
    /// (named, as the service itself does; the run does not fail).
    pub warnings: Vec<Problem>,
}

impl Report {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One user's part of the run.
#[derive(Debug, Default, Serialize)]
pub struct UserReport {
    /// The user id (folder name).
    pub user: String,
    /// Messages in the active file before the run.
    pub active_before: usize,
    /// Messages dropped from the active file because an archive already holds them
    /// (an earlier run stopped between its two writes).
    pub already_archived: usize,
    /// Messages moved to a new archive file by this run.
    pub archived: usize,
    /// The new archive file, relative to the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_file: Option<String>,
    /// Messages left in the active file.
    pub active_after: usize,
    /// Messages whose timestamp does not parse (kept active).
    pub unparsed: usize,
    /// Archive files deleted by retention, relative to the root.
    pub deleted_archives: Vec<String>,
    /// Whether the files were changed (false in a dry run).
    pub changed: bool,
    /// Whether the active file was written by another process during the run (after it was
    /// read), and so left as that process left it; the messages also in the new archive
    /// file are dropped from it by the next run (`already_archived`).
    pub written_meanwhile: bool,
}

/// Archives messages older than `days` for `user` (or every user), then deletes archive
/// files older than `MESSAGE_ARCHIVE_RETENTION_DAYS`. Problems with one user's files are
/// reported and that user's files left as they were; the other users are still done.
/// An error is returned only for bad usage or settings, before anything changed.
pub fn archive_messages(ctx: &Ctx, user: Option<&str>, days: u32, dry_run: bool) -> Result<Report> {
    let retention = ctx.count_setting(None, RETENTION_SETTING, DEFAULT_RETENTION_DAYS)?;
    let users_dir = ctx.data_dir().join("users");
    let mut report = Report::default();
    let users = match user {
        Some(id) => {
            check_user_id(id)?;
            if !fs::symlink_metadata(users_dir.join(id))
                .is_ok_and(|m| m.is_dir() || m.file_type().is_symlink())
            {
                report
                    .problems
                    .push(Problem::at(ctx.show(&users_dir.join(id)), "no such user folder"));
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
            let removed = fsx::remove_stale_temps(&dir);
            for p in removed.iter().chain(&fsx::remove_stale_temps(&dir.join("archives"))) {
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

/// A user id given on the command line must be one folder name.
fn check_user_id(id: &str) -> Result<()> {
    if !crate::paths::is_folder_name(id) {
        return Err(usage(format!(
            "invalid user id {id:?}: expected a folder name under data/users"
        )));
    }
    Ok(())
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
    if fsx::exists(&journal) {
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
            let made = !fsx::exists(&archives_dir);
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

/// The two shapes the service has written (SPEC.md, "The real MHM's files").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Schema version 2 (2026): `deliveries`, time in `sent_at`.
    V2,
    /// Version 1: `messages`, time in `timestamp`.
    V1,
}

impl Shape {
    /// The key of the list of messages.
    pub fn list_key(self) -> &'static str {
        match self {
            Shape::V2 => "deliveries",
            Shape::V1 => "messages",
        }
    }

    /// The key of a message's time.
    pub fn time_key(self) -> &'static str {
        match self {
            Shape::V2 => "sent_at",
            Shape::V1 => "timestamp",
        }
    }
}

/// The active file, borrowed from its bytes: each top-level entry in the service's order,
/// and each message, as raw JSON text.
struct Active<'a> {
    top: Vec<(String, &'a RawValue)>,
    shape: Shape,
    messages: Vec<&'a RawValue>,
}

/// What an active file holds.
enum Parsed<'a> {
    /// Messages in one of the service's shapes.
    Messages(Active<'a>),
    /// Nothing to archive: `{}` (a new user), an empty list, a document without messages.
    Nothing,
    /// Another shape (such as 2025's `{"<category>": [...]}`): what it looks like.
    Other(String),
}

/// A JSON object's entries in their order, each value raw text.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Entries<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'a RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The active document and its messages, or what is wrong with it.
fn parse_active(bytes: &[u8]) -> Result<Parsed<'_>, String> {
    let top: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
    let text = top.get();
    if !text.starts_with('{') {
        return Ok(match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(list) if list.is_empty() => Parsed::Nothing,
            _ => Parsed::Other(format!("{} at the top", kind(text))),
        });
    }
    let Entries(top) =
        serde_json::from_str(top.get()).map_err(|e| format!("not valid JSON ({e})"))?;
    for shape in [Shape::V2, Shape::V1] {
        let Some((_, list)) = top.iter().find(|(k, _)| k == shape.list_key()) else { continue };
        return match serde_json::from_str::<Vec<&RawValue>>(list.get()) {
            Ok(messages) => Ok(Parsed::Messages(Active { top, shape, messages })),
            Err(_) => {
                Ok(Parsed::Other(format!("\"{}\" is {}", shape.list_key(), kind(list.get()))))
            }
        };
    }
    // `{}`, or the service's bookkeeping keys with no list yet.
    let bookkeeping = ["schema_version", "updated_at", "metadata", "last_updated"];
    if top.iter().all(|(k, _)| bookkeeping.contains(&k.as_str())) {
        return Ok(Parsed::Nothing);
    }
    let keys: Vec<&str> = top.iter().take(3).map(|(k, _)| k.as_str()).collect();
    Ok(Parsed::Other(format!("an object with keys {keys:?}")))
}

/// What the JSON text `raw` is, by its first character.
fn kind(raw: &str) -> &'static str {
    match raw.trim_start().bytes().next() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// Writes the active document: its top-level members in the service's order, each as it
/// was written, but the list replaced by the messages kept, `metadata.total_messages` (when
/// a number) by their count, and (version 2) `updated_at` by now.
fn write_active(
    out: &mut dyn Write,
    active: &Active<'_>,
    messages: &[&RawValue],
    updated_at: &str,
) -> io::Result<()> {
    let shape = active.shape;
    let metadata = active
        .top
        .iter()
        .find(|(key, _)| key == "metadata")
        .and_then(|(_, raw)| with_total(raw, messages.len()));
    let members: Vec<(&str, Member)> = active
        .top
        .iter()
        .map(|(key, raw)| {
            let value = match key.as_str() {
                k if k == shape.list_key() => Member::List(messages),
                "updated_at" if shape == Shape::V2 => Member::Str(updated_at),
                "metadata" => Member::Raw(metadata.as_deref().unwrap_or(raw.get())),
                _ => Member::Raw(raw.get()),
            };
            (key.as_str(), value)
        })
        .collect();
    json_text::write_object(out, 0, &members)
}

/// The `metadata` object `raw` with its `total_messages` set to `count`, every other member
/// as written; `None` when it is not an object with a number there.
fn with_total(raw: &RawValue, count: usize) -> Option<String> {
    let Entries(entries) = serde_json::from_str(raw.get()).ok()?;
    let is_number = |v: &RawValue| v.get().starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !entries.iter().any(|(k, v)| k == "total_messages" && is_number(v)) {
        return None;
    }
    let mut text = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(k).ok()?);
        text.push(':');
        if k == "total_messages" && is_number(v) {
            text.push_str(&count.to_string());
        } else {
            text.push_str(v.get());
        }
    }
    text.push('}');
    Some(text)
}

/// A message's time in `key` (see [`time_of`]), read without building the rest of it.
/// Its other members are skipped unread, so a number no double holds (`1e400`) elsewhere in
/// the message is no reason to keep it active.
fn time_of_raw(m: &RawValue, key: &str) -> Result<DateTime<Utc>, String> {
    let Some(ts) = member(m, key).map_err(|e| format!("not valid JSON ({e})"))? else {
        return Err(format!("no \"{key}\" field"));
    };
    let Ok(s) = serde_json::from_str::<String>(ts.get()) else {
        return Err(format!("{key} {} is not a string", ts.get()));
    };
    parse_time(&s).ok_or_else(|| format!("{key} {s:?} is neither YYYY-MM-DD HH:MM:SS nor RFC 3339"))
}

/// The raw value of member `key` of `raw` (the last one, as Python's `json` reads a key
/// given twice); `None` when `raw` is not an object or has no such member. The other
/// members are skipped unread.
fn member<'a>(raw: &'a RawValue, key: &str) -> serde_json::Result<Option<&'a RawValue>> {
    struct Find<'k>(&'k str);
    impl<'de> serde::de::Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<String>()? {
                if k == self.0 {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    if !raw.get().starts_with('{') {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde::Deserializer::deserialize_map(&mut de, Find(key))
}

/// The time of a message in `key`: `YYYY-MM-DD HH:MM:SS` (local) or RFC 3339.
pub fn time_of(m: &Value, key: &str) -> Result<DateTime<Utc>, String> {
    let Some(ts) = m.get(key) else {
        return Err(format!("no \"{key}\" field"));
    };
    let Some(s) = ts.as_str() else {
        return Err(format!("{key} {ts} is not a string"));
    };
    parse_time(s).ok_or_else(|| format!("{key} {s:?} is neither YYYY-MM-DD HH:MM:SS nor RFC 3339"))
}

/// The time of a version 1 message (`timestamp`).
pub fn timestamp_of(m: &Value) -> Result<DateTime<Utc>, String> {
    time_of(m, Shape::V1.time_key())
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // MHM writes `YYYY-MM-DD HH:MM:SS`; Python's `isoformat()` (a `T`, fractions of a
    // second, no offset) is read the same way, as local time.
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    local(naive).map(|t| t.with_timezone(&Utc))
}

/// A local wall time; in a DST gap, the first instant after it.
fn local(naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            let later = naive.checked_add_signed(Duration::hours(1))?;
            Local.from_local_datetime(&later).earliest()
        })
        .map(|t| t.fixed_offset())
}

/// The SHA-256 of a message's canonical text ([`json_text::canonical`]: keys sorted,
/// numbers as written): what the multiset of archived messages keeps (32 bytes each,
/// whatever the message's size).
fn canonical_digest(m: &RawValue) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(json_text::canonical(m.get()).as_bytes()).into()
}

/// `sent_messages_archive_<stamp>.json`, or `..._<stamp>_N.json` when taken.
fn unique_archive_path(dir: &Path, stamp: &str) -> PathBuf {
    let stem = fsx::unique_stem(&format!("{ARCHIVE_PREFIX}{stamp}"), |n| {
        fsx::exists(&dir.join(format!("{n}.json")))
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
fn archive_files(
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
fn read_archive(path: &Path, archived: &mut HashMap<[u8; 32], usize>) -> Result<(), String> {
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
fn archive_metadata(
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

/// The multiset of `messages`' canonical digests.
fn digests(messages: &[&RawValue]) -> HashMap<[u8; 32], usize> {
    let mut counts = HashMap::new();
    for &m in messages {
        *counts.entry(canonical_digest(m)).or_default() += 1;
    }
    counts
}

/// Whether the JSON document in the file at `path` (an archive or an active file, read
/// back after it was written) holds under `list_key` exactly the messages `expected`
/// counts. Read as a stream, one message in memory at a time.
fn holds_exactly(path: &Path, list_key: &str, expected: HashMap<[u8; 32], usize>) -> Result<()> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    struct Doc<'k>(&'k str, HashMap<[u8; 32], usize>);
    struct List<'m>(&'m mut HashMap<[u8; 32], usize>);
    impl<'de> Visitor<'de> for Doc<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(key) = map.next_key::<String>()? {
                if key == self.0 && !found {
                    map.next_value_seed(List(&mut self.1))?;
                    found = true;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found && self.1.values().all(|n| *n == 0))
        }
    }
    impl<'de> DeserializeSeed<'de> for List<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for List<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(m) = seq.next_element::<Box<RawValue>>()? {
                match self.0.get_mut(&canonical_digest(&m)) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => return Err(serde::de::Error::custom("a message that was not written")),
                }
            }
            Ok(())
        }
    }
    let file = fs::File::open(path)?;
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(1 << 16, file));
    let whole = serde::Deserializer::deserialize_map(&mut de, Doc(list_key, expected))
        .and_then(|whole| de.end().map(|()| whole))
        .map_err(|e| anyhow::anyhow!("read back, it is not what was written ({e})"))?;
    if !whole {
        anyhow::bail!("read back, it does not hold every message written to it");
    }
    Ok(())
}

/// Writes a new archive file at `path`, which must not exist: what `render` writes (JSON in
/// the service's style, [`json_text`]) under a temporary name, with `perms`, synced, read
/// back and compared message by message with `messages` (under `list_key`), then renamed
/// into place.
fn write_archive(
    ctx: &Ctx,
    path: &Path,
    (list_key, messages): (&str, &[&RawValue]),
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    of: Option<&fs::Metadata>,
) -> Result<()> {
    let mut file = fsx::Atomic::create(path)
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
    holds_exactly(file.temp(), list_key, digests(messages)).with_context(|| tmp.clone())?;
    file.commit_new().with_context(|| format!("writing {}", ctx.show(path)))
}

/// How long to wait for the service to let go of its file (its own writers wait 10 s).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

// === retention ===

fn apply_retention(
    ctx: &Ctx,
    dir: &Path,
    retention_days: u64,
    dry_run: bool,
    ur: &mut UserReport,
    problems: &mut Vec<Problem>,
) {
    if retention_days == 0 {
        return;
    }
    // A limit beyond the calendar's range deletes nothing.
    let Some(limit) = i64::try_from(retention_days).ok().and_then(Duration::try_days) else {
        return;
    };
    let now = ctx.now.fixed_offset();
    for (path, t) in archive_files(ctx, dir, problems) {
        if now.signed_duration_since(t) < limit {
            continue;
        }
        if !dry_run {
            if let Err(e) = fs::remove_file(&path) {
                problems.push(Problem::at(ctx.show(&path), format!("cannot delete: {e}")));
                continue;
            }
            ur.changed = true;
            tracing::info!(target: "mhm::sidecar", "messages archive: deleted {} (older than {retention_days} days)", ctx.show(&path));
        }
        ur.deleted_archives.push(ctx.show(&path));
    }
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

    #[test]
    fn digests_ignore_key_order_and_layout_but_not_numbers() {
        fn raw(t: &str) -> &RawValue {
            serde_json::from_str(t).unwrap()
        }
        let a = raw(r#"{"b": 1, "a": {"y": 2, "x": [1, {"q": 1, "p": 2}]}}"#);
        let b = raw(r#"{"a":{"x":[1,{"p":2,"q":1}],"y":2},"b":1}"#);
        assert_eq!(canonical_digest(a), canonical_digest(b));
        assert_ne!(canonical_digest(a), canonical_digest(raw(r#"{"a": 1}"#)));
        assert_ne!(
            canonical_digest(raw("[123456789012345678901234567890]")),
            canonical_digest(raw("[123456789012345678901234567891]"))
        );
    }

    #[test]
    fn a_message_time_is_found_past_numbers_no_double_holds() {
        let m = serde_json::from_str::<&RawValue>(
            r#"{"n": 1e400, "sent_at": "2026-01-01 10:00:00", "sent_at_x": 5}"#,
        )
        .unwrap();
        assert!(time_of_raw(m, "sent_at").is_ok());
        assert!(time_of_raw(m, "timestamp").unwrap_err().contains("no \"timestamp\" field"));
        let n = serde_json::from_str::<&RawValue>(r#"{"timestamp": 5}"#).unwrap();
        assert!(time_of_raw(n, "timestamp").unwrap_err().contains("is not a string"));
        let s = serde_json::from_str::<&RawValue>(r#""text""#).unwrap();
        assert!(time_of_raw(s, "timestamp").is_err());
    }

    #[test]
    fn timestamps() {
        assert!(parse_time("2026-01-01 10:00:00").is_some());
        assert!(parse_time("2026-01-01T10:00:00+02:00").is_some());
        assert!(parse_time("2026-01-01T10:00:00.123456").is_some());
        assert!(parse_time("2026-01-01 10:00:00.5").is_some());
        assert!(parse_time("2026-01-01").is_none());
        assert!(parse_time("yesterday").is_none());
        assert!(timestamp_of(&serde_json::json!({"timestamp": 5})).is_err());
        assert!(timestamp_of(&serde_json::json!({})).is_err());
    }
}
