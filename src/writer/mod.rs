//! The rotating file: the hot path.
//!
//! One [`RollingFile`] owns one active log file. Every write takes the state lock (in
//! staged mode only those that leave the thread's stage), makes the rotation check (an
//! integer compare or two against numbers kept in memory: no syscall, no allocation), and
//! writes (direct mode) or copies into a buffer (buffered mode). When a log is due and both gates pass, the writing thread renames the active
//! file into `backups/` and opens a new one; everything slower (overflow into `archive/`,
//! gzip, pruning, timed flushes, error reports) happens on a background thread.
//!
//! ```
//! use mhm_log::{ManualClock, RollingFile, Settings};
//! use chrono::{TimeZone, Utc};
//! use std::io::Write;
//!
//! let dir = tempfile::tempdir()?;
//! let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
//! let mut app = RollingFile::builder()
//!     .settings(Settings::default().max_bytes(1 << 20))
//!     .clock(clock.clone())
//!     .build(dir.path().join("app.log"))?;
//! writeln!(app, "hello")?;
//! assert_eq!(std::fs::read_to_string(dir.path().join("app.log"))?, "hello\n");
//! assert_eq!(app.stats().events_written, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Several processes
//!
//! Any number of writers, in any number of processes (Rust, or Python through the
//! `mhm_log` package), may write one log at once, in any write mode. Each event (each
//! buffer flush, in the buffered modes) is one `write(2)` on a file opened for appending,
//! which the OS places at the end in one piece: events are never interleaved inside a
//! line, and each process's own are in its order. Beside the log, `.<name>.shm` is a small
//! shared mapping with the active file's *generation*, its size counted over every
//! writer (each adds its bytes after each write, so the size trigger counts them all),
//! its start, and the last copy's name.
//!
//! A due log rotates once: the writer that finds it due takes the rotation lock
//! (`.<name>.lock`, an OS lock the OS releases when its holder dies; a writer that finds
//! it held writes on and tries again 0.1 ms later), checks again that no other writer
//! rotated meanwhile, renames the file into `backups/`, starts the new one, resets the
//! shared size and start, and bumps the generation. Every event checks the generation
//! (one atomic load) and a writer that sees it moved reopens the path; what it wrote in
//! between went into the renamed copy, once. A writer killed mid-rotation leaves the path
//! missing or the generation unbumped: the next rotation, or a writer's check once a
//! second, finds the file gone from its path and starts a new one under the lock.
//! Maintenance runs in one process at a time (`.<name>.maintain.lock`, tried, skipped
//! when held, tried again a second later).
//!
//! In one process, [`Builder::build`] on a path already open returns a handle on the live
//! writer (its settings and clock stay).
//!
//! ## Someone else deletes or moves the active file
//!
//! At each rotation, and on the background thread once a second (never per event), the
//! open file is compared with the file at its path (`(dev, ino)` on unix; elsewhere only
//! "is the path missing"). If it was deleted, a new active file is started at the path,
//! continuing the deleted one (same day and age), and what was written since the file was
//! last seen in place (at most about a second, or up to the rotation) is copied into it:
//! nothing is lost, and if that copy fails the events are counted in `lost_events`. If it
//! was moved, what was written into it stays there, and a new file is started now. Either
//! way [`Stats::reopens`] counts it. A folder that cannot be made again is a counted
//! `rotation_error`, tried again at the next check.
//!
//! ## Shutdown
//!
//! Dropping the last handle writes out every buffered event, then waits while the
//! background thread finishes the maintenance already due (the moves, compression and
//! pruning the rotations of this run asked for, or a failed pass's retry) for at most
//! 5 seconds per log: no step starts after that, the step under way (one move, or one
//! gzip written to a temporary file, verified, renamed) ends, and what is left is done by
//! the next start's first pass. Nothing is ever left half done. Dropping a
//! [`LogFilesGuard`](crate::LogFilesGuard) does the same for every file of the layer
//! (5 seconds in all) while the layer itself may live on.
//!
//! ## The files
//!
//! `builder.rs` the [`Builder`] and the process's registry of writers; `merge.rs` the
//! rule for several handles on one path with different settings; `open.rs` opening
//! and resuming the active file, following another writer's rotation; `shared.rs` what
//! the writers of one log share (the mapping, the rotation lock); `mode.rs` the write
//! modes (direct, buffered, staged) and their buffers; `rotate.rs` the rotation check, the
//! rotation and its failures; `sync.rs` the locks (std's, without poisoning);
//! `worker.rs` the background thread.
//!
//! ## Lock order
//!
//! A thread that holds several of these locks took them in this order, skipping any;
//! it never takes one while holding one further down the list:
//!
//! 1. `Inner::state`: the active file, its size, age and deadlines, and the shared
//!    buffer. Every event of the direct and buffered modes takes it; staged mode takes it
//!    once per full stage, and for the rotation check when the log may be due.
//! 2. `Staged::stages`: the list of every thread's stage (staged mode). (A thread's stage
//!    table, a thread-local `RefCell` and not a lock, stays borrowed while that thread
//!    takes `stages`, on its first event to a file.) A `Stage` itself is not a lock: its
//!    thread fills it without one, and drains, always under `state`, take what it has
//!    published (see `mode::Stage`).
//! 3. `Buffer::io`: the spare buffer and the right to write a full one (buffered and
//!    staged modes). Taken under `state` when a full buffer is swapped out, so flushes
//!    reach the file in the order they were filled; kept after `state` is released for
//!    the write itself (a `Flush`), so other threads keep copying.
//! 4. `Signal::state`: the background thread's flags and counters. Taken under `state`
//!    when a rotation asks for maintenance, and alone elsewhere.
//!
//! Outside the order: the process-wide lock that serialises maintenance passes
//! (`Maintainer::run`) is taken with none of the above held and only the log's
//! maintenance OS lock and `Signal::state` are taken under it; `Inner::worker` is taken
//! alone, once at start and once at shutdown. The rotation OS lock is taken (tried,
//! never waited for) under `Inner::state`, and waited for only at start-up, with none
//! of these held; the builder's registry lock is taken alone, by `build`. `Inner::merged`
//! (the settings in force, `merge.rs`) is taken by `build` alone; under it, `state` and
//! the maintainer's policy lock (a leaf, also taken alone by a maintenance pass).

use std::{
    fs::File,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc,
    },
    thread::{self, JoinHandle},
    time::Instant,
};

use chrono::NaiveDate;
use sync::Mutex;
use tracing_core::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::{
    clock::{Clock, Zone},
    error::InitError,
};

mod builder;
mod merge;
mod mode;
mod open;
mod rotate;
mod shared;
mod stage;
mod sync;
mod worker;

pub use builder::Builder;
pub(crate) use worker::SHUTDOWN_BUDGET;

use mode::Mode;
use worker::{Maintainer, Signal};

/// What a writer has done since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events (write calls) that reached the file or its buffer.
    pub events_written: u64,
    /// Bytes of those events.
    pub bytes_written: u64,
    /// Rotations done.
    pub rotations: u64,
    /// Rotations that failed (rename refused, new file could not be opened); retried later.
    pub rotation_errors: u64,
    /// Writes to the file that failed (full disk, I/O error).
    pub write_errors: u64,
    /// Events that could not be written because of those failures.
    pub lost_events: u64,
    /// Copies moved (or compressed) into `archive/` by the background thread.
    pub copies_archived: u64,
    /// Copies deleted by pruning.
    pub copies_deleted: u64,
    /// Background maintenance steps that failed; retried a minute later.
    pub maintenance_errors: u64,
    /// Times the active file was found deleted or moved away by someone else, and a new
    /// one started at its path (at a rotation, or at the background thread's check once
    /// a second).
    pub reopens: u64,
    /// Rotations by another writer of the same log (another process) that this one
    /// followed to the new active file.
    pub followed: u64,
    /// Handles built on this path with settings that disagreed with the ones in force
    /// (each disagreement is also reported once on stderr, or returned by
    /// [`Builder::build_with_notes`]): see [`Builder::build`] for the rule.
    pub settings_merged: u64,
    /// The last failure, as text.
    pub last_error: Option<String>,
}

/// A rotating log file: a `MakeWriter` for `tracing_subscriber::fmt`, and an `io::Write`.
///
/// Clones share one file. Dropping the last one writes out every buffered event and
/// finishes the maintenance already due, waiting at most 5 seconds for it. See
/// [`Settings`](crate::Settings) and [`WriteMode`](crate::WriteMode) for the rules.
#[derive(Clone, Debug)]
pub struct RollingFile {
    /// What every event uses.
    inner: Arc<Inner>,
    /// Shuts the log down when the last handle drops. Apart from `inner` because the
    /// background thread holds `inner` now and then: the last `Inner` can drop there,
    /// which cannot wait for itself; the last `Owner` always drops on a caller's thread.
    _owner: Arc<Owner>,
}

/// See [`RollingFile::_owner`].
#[derive(Debug)]
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.shut_down();
    }
}

impl RollingFile {
    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A rotating file with the default settings and the system clock.
    pub fn new(path: impl AsRef<Path>) -> Result<Self, InitError> {
        Builder::new().build(path)
    }

    /// Writes buffered events to the file now (a no-op in direct mode).
    pub fn flush(&self) -> io::Result<()> {
        self.inner.flush_outside_lock()
    }

    /// Flushes, then asks the OS to put the file on disk (`fsync`): for the moments when
    /// power loss must not lose what was written.
    pub fn sync_all(&self) -> io::Result<()> {
        let mut st = self.inner.state.lock();
        self.inner.drain_all(&mut st)?;
        self.inner.flush_buf(&mut st)?;
        match &st.file {
            Some(f) => f.sync_all(),
            None => Ok(()),
        }
    }

    /// Counters: rotations, bytes and events written, failures.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The active file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The folder rotated copies go to.
    pub fn backup_dir(&self) -> &Path {
        &self.inner.backup_dir
    }

    /// The folder archived copies go to.
    pub fn archive_dir(&self) -> &Path {
        &self.inner.archive_dir
    }

    /// Whether the log is due (its size limit or a midnight reached) and both gates pass
    /// now, so that the next event rotates it: what a `logging` handler's
    /// `shouldRollover` asks.
    pub fn rotation_due(&self) -> bool {
        let mut st = self.inner.state.lock();
        self.inner.follow_if_rotated(&mut st);
        self.inner.due_now(&mut st, None, 0).is_some()
    }

    /// Rotates the log now, whether or not a trigger says so, when both gates pass (a
    /// file under `min_rotate_bytes` or younger than `min_rotate_age` is kept, as every
    /// rotation keeps it) and rotation is not disabled: what a `logging` handler's
    /// `doRollover` asks. Names, retention and the other processes are as for any
    /// rotation. Returns whether it rotated.
    pub fn rotate_now(&self) -> bool {
        let mut st = self.inner.state.lock();
        let before = st.stats.rotations;
        self.inner.rotate_forced(&mut st);
        st.stats.rotations > before
    }

    /// Runs the background maintenance (overflow, compression, pruning) now, on this
    /// thread, and waits for it: for an application's shutdown path or its own tests
    /// (with a [`ManualClock`](crate::ManualClock)), when the copies must be in place
    /// before it goes on. The sidecar's `demo` uses it so.
    pub fn maintain_now(&self) {
        let _ = self.inner.maintainer.run(&self.inner.signal, None);
    }

    /// Finishes the maintenance already due (the guard's drop, while the layer may live
    /// on): waits for a pass under way and runs the one asked for, starting no step after
    /// `deadline`. Returns whether all was done.
    pub(crate) fn finish_maintenance(&self, deadline: Instant) -> bool {
        self.inner.signal.finish_due(&self.inner.maintainer, Some(deadline))
    }

    /// Writes one event. `now` is the time the caller already read, if any; `urgent`
    /// flushes a buffered writer at once (ERROR events).
    #[inline]
    pub(crate) fn write_event(
        &self,
        now: Option<i64>,
        data: &[u8],
        urgent: bool,
    ) -> io::Result<()> {
        self.inner.write_event(now, data, urgent)
    }
}

// === impl Inner ===

/// One log: what every handle on it shares.
#[derive(Debug)]
struct Inner {
    path: PathBuf,
    log_name: String,
    backup_dir: PathBuf,
    archive_dir: PathBuf,
    zone: Zone,
    clock: Clock,
    /// Rotation is on (not `DISABLE_LOG_ROTATION`).
    rotate: bool,
    /// Rotation at midnight is on (not `RotateAt::Never`). Atomic, as `max_bytes`: a
    /// later handle on the path may ask for more (see `merge`).
    time_trigger: AtomicBool,
    max_bytes: AtomicU64,
    min_bytes: u64,
    min_age: i64,
    /// Direct, buffered or staged, with what that mode alone needs.
    mode: Mode,
    state: Padded<Mutex<State>>,
    signal: Arc<Signal>,
    maintainer: Arc<Maintainer>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// What the writers of this log, in every process, share.
    shared: shared::Shared,
    /// The settings in force (the first handle's, merged with later ones': `merge.rs`),
    /// and the disagreements already reported.
    merged: Mutex<merge::Merged>,
}

/// What changes as events are written.
#[derive(Debug)]
struct State {
    /// The open file; `None` only when opening a new one failed (retried on each write).
    /// Shared so a buffered flush can write to it outside the lock.
    file: Option<Arc<File>>,
    /// Bytes in the file (not counting `buf`).
    disk: u64,
    /// Bytes waiting in memory (buffered and staged modes; always empty in direct mode);
    /// capacity reserved once.
    buf: Vec<u8>,
    buf_events: u64,
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
    /// The open file was renamed into `backups/` but no new active file could be opened.
    detached: bool,
    /// The last copy this writer made (its day and number), so the next copy of the same
    /// day gets the next number without scanning a folder.
    last_copy: Option<(NaiveDate, u32)>,
    /// The active file as last seen at its path.
    checked: Checked,
    /// The shared generation of the open file: when the shared one moves on, another
    /// writer has rotated (or started a new active file) and this one follows.
    generation: u64,
    stats: Stats,
}

/// The active file as last seen at its path: what was in it then was not lost to someone
/// deleting it later.
#[derive(Clone, Copy, Debug)]
struct Checked {
    /// Its length.
    len: u64,
    /// Events this writer had placed in its files by then (see `open::placed_events`).
    events: u64,
}

/// Keeps a lock that every event writes on cache lines of its own, away from the
/// read-mostly fields beside it (two lines: adjacent-line prefetch pairs them).
#[derive(Debug)]
#[repr(align(128))]
struct Padded<T>(T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Padded<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl Inner {
    /// The size limit in force (a later handle may lower it: `merge.rs`).
    #[inline]
    fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Relaxed)
    }

    /// Whether midnight rotates the log (a later handle may turn it on: `merge.rs`).
    #[inline]
    fn time_trigger(&self) -> bool {
        self.time_trigger.load(Relaxed)
    }

    fn stats(&self) -> Stats {
        let mut stats = self.state.lock().stats.clone();
        if let Some(buffer) = self.mode.buffer() {
            let io = buffer.io.lock();
            stats.write_errors += io.write_errors;
            stats.lost_events += io.lost_events;
            stats.events_written = stats.events_written.saturating_sub(io.lost_events);
            stats.bytes_written = stats.bytes_written.saturating_sub(io.lost_bytes);
            stats.last_error = stats.last_error.or_else(|| io.last_error.clone());
        }
        let worker = self.signal.state.lock();
        stats.copies_archived = worker.copies_archived;
        stats.copies_deleted = worker.copies_deleted;
        stats.maintenance_errors = worker.maintenance_errors;
        if stats.last_error.is_none() {
            stats.last_error.clone_from(&worker.last_error);
        }
        stats
    }
}

impl Inner {
    /// At the last handle's drop: every buffered event to the file (a new one if someone
    /// deleted it), then the background thread finishes the maintenance due within
    /// `SHUTDOWN_BUDGET` and ends.
    fn shut_down(&self) {
        let mut st = self.state.lock();
        let _ = self.drain_all(&mut st);
        let _ = self.flush_buf(&mut st);
        let _ = self.check_active(&mut st, self.clock.now_nanos(), None);
        drop(st);
        self.signal.stop();
        if let Some(handle) = self.worker.lock().take() {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.write_handed_off();
        let st = self.state.get_mut();
        self.mode.take_stages(&mut st.buf);
        if !st.buf.is_empty() {
            if let Some(file) = &st.file {
                let _ = self.shared.append(file, &st.buf);
            }
        }
        self.signal.stop();
        if let Some(handle) = self.worker.get_mut().take() {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

// === MakeWriter ===

/// The writer `tracing_subscriber::fmt` gets for one event: its one `write_all` is one
/// event. Failures are counted in [`Stats`], never returned, so the subscriber does
/// not print a complaint per event.
#[derive(Debug)]
pub struct EventWriter<'a> {
    file: &'a RollingFile,
    urgent: bool,
}

impl Write for EventWriter<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let _ = self.file.write_event(None, buf, self.urgent);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for RollingFile {
    type Writer = EventWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        EventWriter { file: self, urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        EventWriter { file: self, urgent: *meta.level() == Level::ERROR }
    }
}

/// Each `write` is one event (one line, or whatever the caller writes at once). Errors
/// are returned here, and counted.
impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        RollingFile::flush(self)
    }
}

impl Write for &RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_event(None, buf, false).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        RollingFile::flush(self)
    }
}
