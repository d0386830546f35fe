//! The rotation trigger: when the log is due (its size limit, or a midnight) and whether
//! both gates pass (`min_rotate_bytes`, `min_rotate_age`), the check every event makes.
//!
//! [`Trigger`] is the settings of the check and the clock, read by every thread (two of
//! them atomic: a later handle on the path may ask for more, `merge.rs`), and the
//! [`Hints`] staged mode checks without the lock. [`Rotation`] is what changes, under the
//! state lock: when the active file was started, its day, when it is due, when a failed
//! rotation may be tried again, and the last copy made. The size is the shared mapping's
//! (`shared.rs`), counted over every writer of the log.

use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU64,
    Ordering::{self, Relaxed},
};

use chrono::NaiveDate;

use super::{shared::Shared, stats::Stats, sync::Padded};
use crate::clock::{duration_to_nanos, Clock, Zone};
use crate::policy::{RotateAt, Settings};

/// What decides that the log is due, read by every thread.
#[derive(Debug)]
pub(super) struct Trigger {
    /// Rotation is on (not `DISABLE_LOG_ROTATION`).
    rotate: bool,
    /// Rotation at midnight is on (not `RotateAt::Never`). Atomic, as `max_bytes`: a
    /// later handle on the path may ask for more (see `merge`).
    time_trigger: AtomicBool,
    max_bytes: AtomicU64,
    min_bytes: u64,
    min_age: i64,
    zone: Zone,
    clock: Clock,
    /// Staged mode: the [`Hints`] are kept up to date (other modes never read them).
    staged: bool,
    /// What the lock-free fast path of staged mode needs to know whether the log may be
    /// due, copied from [`Rotation`] (and the buffer's length) whenever it changes there.
    hints: Padded<Hints>,
}

/// Read-mostly copies of [`Rotation`] fields for the staged fast path.
#[derive(Debug, Default)]
struct Hints {
    /// The shared buffer's length as of the last time it changed under the lock (the bytes
    /// in the file are the shared count).
    buffered: AtomicU64,
    /// `Rotation::due_at`.
    due_at: AtomicI64,
    /// `Rotation::started + min_age`: before it, the log cannot rotate.
    gate_at: AtomicI64,
    /// `Rotation::retry_at`.
    retry_at: AtomicI64,
}

/// Where the active file is in its rotation; changes under the state lock.
#[derive(Debug)]
pub(super) struct Rotation {
    /// When the active file was started, and the day that names its copy.
    started: i64,
    day: NaiveDate,
    /// After the clock stepped back: `(started, t)`, the age gate counts from `t` (when
    /// the step was seen) for the file started at `started`; any other start ends it.
    /// Never changes `started` itself, which other writers and the copy's name read.
    stepped_back: Option<(i64, i64)>,
    /// The next midnight after `started` (`i64::MAX` without a time trigger).
    due_at: i64,
    /// After a failed rotation: no new try before this.
    retry_at: i64,
    /// The last copy this writer made (its day and number), so the next copy of the same
    /// day gets the next number without scanning a folder.
    last_copy: Option<(NaiveDate, u32)>,
}

impl Trigger {
    pub(super) fn new(settings: &Settings, clock: Clock, staged: bool) -> Self {
        Self {
            rotate: !settings.get_rotation_disabled(),
            time_trigger: AtomicBool::new(settings.get_rotate_at() != RotateAt::Never),
            max_bytes: AtomicU64::new(settings.get_max_bytes()),
            // An empty file never rotates, whatever the gate says.
            min_bytes: settings.get_min_rotate_bytes().max(1),
            min_age: duration_to_nanos(settings.get_min_rotate_age()),
            zone: settings.zone(),
            clock,
            staged,
            hints: Padded(Hints::default()),
        }
    }

    /// The size limit in force (a later handle may lower it: `merge.rs`).
    #[inline]
    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Relaxed)
    }

    /// Whether midnight rotates the log (a later handle may turn it on: `merge.rs`).
    #[inline]
    pub(super) fn time_trigger(&self) -> bool {
        self.time_trigger.load(Relaxed)
    }

    /// A later handle's smaller size limit (`merge.rs`).
    pub(super) fn set_max_bytes(&self, n: u64) {
        self.max_bytes.store(n, Relaxed);
    }

    /// A later handle asked for a time trigger (`merge.rs`); [`Rotation::refresh_due`]
    /// then gives the active file its midnight.
    pub(super) fn turn_on_time_trigger(&self) {
        self.time_trigger.store(true, Relaxed);
    }

    /// Whether rotation is on at all.
    pub(super) fn rotates(&self) -> bool {
        self.rotate
    }

    /// The smallest file that rotates.
    pub(super) fn min_bytes(&self) -> u64 {
        self.min_bytes
    }

    /// The youngest file that rotates.
    pub(super) fn min_age(&self) -> i64 {
        self.min_age
    }

    pub(super) fn zone(&self) -> Zone {
        self.zone
    }

    /// The clock's time now (nanoseconds since the epoch).
    #[inline]
    pub(super) fn now(&self) -> i64 {
        self.clock.now_nanos()
    }

    /// When a file started at `started` is due by time.
    fn next_due(&self, started: i64) -> i64 {
        if self.time_trigger() {
            self.zone.next_midnight(started)
        } else {
            i64::MAX
        }
    }

    /// The time, if the log is due for an event of `len` bytes and both gates pass. The
    /// size counts every writer's bytes (the shared count) and this one's buffer
    /// (`buffered` bytes).
    #[inline]
    pub(super) fn due_now(
        &self,
        rot: &mut Rotation,
        shared: &Shared,
        buffered: usize,
        now: Option<i64>,
        len: usize,
    ) -> Option<i64> {
        if !self.rotate {
            return None;
        }
        // Saturating: the shared size is another process's word (or a damaged file's).
        let size = shared.size().saturating_add(buffered as u64);
        let mut clock_now = now;
        let due = size.saturating_add(len as u64) > self.max_bytes()
            || (self.time_trigger()
                && *clock_now.get_or_insert_with(|| self.clock.now_nanos()) >= rot.due_at);
        if due {
            let now = clock_now.unwrap_or_else(|| self.clock.now_nanos());
            if now >= rot.retry_at
                && size >= self.min_bytes
                && self.age(rot, now, buffered) >= self.min_age
            {
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
    pub(super) fn age(&self, rot: &mut Rotation, now: i64, buffered: usize) -> i64 {
        let from = rot.gate_from();
        if now < from {
            // Gated this time whatever `min_age` is: a rotation at a time before the
            // file's start would name the next copy by an earlier day than this one's.
            rot.stepped_back = Some((rot.started, now));
            self.publish(rot, buffered);
            return -1;
        }
        now.saturating_sub(from)
    }

    /// The same check without the lock, against the [`Hints`] staged mode keeps, for an
    /// event of `len` bytes: the time to take the lock and check again if the log may be
    /// due and ungated, else `None`.
    #[inline]
    pub(super) fn may_rotate(&self, shared: &Shared, now: Option<i64>, len: usize) -> Option<i64> {
        if !self.rotate {
            return None;
        }
        let hints = &self.hints;
        let size = shared.size().saturating_add(hints.buffered.load(Relaxed));
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

    /// Copies what the staged fast path reads out of `rot` (and the shared buffer's
    /// length, `buffered`) into the [`Hints`]; nothing in the other modes.
    pub(super) fn publish(&self, rot: &Rotation, buffered: usize) {
        if !self.staged {
            return;
        }
        let hints = &self.hints;
        let order = Ordering::Relaxed;
        hints.buffered.store(buffered as u64, order);
        hints.due_at.store(rot.due_at, order);
        hints.gate_at.store(rot.gate_from().saturating_add(self.min_age), order);
        hints.retry_at.store(rot.retry_at, order);
    }

    /// A rotation (or a new active file) failed: counted, and not tried again before
    /// `after` from `now`.
    pub(super) fn failed(
        &self,
        rot: &mut Rotation,
        stats: &mut Stats,
        now: i64,
        after: std::time::Duration,
        why: String,
        buffered: usize,
    ) {
        stats.rotation_errors += 1;
        stats.last_error = Some(why);
        self.wait(rot, now, after, buffered);
    }

    /// No rotation is tried before `after` from `now` (nothing failed: the lock was busy,
    /// or a gate held on a full disk).
    pub(super) fn wait(
        &self,
        rot: &mut Rotation,
        now: i64,
        after: std::time::Duration,
        buffered: usize,
    ) {
        rot.retry_at = now.saturating_add(duration_to_nanos(after));
        self.publish(rot, buffered);
    }
}

impl Rotation {
    /// The rotation of a file started at `started`, whose day's last copy is `last_copy`.
    pub(super) fn new(
        trigger: &Trigger,
        started: i64,
        last_copy: Option<(NaiveDate, u32)>,
    ) -> Self {
        Self {
            started,
            stepped_back: None,
            day: trigger.zone.day(started),
            due_at: trigger.next_due(started),
            retry_at: i64::MIN,
            last_copy,
        }
    }

    /// The active file's start.
    pub(super) fn started(&self) -> i64 {
        self.started
    }

    /// The day that names the active file's copy.
    pub(super) fn day(&self) -> NaiveDate {
        self.day
    }

    /// When the active file is due by time (`i64::MAX` without a time trigger).
    pub(super) fn due_at(&self) -> i64 {
        self.due_at
    }

    /// The last copy this writer knows of.
    pub(super) fn last_copy(&self) -> Option<(NaiveDate, u32)> {
        self.last_copy
    }

    pub(super) fn set_last_copy(&mut self, copy: Option<(NaiveDate, u32)>) {
        self.last_copy = copy;
    }

    /// A new active file, started at `started` (its day and deadline follow).
    pub(super) fn restart(&mut self, trigger: &Trigger, started: i64) {
        self.started = started;
        self.day = trigger.zone.day(started);
        self.due_at = trigger.next_due(started);
    }

    /// After the time trigger was turned on (`merge.rs`): the active file's midnight.
    pub(super) fn refresh_due(&mut self, trigger: &Trigger) {
        self.due_at = trigger.zone.next_midnight(self.started);
    }

    /// A rotation may be tried at once.
    pub(super) fn clear_retry(&mut self) {
        self.retry_at = i64::MIN;
    }

    /// When the age gate of the active file starts counting: its start, unless the clock
    /// stepped back since ([`Trigger::age`]).
    fn gate_from(&self) -> i64 {
        match self.stepped_back {
            Some((started, from)) if started == self.started => from,
            _ => self.started,
        }
    }
}
