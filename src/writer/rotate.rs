//! Rotation: the move of the active file into `backups/` and the start of a new one, what a
//! failed rotation leaves behind (a count, an error, a retry time; never a lost event),
//! and the check that the active file is still at its path.
//!
//! Each is a sequence over every part below it, in this order: the rotation lock and the
//! shared words (`shared.rs`), then everything accepted goes to the old file (`mode.rs`:
//! the stages, the buffer), then the file is checked and renamed (`open.rs`), and the
//! trigger starts counting again (`trigger.rs`). It changes no state of its own: a
//! [`Rotator`] is the parts it works on, lent by the writer (`mod.rs`) on the cold path.

use std::{fs, io, path::Path, sync::Arc, time::Duration};

use super::{
    mode::{lost, Mode, Sink, State},
    open::{open_append, placed_events, whereabouts, Active, Whereabouts, RETRY_AFTER},
    shared::{later, Held},
};
use crate::naming::CopyName;

/// How long a due writer waits for the rotation lock another writer holds (rotating the
/// log, or starting up), rather than write on past the limit meanwhile: the overshoot of
/// several processes is what they write in this long at most, per rotation.
const LOCK_WAIT: Duration = Duration::from_millis(20);

/// How long a writer that found the rotation lock held waits before it tries again: the
/// holder may be rotating (then this writer follows it at its next event) or only looking
/// (then this one must try again soon, or the file grows past its limit). Short, and it
/// keeps the lock's system call off most events in between.
const BUSY_RETRY: Duration = Duration::from_micros(100);

/// The parts of one log a rotation works on.
pub(super) struct Rotator<'a> {
    /// The path, the mapping, the trigger, the background thread.
    pub(super) sink: Sink<'a>,
    /// The stages and the buffer, emptied into the old file first.
    pub(super) mode: &'a Mode,
    /// What copies are named after, and where they go.
    pub(super) log_name: &'a str,
    pub(super) backup_dir: &'a Path,
    pub(super) archive_dir: &'a Path,
}

impl Rotator<'_> {
    /// A rotation asked for by the application (`RollingFile::rotate_now`): no trigger
    /// needed, the gates still apply.
    #[cold]
    pub(super) fn rotate_forced(&self, st: &mut State) {
        let Sink { shared, trigger, .. } = self.sink;
        self.mode.follow_if_rotated(&self.sink, st);
        let now = trigger.now();
        let size = shared.size().saturating_add(st.buf.len() as u64);
        if trigger.rotates()
            && size >= trigger.min_bytes()
            && trigger.age(&mut st.rotation, now, st.buf.len()) >= trigger.min_age()
        {
            self.rotate(st, now, 0, true);
        }
    }

    /// The rotation lock, waiting [`LOCK_WAIT`] at most for its holder (in another process,
    /// or this one's opening of another handle) to be done; `None` past it or on an error.
    #[cold]
    fn wait_for_rotation_lock(&self) -> Option<Held<'_>> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(20);
        loop {
            std::thread::sleep(pause);
            match self.sink.shared.try_lock() {
                Ok(Some(held)) => return Some(held),
                Ok(None) if std::time::Instant::now() < deadline => {
                    pause = (pause * 2).min(Duration::from_millis(1));
                }
                _ => return None,
            }
        }
    }

    /// Moves the active file into `backups/` and starts a new one. Never panics; a
    /// failure is counted, the writer keeps writing where it can, and the next try comes
    /// after `RETRY_AFTER`.
    ///
    /// One writer of all those on the log (in any process) rotates it: the one holding the
    /// rotation lock, which checks first that no other did it since it looked.
    /// `force`: rotate though no trigger says so (the gates still apply).
    #[cold]
    pub(super) fn rotate(&self, st: &mut State, now: i64, len: usize, force: bool) {
        let Sink { path, shared, trigger, signal } = self.sink;
        let held = match shared.try_lock() {
            Ok(Some(held)) => held,
            Ok(None) => match self.wait_for_rotation_lock() {
                Some(held) => held,
                None => {
                    // Held past the wait: someone else's doing, or a holder descheduled.
                    // Write on (into the file as it is) and try again soon.
                    trigger.wait(&mut st.rotation, now, BUSY_RETRY, st.buf.len());
                    return;
                }
            },
            Err(e) => {
                let why = format!("locking {} to rotate it: {e}", path.display());
                trigger.failed(
                    &mut st.rotation,
                    &mut st.stats,
                    now,
                    RETRY_AFTER,
                    why,
                    st.buf.len(),
                );
                return;
            }
        };
        let generation = shared.generation();
        if generation != st.file.generation() {
            // Rotated by another writer since this one looked: follow, then look again.
            self.mode.follow(&self.sink, st, generation);
            // Forced: the other writer's rotation was the one asked for.
            if force
                || trigger.due_now(&mut st.rotation, shared, st.buf.len(), Some(now), len).is_none()
            {
                return;
            }
        }
        // Everything accepted before this moment belongs to the file being closed.
        let _ = self.mode.drain_all(&self.sink, st);
        let _ = self.mode.flush_buf(&self.sink, st);
        if !st.file.detached() {
            // Someone else may have deleted or moved the file: then a new one is started
            // at the path first.
            let found = self.check_active(st, now, Some(&held));
            if found == Active::Gone {
                return;
            }
            // The gates again, on the bytes really in the file now (the check took back
            // what failed flushes had counted): a flush that failed on a full disk wrote
            // nothing, and an empty file never rotates, whatever the mode. A file started
            // again is new and passes them only if it is a deleted one's continuation.
            let on_disk =
                if found == Active::InPlace { st.file.checked_len() } else { st.file.disk() };
            // The shared size can run ahead of the file: a writer that wrote into the old
            // file just after a rotation counted its bytes in the new one. On the bytes
            // really in the file, the size trigger may not hold: then count them right
            // and wait for it (no retry pause: nothing failed).
            let time_due = trigger.time_trigger() && now >= st.rotation.due_at();
            if !force && !time_due && on_disk + len as u64 <= trigger.max_bytes() {
                if shared.size() > on_disk {
                    shared.set_size(on_disk, &held);
                }
                return;
            }
            if on_disk < trigger.min_bytes()
                || trigger.age(&mut st.rotation, now, st.buf.len()) < trigger.min_age()
            {
                if found != Active::StartedAgain {
                    // Still due: try again later, not at every event while the disk is full.
                    trigger.wait(&mut st.rotation, now, RETRY_AFTER, st.buf.len());
                }
                return;
            }
        }
        let day = st.rotation.day();
        let mut copy = None;
        if !st.file.detached() {
            // The last copy of any writer: numbers keep rising even when this writer's
            // own last copy is already gone (pruned).
            st.rotation.set_last_copy(later(st.rotation.last_copy(), shared.last_copy()));
            let mut seq = match st.rotation.last_copy() {
                Some((d, s)) if d == day => s + 1,
                _ => 0,
            };
            let dest = loop {
                let name = CopyName::new(self.log_name, day, seq);
                let plain = name.to_string();
                let gz = name.gz(true).to_string();
                let dest = self.backup_dir.join(&plain);
                if !dest.exists()
                    && !self.archive_dir.join(&plain).exists()
                    && !self.archive_dir.join(&gz).exists()
                {
                    break dest;
                }
                seq += 1;
            };
            let renamed =
                fs::create_dir_all(self.backup_dir).and_then(|()| fs::rename(path, &dest));
            if let Err(e) = renamed {
                // Not found: the file went away since the check above. Start again at the
                // path rather than retry a rename that cannot work.
                if e.kind() == io::ErrorKind::NotFound
                    && matches!(
                        self.check_active(st, now, Some(&held)),
                        Active::StartedAgain | Active::Gone
                    )
                {
                    return;
                }
                let why = format!("moving {} to {}: {e}", path.display(), dest.display());
                trigger.failed(
                    &mut st.rotation,
                    &mut st.stats,
                    now,
                    RETRY_AFTER,
                    why,
                    st.buf.len(),
                );
                return;
            }
            copy = Some((dest, seq));
        }
        match open_append(path) {
            Ok(file) => {
                let file = Arc::new(file);
                if let Some((_, seq)) = &copy {
                    // The background thread makes the rename durable (it syncs the folder
                    // first thing in the pass this rotation requests), not the writer.
                    st.rotation.set_last_copy(Some((day, *seq)));
                }
                let io = self.mode.quiesce(&self.sink, st); // what failed counts against the old file
                let placed = placed_events(&st.stats, lost(io.as_deref()));
                drop(io);
                st.file.rotated(file, placed);
                // Never before the file it follows: a time read before another thread's
                // rotation, or a clock stepped back, would name the next copy by an
                // earlier day than this one's (copies out of order).
                let started = now.max(st.rotation.started());
                st.rotation.restart(trigger, started);
                st.rotation.clear_retry();
                st.stats.rotations += 1;
                // Published last: a writer that sees the new generation sees all of this.
                shared.set_size(0, &held);
                shared.set_started(started, &held);
                shared.set_last_copy(st.rotation.last_copy(), &held);
                st.file.publish(shared, &held);
                drop(held);
                trigger.publish(&st.rotation, st.buf.len());
                signal.request_maintenance();
            }
            Err(e) => {
                let mut why = format!("opening a new {}: {e}", path.display());
                if let Some((dest, seq)) = copy {
                    // Put the file back under its active name; if even that fails, keep
                    // writing through the open handle (into the copy) so nothing is lost.
                    if let Err(back) = fs::rename(&dest, path) {
                        why.push_str(&format!(
                            "; moving it back failed too ({back}), writing on into {}",
                            dest.display()
                        ));
                        st.file.detach();
                        st.rotation.set_last_copy(Some((day, seq)));
                        shared.set_last_copy(st.rotation.last_copy(), &held);
                    }
                }
                trigger.failed(
                    &mut st.rotation,
                    &mut st.stats,
                    now,
                    RETRY_AFTER,
                    why,
                    st.buf.len(),
                );
            }
        }
    }

    /// Checks that the open file is still the one at the log's path, and if someone else
    /// deleted or moved it, starts a new active file there.
    ///
    /// Called under the state lock, at each rotation and by the background thread once a
    /// second: never per event. Takes the io lock (so no flush is in flight) for its
    /// whole length. `held` is the rotation lock when the caller holds it; without it, a
    /// file gone from its path is dealt with only if the lock is free now (another writer
    /// may be rotating it: then this one follows).
    pub(super) fn check_active(&self, st: &mut State, now: i64, held: Option<&Held<'_>>) -> Active {
        let Sink { path, shared, trigger, .. } = self.sink;
        let io = self.mode.quiesce(&self.sink, st);
        // Detached: writing on into the copy on purpose, until a new file can be opened.
        let Some(file) = st.file.to_check() else {
            return Active::Unknown;
        };
        let lost = lost(io.as_deref());
        let placed = placed_events(&st.stats, lost);
        match whereabouts(&file, path) {
            Ok(Whereabouts::InPlace { len }) => {
                st.file.seen_in_place(len, placed);
                Active::InPlace
            }
            Ok(gone) => {
                let taken;
                let held = match held {
                    Some(held) => held,
                    None => match shared.try_lock() {
                        Ok(Some(h)) => {
                            taken = h;
                            &taken
                        }
                        // Another writer is at it: look again at the next check.
                        Ok(None) | Err(_) => return Active::Unknown,
                    },
                };
                let generation = shared.generation();
                if generation != st.file.generation() {
                    // Another writer rotated: not gone, followed.
                    drop(io);
                    self.mode.follow(&self.sink, st, generation);
                    return Active::Followed;
                }
                let buffered = st.buf.len();
                st.file.start_again(
                    path,
                    shared,
                    trigger,
                    &mut st.rotation,
                    &mut st.stats,
                    (file, gone),
                    now,
                    held,
                    lost,
                    buffered,
                )
            }
            // Cannot tell (a folder we may not read): keep writing where we are.
            Err(_) => Active::Unknown,
        }
    }
}
