//! The rotating file: the hot path.
//!
//! One [`RollingFile`] owns one active log file. In direct and buffered mode every write
//! takes the state lock, makes the rotation check (an integer compare or two against
//! numbers kept in memory: no syscall, no allocation), and writes (direct mode) or copies
//! into a buffer (buffered mode). In staged mode a write takes no lock: it goes into its
//! thread's stage after the same check made on copies of those numbers, and takes the
//! state lock only when the stage is full, the log may be due, or the event is urgent.
//! When a log is due and both gates pass, the writing thread renames the active file into
//! `backups/` and opens a new one; everything slower (overflow into `archive/`, gzip,
//! pruning, timed flushes, error reports) happens on a background thread.
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
//! Each file owns the state it changes, and calls only the files below it (none calls
//! one above it; no two import each other):
//!
//! ```text
//! registry.rs Builder::build: the process's registry of writers (one per path), which
//!             opens a log through Inner or hands out the live one on its path
//! mod.rs      RollingFile, and Inner, which holds every part; an event's path
//! builder.rs  Builder: the options it holds (settings, clock)
//! merge.rs    the settings in force, and the rule for a later handle's   (-> trigger)
//!   |
//! rotate.rs   the rotation and the check of the active file: sequences over the parts
//!   |         below, owning no state (a Rotator is the parts it is lent)
//! mode.rs     the write modes: the shared buffer and its spare, the list of stages,
//!   |  \      and State (what the state lock guards); all that needs no flush in flight
//!   |   stage.rs   one thread's stage: a lock-free ring of bytes
//! open.rs     the open file and its identity: open, resume, write, follow, start again
//!   |
//! trigger.rs  the rotation trigger: its settings, the file's start and deadlines, the
//!   |         check every event makes, and the hints staged mode checks without a lock
//! shared.rs   what the writers of one log share: the mapping, the rotation lock, the append
//! worker.rs   the background thread: it sees its log through a trait (worker::Log)
//! stats.rs    the counters every part adds to
//! sync.rs     the locks (std's, without poisoning), padding to a cache line
//! ```
//!
//! An event's path goes down this list, entering each part once and never coming back up
//! into a file it has left:
//!
//! ```text
//! direct, buffered:  mod.rs      write_event: the state lock (sync.rs); a rotation by
//!                                another writer? (the mapping's generation)
//!                    trigger.rs  due_now: due? (the mapping's size, the clock)
//!                    mode.rs     Buffer::try_copy: the event is in memory (buffered;
//!                                a full buffer is swapped out and written after the lock)
//!                    open.rs     ActiveFile::write (direct)
//!                    shared.rs   Shared::append: one write(2), its bytes added to the size
//! staged:            mod.rs      write_event
//!                    mode.rs     Staged::stage: this thread's stage
//!                    trigger.rs  may_rotate: maybe due? (the mapping's size, the clock)
//!                    stage.rs    Stage::push: one store publishes the event
//! ```
//!
//! The mapping's words are atomics read in one load each; the append is the one call into
//! `shared.rs` that does more. A rotation (cold) goes `mod.rs -> rotate.rs -> mode.rs
//! (drain, flush) -> open.rs -> trigger.rs -> shared.rs`; the background thread goes
//! `worker.rs -> mod.rs` (through `worker::Log`) and on down the same way.
//!
//! ## Lock order
//!
//! A thread that holds several of these locks took them in this order, skipping any;
//! it never takes one while holding one further down the list:
//!
//! 1. `Inner::state` ([`mode::State`]): the active file, its size, age and deadlines, and
//!    the shared buffer. Every event of the direct and buffered modes takes it; staged mode takes it
//!    once per full stage, and for the rotation check when the log may be due.
//! 2. `Staged::stages`: the list of every thread's stage (staged mode). (A thread's stage
//!    table, a thread-local `RefCell` and not a lock, stays borrowed while that thread
//!    takes `stages`, on its first event to a file.) A `Stage` itself is not a lock: its
//!    thread fills it without one, and drains, always under `state`, take what it has
//!    published (see `stage::Stage`).
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
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Arc,
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use tracing_core::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::{clock::Clock, error::InitError, policy::Settings};

mod builder;
mod merge;
mod mode;
mod open;
mod registry;
mod rotate;
mod shared;
mod stage;
mod stats;
mod sync;
mod trigger;
mod worker;

pub use builder::Builder;
pub use stats::Stats;
pub(crate) use worker::SHUTDOWN_BUDGET;

use merge::Merged;
use mode::{Copied, Mode, Sink, Staging, State};
use open::ActiveFile;
use rotate::Rotator;
use shared::{later, Shared};
use sync::{Mutex, Padded};
use trigger::{Rotation, Trigger};
use worker::{Maintainer, Signal};

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
    /// Writes buffered events to the file now (a no-op in direct mode).
    pub fn flush(&self) -> io::Result<()> {
        self.inner.flush_outside_lock()
    }

    /// Flushes, then asks the OS to put the file on disk (`fsync`): for the moments when
    /// power loss must not lose what was written.
    pub fn sync_all(&self) -> io::Result<()> {
        let inner = &*self.inner;
        let sink = inner.sink();
        let mut st = inner.state.lock();
        inner.mode.drain_all(&sink, &mut st)?;
        inner.mode.flush_buf(&sink, &mut st)?;
        match st.file.file() {
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
        let inner = &*self.inner;
        let mut guard = inner.state.lock();
        let st = &mut *guard;
        inner.follow_if_rotated(st);
        inner.trigger.due_now(&mut st.rotation, &inner.shared, st.buf.len(), None, 0).is_some()
    }

    /// Rotates the log now, whether or not a trigger says so, when both gates pass (a
    /// file under `min_rotate_bytes` or younger than `min_rotate_age` is kept, as every
    /// rotation keeps it) and rotation is not disabled: what a `logging` handler's
    /// `doRollover` asks. Names, retention and the other processes are as for any
    /// rotation. Returns whether it rotated.
    pub fn rotate_now(&self) -> bool {
        let mut st = self.inner.state.lock();
        let before = st.stats.rotations;
        self.inner.rotator().rotate_forced(&mut st);
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

/// One log: what every handle on it shares. It holds every part and lends them to one
/// another along an event's path (see the module's doc for the order).
#[derive(Debug)]
struct Inner {
    path: PathBuf,
    log_name: String,
    backup_dir: PathBuf,
    archive_dir: PathBuf,
    /// The rotation trigger's settings, clock and hints (`trigger.rs`).
    trigger: Trigger,
    /// Direct, buffered or staged, with what that mode alone needs (`mode.rs`).
    mode: Mode,
    state: Padded<Mutex<State>>,
    signal: Arc<Signal>,
    maintainer: Arc<Maintainer>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// What the writers of this log, in every process, share.
    shared: Shared,
    /// The settings in force (the first handle's, merged with later ones': `merge.rs`),
    /// and the disagreements already reported.
    merged: Mutex<Merged>,
}

impl Inner {
    fn open(path: &Path, settings: Settings, clock: Clock) -> Result<Arc<Self>, InitError> {
        let log_name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) => n.to_string(),
            None => return Err(InitError::msg("the log path has no valid UTF-8 file name", path)),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .map_err(|e| InitError::io("cannot create the log folder", &dir, e))?;
        let path = dir.join(&log_name);
        let shared = Shared::open(&dir, &log_name, settings.get_lock_wait()).map_err(|e| {
            InitError::io(
                "cannot open the log's shared state",
                dir.join(format!(".{log_name}.shm")),
                e,
            )
        })?;
        let maintenance_lock = dir.join(format!(".{log_name}.maintain.lock"));
        let maintenance_lock = shared::open_rw(&maintenance_lock)
            .map_err(|e| InitError::io("cannot open the log's lock file", maintenance_lock, e))?;
        let backup_dir = settings.backup_dir_for(&path);
        let archive_dir = settings.archive_dir_for(&path);
        let zone = settings.zone();
        let now = clock.now_nanos();

        // Under the rotation lock: no other writer rotates while this one finds its place.
        let held = shared.lock().map_err(|e| {
            InitError::io("cannot lock the log", dir.join(format!(".{log_name}.lock")), e)
        })?;
        let (file, disk, mut started) = open::open_active(&path, now)
            .map_err(|e| InitError::io("cannot open the log for appending", &path, e))?;
        let initialized = shared.initialized(&held);
        if !initialized {
            shared.reset(&held);
        }
        if initialized && disk > 0 {
            // Another writer (alive or not) started this file: its start is the one kept.
            started = shared.started().min(now);
        } else {
            shared.set_started(started, &held);
        }
        shared.size_at_least(disk, &held);
        let day = zone.day(started);
        let last_copy = later(
            open::last_copy_of_day(&log_name, day, &backup_dir, &archive_dir, zone),
            shared.last_copy(),
        );
        shared.set_last_copy(last_copy, &held);
        shared.mark_initialized(&held);
        let generation = shared.generation();
        drop(held);
        let mode = Mode::new(settings.get_write_mode(), settings.get_buffer_capacity());
        let buf_cap = mode.buffer().map_or(0, |b| b.cap);
        let tick = if mode.buffer().is_some() {
            settings.get_flush_interval()
        } else {
            Duration::from_secs(1)
        };

        let signal = Arc::new(Signal::default());
        let merged = Mutex::new(Merged::new(settings.clone()));
        let maintainer = Arc::new(Maintainer {
            log_name: log_name.clone(),
            backup_dir: backup_dir.clone(),
            archive_dir: archive_dir.clone(),
            policy: Mutex::new(settings.retention_policy()),
            zone,
            clock: clock.clone(),
            lock: maintenance_lock,
        });
        let trigger = Trigger::new(&settings, clock, mode.is_staged());
        let rotation = Rotation::new(&trigger, started, last_copy);
        let inner = Arc::new(Inner {
            path,
            log_name,
            backup_dir,
            archive_dir,
            trigger,
            mode,
            state: Padded(Mutex::new(State {
                file: ActiveFile::new(file, disk, generation),
                rotation,
                buf: Vec::with_capacity(buf_cap),
                buf_events: 0,
                stats: Stats::default(),
            })),
            signal,
            maintainer,
            worker: Mutex::new(None),
            shared,
            merged,
        });
        let handle = worker::spawn(&inner, &inner.log_name, &inner.signal, &inner.maintainer, tick)
            .map_err(|e| InitError::io("cannot start the background thread", &inner.path, e))?;
        *inner.worker.lock() = Some(handle);
        let st = inner.state.lock();
        inner.trigger.publish(&st.rotation, st.buf.len());
        drop(st);
        Ok(inner)
    }

    /// What the modes write through.
    #[inline]
    fn sink(&self) -> Sink<'_> {
        Sink {
            path: &self.path,
            shared: &self.shared,
            trigger: &self.trigger,
            signal: &self.signal,
        }
    }

    /// The parts a rotation, or a check of the active file, works on.
    fn rotator(&self) -> Rotator<'_> {
        Rotator {
            sink: self.sink(),
            mode: &self.mode,
            log_name: &self.log_name,
            backup_dir: &self.backup_dir,
            archive_dir: &self.archive_dir,
        }
    }

    // --- an event's path ---

    #[inline]
    fn write_event(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        match &self.mode {
            Mode::Direct | Mode::Buffered(_) => self.write_locked(now, data, urgent),
            Mode::Staged(staged) => self.write_staged(staged, now, data, urgent),
        }
    }

    /// Staged mode: the event goes to this thread's stage, touching nothing another
    /// thread writes, unless the log may be due (counting what this thread staged; then
    /// everything staged goes to the file first and the exact check runs under the lock),
    /// the event is urgent, or the stage is full. A stage that reaches `stage_cap` asks the
    /// background thread to drain it, once.
    #[inline]
    fn write_staged(
        &self,
        staged: &mode::Staged,
        now: Option<i64>,
        data: &[u8],
        urgent: bool,
    ) -> io::Result<()> {
        if data.len() > staged.stage_cap() {
            let _ = self.drain_all_outside_lock();
            return self.write_locked(now, data, urgent);
        }
        if data.is_empty() {
            // Nothing to place in order; a stage counts its events when it drains bytes,
            // and would hold it unseen.
            return self.write_locked(now, data, urgent);
        }
        let len = match staged.stage(&self.trigger, &self.shared, now, data) {
            Staging::Staged(len) => len,
            Staging::Due(now) => {
                let _ = self.drain_all_outside_lock();
                return self.write_locked(Some(now), data, urgent);
            }
            Staging::Full => {
                // What this thread staged before must still come first.
                let _ = self.drain_all_outside_lock();
                return self.write_locked(now, data, urgent);
            }
        };
        if urgent {
            return self.flush_outside_lock();
        }
        staged.ask_drain(len, &self.signal);
        Ok(())
    }

    /// The check, the rotation and the write, all under the state lock (direct and
    /// buffered modes, and staged mode's slow path).
    fn write_locked(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        // The buffer is looked up here, not passed in: the arguments already fill the six
        // argument registers, and a seventh would go through the stack on every event.
        let mut guard = self.state.lock();
        let st = &mut *guard;
        self.rotate_if_due(st, now, data.len());
        let Some(buffer) = self.mode.buffer() else {
            return st.file.write(&self.path, &self.shared, &mut st.stats, [data, &[]], 1);
        };
        if buffer.try_copy(st, data) {
            drop(guard);
            if urgent {
                return self.flush_outside_lock();
            }
            return Ok(());
        }
        // A full buffer: swapped out, and written by this thread *after* the state lock is
        // released, so other threads keep copying while the write runs.
        match buffer.copy(&self.mode, &self.sink(), st, data) {
            Copied::Held(pending) => {
                drop(guard);
                if let Some(flush) = pending {
                    // Written behind; its failure is counted, and concerns earlier events.
                    flush.hand_off(&self.signal);
                }
                if urgent {
                    return self.flush_outside_lock();
                }
                Ok(())
            }
            Copied::Written(result) => result,
        }
    }

    /// The rotation check under the state lock, for an event of `len` bytes: follows
    /// another writer's rotation (one atomic load and compare), then rotates when the log
    /// is due and both gates pass (and no failed rotation asks to wait).
    #[inline]
    fn rotate_if_due(&self, st: &mut State, now: Option<i64>, len: usize) {
        self.follow_if_rotated(st);
        if let Some(now) =
            self.trigger.due_now(&mut st.rotation, &self.shared, st.buf.len(), now, len)
        {
            self.rotator().rotate(st, now, len, false);
        }
    }

    /// Follows another writer's rotation, if there was one since this one looked.
    #[inline]
    fn follow_if_rotated(&self, st: &mut State) {
        let generation = self.shared.generation();
        if generation != st.file.generation() {
            self.mode.follow(&self.sink(), st, generation);
        }
    }

    // --- flushes ---

    fn drain_all_outside_lock(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        self.mode.drain_all(&self.sink(), &mut st)
    }

    /// Writes out the buffer with the state lock released during the write (a no-op in
    /// direct mode).
    fn flush_outside_lock(&self) -> io::Result<()> {
        let sink = self.sink();
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let drained = self.mode.drain_all(&sink, st);
        let flush = self.mode.buffer().and_then(|buffer| buffer.start_flush(&self.mode, &sink, st));
        self.trigger.publish(&st.rotation, st.buf.len());
        drop(guard);
        flush.map_or(Ok(()), |f| f.finish(&sink)).and(drained)
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

    /// A later handle's settings, merged into the writer's (`merge.rs`); the notes.
    fn merge(&self, new: &Settings) -> Vec<String> {
        let mut merged = self.merged.lock();
        let merge = merged.merge(&self.path, new, &self.trigger, &self.maintainer.policy);
        let mut st = self.state.lock();
        if merge.time_trigger_on {
            st.rotation.refresh_due(&self.trigger);
            self.trigger.publish(&st.rotation, st.buf.len());
        }
        if !merge.notes.is_empty() {
            st.stats.settings_merged += 1;
        }
        merge.notes
    }

    /// At the last handle's drop: every buffered event to the file (a new one if someone
    /// deleted it), then the background thread finishes the maintenance due within
    /// `SHUTDOWN_BUDGET` and ends.
    fn shut_down(&self) {
        let sink = self.sink();
        let mut guard = self.state.lock();
        let st = &mut *guard;
        let _ = self.mode.drain_all(&sink, st);
        let _ = self.mode.flush_buf(&sink, st);
        let _ = self.rotator().check_active(st, self.trigger.now(), None);
        drop(guard);
        self.signal.stop();
        if let Some(handle) = self.worker.lock().take() {
            if handle.thread().id() != thread::current().id() {
                let _ = handle.join();
            }
        }
    }
}

/// What the background thread asks of the log.
impl worker::Log for Inner {
    fn write_handed_off(&self) {
        if self.mode.write_handed_off(&self.sink()) {
            let _ = self.drain_all_outside_lock();
        }
    }

    fn flush_timed(&self) {
        if self.mode.buffer().is_some() {
            let _ = self.flush_outside_lock();
        }
    }

    fn check_active(&self) {
        let mut st = self.state.lock();
        let _ = self.rotator().check_active(&mut st, self.trigger.now(), None);
    }

    fn failures(&self) -> (u64, u64, Option<String>) {
        let stats = self.stats();
        let failures =
            stats.write_errors + stats.rotation_errors + stats.maintenance_errors + stats.reopens;
        (failures, stats.lost_events, stats.last_error)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        worker::Log::write_handed_off(self);
        let st = self.state.get_mut();
        self.mode.take_stages(&mut st.buf);
        if !st.buf.is_empty() {
            if let Some(file) = st.file.file() {
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
