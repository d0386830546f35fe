//! Rotation: the check every event makes, the move of the active file into `backups/`,
//! and what a failed rotation leaves behind (a count, an error, a retry time; never a
//! lost event).

use std::{fs, io, sync::Arc, time::Duration};

use super::{
    mode::Hints,
    open::{open_append, placed_events, Active},
    shared::later,
    Checked, Inner, State,
};
use crate::{clock::duration_to_nanos, naming::CopyName};

/// How long a failed rotation waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How long a due writer waits for the rotation lock another writer holds (rotating the
/// log, or starting up), rather than write on past the limit meanwhile: the overshoot of
/// several processes is what they write in this long at most, per rotation.
const LOCK_WAIT: Duration = Duration::from_millis(20);

/// How long a writer that found the rotation lock held waits before it tries again: the
/// holder may be rotating (then this writer follows it at its next event) or only looking
/// (then this one must try again soon, or the file grows past its limit). Short, and it
/// keeps the lock's system call off most events in between.
const BUSY_RETRY: Duration = Duration::from_micros(100);

/// When the age gate of the active file starts counting: its start, unless the clock
/// stepped back since ([`Inner::age`]).
pub(super) fn gate_from(st: &State) -> i64 {
    match st.stepped_back {
        Some((started, from)) if started == st.started => from,
        _ => st.started,
    }
}

impl Inner {
    /// The rotation check under the state lock, for an event of `len` bytes: follows
    /// another writer's rotation (one atomic load and compare), then rotates when the log
    /// is due and both gates pass (and no failed rotation asks to wait).
    #[inline]
    pub(super) fn rotate_if_due(&self, st: &mut State, now: Option<i64>, len: usize) {
        self.follow_if_rotated(st);
        if let Some(now) = self.due_now(st, now, len) {
            self.rotate(st, now, len, false);
        }
    }

    /// Follows another writer's rotation, if there was one since this one looked.
    #[inline]
    pub(super) fn follow_if_rotated(&self, st: &mut State) {
        let generation = self.shared.generation();
        if generation != st.generation {
            self.follow(st, generation);
        }
    }

    /// The time, if the log is due for an event of `len` bytes and both gates pass. The
    /// size counts every writer's bytes (the shared count) and this one's buffer.
    #[inline]
    pub(super) fn due_now(&self, st: &mut State, now: Option<i64>, len: usize) -> Option<i64> {
        if !self.rotate {
            return None;
        }
        // Saturating: the shared size is another process's word (or a damaged file's).
        let size = self.shared.size().saturating_add(st.buf.len() as u64);
        let mut clock_now = now;
        let due = size.saturating_add(len as u64) > self.max_bytes()
            || (self.time_trigger()
                && *clock_now.get_or_insert_with(|| self.clock.now_nanos()) >= st.due_at);
        if due {
            let now = clock_now.unwrap_or_else(|| self.clock.now_nanos());
            if now >= st.retry_at && size >= self.min_bytes && self.age(st, now) >= self.min_age {
                return Some(now);
            }
        }
        None
    }

    /// The active file's age at `now`, for the age gate. A start after `now` means the
    /// clock stepped back (or a time read before another thread's rotation): the age is
    /// unknown, so it counts from now (the gate holds for `min_age` from here, as for a
    /// new file), never until the clock catches up.
    #[cold]
    fn age(&self, st: &mut State, now: i64) -> i64 {
        let from = gate_from(st);
        if now < from {
            // Gated this time whatever `min_age` is: a rotation at a time before the
            // file's start would name the next copy by an earlier day than this one's.
            st.stepped_back = Some((st.started, now));
            self.update_hints(st);
            return -1;
        }
        now.saturating_sub(from)
    }

    /// The same check without the lock, against the [`Hints`] staged mode keeps: the time
    /// to take the lock and check again if the log may be due and ungated, else `None`.
    #[inline]
    pub(super) fn may_rotate(&self, hints: &Hints, now: Option<i64>, len: usize) -> Option<i64> {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.rotate {
            return None;
        }
        let size = self.shared.size().saturating_add(hints.buffered.load(Relaxed));
        let mut clock_now = now;
        let maybe_due = size.saturating_add(len as u64) > self.max_bytes()
            || (self.time_trigger()
                && *clock_now.get_or_insert_with(|| self.clock.now_nanos())
                    >= hints.due_at.load(Relaxed));
        if maybe_due && size >= self.min_bytes {
            let now = clock_now.unwrap_or_else(|| self.clock.now_nanos());
            let gate_at = hints.gate_at.load(Relaxed);
            // Before the file's start (the clock stepped back): the lock's check sees it.
            let stepped_back = now < gate_at.saturating_sub(self.min_age);
            if (now >= gate_at || stepped_back) && now >= hints.retry_at.load(Relaxed) {
                return Some(now);
            }
        }
        None
    }

    /// Moves the active file into `backups/` and starts a new one. Never panics; a
    /// failure is counted, the writer keeps writing where it can, and the next try comes
    /// after `RETRY_AFTER`.
    ///
    /// One writer of all those on the log (in any process) rotates it: the one holding the
    /// rotation lock, which checks first that no other did it since it looked.
    /// A rotation asked for by the application (`RollingFile::rotate_now`): no trigger
    /// needed, the gates still apply.
    #[cold]
    pub(super) fn rotate_forced(&self, st: &mut State) {
        self.follow_if_rotated(st);
        let now = self.clock.now_nanos();
        let size = self.shared.size().saturating_add(st.buf.len() as u64);
        if self.rotate && size >= self.min_bytes && self.age(st, now) >= self.min_age {
            self.rotate(st, now, 0, true);
        }
    }

    /// The rotation lock, waiting [`LOCK_WAIT`] at most for its holder (in another process,
    /// or this one's opening of another handle) to be done; `None` past it or on an error.
    #[cold]
    fn wait_for_rotation_lock(&self) -> Option<super::shared::Held<'_>> {
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_micros(20);
        loop {
            std::thread::sleep(pause);
            match self.shared.try_lock() {
                Ok(Some(held)) => return Some(held),
                Ok(None) if std::time::Instant::now() < deadline => {
                    pause = (pause * 2).min(Duration::from_millis(1));
                }
                _ => return None,
            }
        }
    }

    /// `force`: rotate though no trigger says so (the gates still apply).
    #[cold]
    fn rotate(&self, st: &mut State, now: i64, len: usize, force: bool) {
        let held = match self.shared.try_lock() {
            Ok(Some(held)) => held,
            Ok(None) => match self.wait_for_rotation_lock() {
                Some(held) => held,
                None => {
                    // Held past the wait: someone else's doing, or a holder descheduled.
                    // Write on (into the file as it is) and try again soon.
                    st.retry_at = now.saturating_add(duration_to_nanos(BUSY_RETRY));
                    self.update_hints(st);
                    return;
                }
            },
            Err(e) => {
                let why = format!("locking {} to rotate it: {e}", self.path.display());
                self.rotation_failed(st, now, why);
                return;
            }
        };
        let generation = self.shared.generation();
        if generation != st.generation {
            // Rotated by another writer since this one looked: follow, then look again.
            self.follow(st, generation);
            // Forced: the other writer's rotation was the one asked for.
            if force || self.due_now(st, Some(now), len).is_none() {
                return;
            }
        }
        // Everything accepted before this moment belongs to the file being closed.
        let _ = self.drain_all(st);
        let _ = self.flush_buf(st);
        if !st.detached {
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
            let on_disk = if found == Active::InPlace { st.checked.len } else { st.disk };
            // The shared size can run ahead of the file: a writer that wrote into the old
            // file just after a rotation counted its bytes in the new one. On the bytes
            // really in the file, the size trigger may not hold: then count them right
            // and wait for it (no retry pause: nothing failed).
            let time_due = self.time_trigger() && now >= st.due_at;
            if !force && !time_due && on_disk + len as u64 <= self.max_bytes() {
                if self.shared.size() > on_disk {
                    self.shared.set_size(on_disk, &held);
                }
                return;
            }
            if on_disk < self.min_bytes || self.age(st, now) < self.min_age {
                if found != Active::StartedAgain {
                    // Still due: try again later, not at every event while the disk is full.
                    st.retry_at = now.saturating_add(duration_to_nanos(RETRY_AFTER));
                    self.update_hints(st);
                }
                return;
            }
        }
        let day = st.day;
        let mut copy = None;
        if !st.detached {
            // The last copy of any writer: numbers keep rising even when this writer's
            // own last copy is already gone (pruned).
            st.last_copy = later(st.last_copy, self.shared.last_copy());
            let mut seq = match st.last_copy {
                Some((d, s)) if d == day => s + 1,
                _ => 0,
            };
            let dest = loop {
                let name = CopyName::new(self.log_name.as_str(), day, seq);
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
                fs::create_dir_all(&self.backup_dir).and_then(|()| fs::rename(&self.path, &dest));
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
                self.rotation_failed(
                    st,
                    now,
                    format!("moving {} to {}: {e}", self.path.display(), dest.display()),
                );
                return;
            }
            copy = Some((dest, seq));
        }
        match open_append(&self.path) {
            Ok(file) => {
                let file = Arc::new(file);
                if let Some((_, seq)) = &copy {
                    // The background thread makes the rename durable (it syncs the folder
                    // first thing in the pass this rotation requests), not the writer.
                    st.last_copy = Some((day, *seq));
                }
                let io = self.quiesce(st); // what failed counts against the old file
                st.checked = Checked { len: 0, events: placed_events(st, io.as_deref()) };
                drop(io);
                st.file = Some(file);
                st.disk = 0;
                // Never before the file it follows: a time read before another thread's
                // rotation, or a clock stepped back, would name the next copy by an
                // earlier day than this one's (copies out of order).
                let started = now.max(st.started);
                st.started = started;
                st.day = self.zone.day(started);
                st.due_at =
                    if self.time_trigger() { self.zone.next_midnight(started) } else { i64::MAX };
                st.retry_at = i64::MIN;
                st.detached = false;
                st.stats.rotations += 1;
                // Published last: a writer that sees the new generation sees all of this.
                self.shared.set_size(0, &held);
                self.shared.set_started(started, &held);
                self.shared.set_last_copy(st.last_copy, &held);
                st.generation = self.shared.bump(&held);
                drop(held);
                self.update_hints(st);
                self.signal.request_maintenance();
            }
            Err(e) => {
                let mut why = format!("opening a new {}: {e}", self.path.display());
                if let Some((dest, seq)) = copy {
                    // Put the file back under its active name; if even that fails, keep
                    // writing through the open handle (into the copy) so nothing is lost.
                    if let Err(back) = fs::rename(&dest, &self.path) {
                        why.push_str(&format!(
                            "; moving it back failed too ({back}), writing on into {}",
                            dest.display()
                        ));
                        st.detached = true;
                        st.last_copy = Some((day, seq));
                        self.shared.set_last_copy(st.last_copy, &held);
                    }
                }
                self.rotation_failed(st, now, why);
            }
        }
    }

    pub(super) fn rotation_failed(&self, st: &mut State, now: i64, why: String) {
        st.stats.rotation_errors += 1;
        st.stats.last_error = Some(why);
        st.retry_at = now.saturating_add(duration_to_nanos(RETRY_AFTER));
        self.update_hints(st);
    }
}
