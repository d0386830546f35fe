//! Several handles built on one path in one process share one writer, and no setting is
//! dropped silently (SPEC.md section 9): a later build's settings are merged into the
//! writer's by one rule, whichever handle came first.
//!
//! | setting | rule |
//! |---|---|
//! | `max_bytes` | the smallest (the file rotates when any handle's size trigger says so) |
//! | `rotate_at` | midnight if any asks (a writer without a time trigger gets one; the zone stays the first's) |
//! | `backup_count`, `archive_count`, `archive_max_age` | the largest (the most kept) |
//! | `compress` | on if any asks |
//! | the rest (folders, gates, write mode, buffer, flush interval, rotation off) | the first handle's |
//!
//! Every disagreement is described once per writer (the same text is not given twice):
//! returned by [`Builder::build_with_notes`](super::Builder::build_with_notes) (the Python
//! package turns it into a `warnings.warn`), printed on stderr by
//! [`Builder::build`](super::Builder::build), and counted in `Stats::settings_merged`.

use std::path::Path;

use super::{sync::Mutex, trigger::Trigger};
use crate::{
    policy::{RotateAt, Settings},
    retention::Policy,
};

/// The settings in force for one writer, and the notes already given.
#[derive(Debug)]
pub(super) struct Merged {
    settings: Settings,
    given: Vec<String>,
}

impl Merged {
    pub(super) fn new(settings: Settings) -> Self {
        Self { settings, given: Vec::new() }
    }
}

/// A size limit as people write it.
fn limit(bytes: u64) -> String {
    if bytes >= (1 << 62) {
        "none".to_string()
    } else {
        bytes.to_string()
    }
}

/// What a merge changed beyond the settings in force and the trigger's limits.
#[derive(Debug)]
pub(super) struct Merge {
    /// The disagreements not described before, one sentence each, naming both values.
    pub(super) notes: Vec<String>,
    /// The time trigger was turned on: the active file needs its midnight
    /// (`Rotation::refresh_due`).
    pub(super) time_trigger_on: bool,
}

impl Merged {
    /// Merges `new` (a later handle's settings) into the writer's, for the log at `log`:
    /// the trigger's size limit and time trigger, and the maintainer's `policy`, follow.
    pub(super) fn merge(
        &mut self,
        log: &Path,
        new: &Settings,
        trigger: &Trigger,
        policy: &Mutex<Policy>,
    ) -> Merge {
        let merged = self;
        let old = merged.settings.clone();
        let mut now = old.clone();
        let mut notes = Vec::new();
        let mut time_trigger_on = false;
        let path = log.display();

        if new.get_max_bytes() != old.get_max_bytes() {
            let smallest = old.get_max_bytes().min(new.get_max_bytes());
            notes.push(format!(
                "{path}: handlers disagree on the size limit ({} in force, {} asked): the file \
                 rotates past {}, the smallest",
                limit(old.get_max_bytes()),
                limit(new.get_max_bytes()),
                limit(smallest)
            ));
            now = now.max_bytes(smallest);
            trigger.set_max_bytes(smallest);
        }
        let (old_at, new_at) = (old.get_rotate_at(), new.get_rotate_at());
        if old_at != new_at {
            if old_at == RotateAt::Never {
                notes.push(format!(
                    "{path}: handlers disagree on the time trigger (none in force, {new_at:?} \
                     asked): the file now also rotates at midnight ({:?})",
                    crate::clock::Zone::from(old_at)
                ));
                now = now.rotate_at(match trigger.zone() {
                    crate::clock::Zone::Utc => RotateAt::UtcMidnight,
                    _ => RotateAt::LocalMidnight,
                });
                trigger.turn_on_time_trigger();
                time_trigger_on = true;
            } else if new_at != RotateAt::Never {
                notes.push(format!(
                    "{path}: handlers disagree on the zone of midnight ({old_at:?} in force, \
                     {new_at:?} asked): the first handle's stays"
                ));
            }
        }
        {
            let mut policy = policy.lock();
            let mut keep = |what: &str, old: String, new: String, more: bool| {
                if old != new {
                    let verb = if more { "the most is kept" } else { "the first's stays" };
                    notes.push(format!(
                        "{path}: handlers disagree on {what} ({old} in force, {new} asked): {verb}"
                    ));
                }
            };
            let (ob, nb) = (old.get_backup_count(), new.get_backup_count());
            keep("backup_count", ob.to_string(), nb.to_string(), true);
            policy.backup_count = policy.backup_count.max(nb);
            now = now.backup_count(ob.max(nb));
            let (oa, na) = (old.get_archive_count(), new.get_archive_count());
            keep("archive_count", oa.to_string(), na.to_string(), true);
            policy.archive_count = policy.archive_count.max(na);
            now = now.archive_count(oa.max(na));
            let (om, nm) = (old.get_archive_max_age(), new.get_archive_max_age());
            keep("archive_max_age", format!("{om:?}"), format!("{nm:?}"), true);
            policy.max_age = policy.max_age.max(nm);
            now = now.archive_max_age(om.max(nm));
            if new.get_compress() && !old.get_compress() {
                notes.push(format!(
                    "{path}: handlers disagree on compress (off in force, on asked): on"
                ));
                policy.compress_on_move = true;
                now = now.compress(true);
            }
        }
        let first = |what: &str, old: String, new: String, notes: &mut Vec<String>| {
            if old != new {
                notes.push(format!(
                    "{path}: handlers disagree on {what} ({old} in force, {new} asked): the \
                     first handle's stays"
                ));
            }
        };
        let dirs = |s: &Settings| {
            (
                s.backup_dir_for(log).display().to_string(),
                s.archive_dir_for(log).display().to_string(),
            )
        };
        let (od, nd) = (dirs(&old), dirs(new));
        first("backup_dir", od.0, nd.0, &mut notes);
        first("archive_dir", od.1, nd.1, &mut notes);
        let show = |v: &dyn std::fmt::Debug| format!("{v:?}");
        first(
            "min_rotate_bytes",
            show(&old.get_min_rotate_bytes()),
            show(&new.get_min_rotate_bytes()),
            &mut notes,
        );
        first(
            "min_rotate_age",
            show(&old.get_min_rotate_age()),
            show(&new.get_min_rotate_age()),
            &mut notes,
        );
        first(
            "rotation_disabled",
            show(&old.get_rotation_disabled()),
            show(&new.get_rotation_disabled()),
            &mut notes,
        );
        first("write_mode", show(&old.get_write_mode()), show(&new.get_write_mode()), &mut notes);
        if old.get_write_mode() != crate::WriteMode::Direct
            && new.get_write_mode() == old.get_write_mode()
        {
            first(
                "buffer_capacity",
                show(&old.get_buffer_capacity()),
                show(&new.get_buffer_capacity()),
                &mut notes,
            );
            first(
                "flush_interval",
                show(&old.get_flush_interval()),
                show(&new.get_flush_interval()),
                &mut notes,
            );
        }
        merged.settings = now;
        notes.retain(|n| !merged.given.contains(n));
        merged.given.extend(notes.iter().cloned());
        Merge { notes, time_trigger_on }
    }
}
