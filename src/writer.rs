//! The rotating file: the hot path.
//!
//! One [`RollingFile`] owns one active log file. Every write takes the file's lock, makes
//! the rotation check (an integer compare or two against numbers kept in memory: no
//! syscall, no allocation), and writes (direct mode) or copies into a buffer (buffered
//! mode). When a log is due and both gates pass, the writing thread renames the active
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
//! A log has one writer. `build` takes an exclusive OS lock on `.<name>.lock` beside the
//! log (released by the OS if the process dies) and writes its pid there; a second
//! process (or a second `RollingFile` for the same path) gets an [`InitError`] naming the
//! holder's pid. Coordinating writers across processes would need a lock per event on
//! the hot path, and two writers rotating one file is how logs get lost; refusing is the
//! honest choice. Give each process its own file (`LogFiles` routes by target).

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use parking_lot::{Condvar, Mutex};
use tracing_core::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::{
    clock::{duration_to_nanos, Clock, Zone},
    error::InitError,
    naming::CopyName,
    policy::{RotateAt, Settings, WriteMode},
    retention::{self, Policy},
};

/// How long a failed rotation waits before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// How often failures are reported on stderr, at most.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often a failed maintenance pass is retried.
const MAINTAIN_RETRY: Duration = Duration::from_secs(60);

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
    /// Events dropped on purpose. Always 0: no mode of this writer drops events.
    pub dropped_events: u64,
    /// Copies moved (or compressed) into `archive/` by the background thread.
    pub copies_archived: u64,
    /// Copies deleted by pruning.
    pub copies_deleted: u64,
    /// Background maintenance steps that failed; retried a minute later.
    pub maintenance_errors: u64,
    /// The last failure, as text.
    pub last_error: Option<String>,
}

/// A rotating log file: a `MakeWriter` for `tracing_subscriber::fmt`, and an `io::Write`.
///
/// Clones share one file. See the [module docs](self) for the rules.
#[derive(Clone, Debug)]
pub struct RollingFile {
    inner: Arc<Inner>,
}

/// Builds a [`RollingFile`].
///
/// | option | default |
/// |---|---|
/// | [`settings`](Self::settings) | [`Settings::default()`] |
/// | [`clock`](Self::clock) | the system clock |
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    settings: Settings,
    clock: Clock,
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// All settings at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Opens (or creates) the log at `path`, resuming an existing file and its age, and
    /// starts its background thread. Fails if another process holds the log.
    pub fn build(self, path: impl AsRef<Path>) -> Result<RollingFile, InitError> {
        Inner::open(path.as_ref(), self.settings, self.clock).map(|inner| RollingFile { inner })
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

    /// Runs the background maintenance (overflow, compression, pruning) now, on this
    /// thread, and waits for it: for tests and for shutdown paths that want it done.
    pub fn maintain_now(&self) {
        self.inner.maintainer.run(&self.inner.signal);
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

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    log_name: String,
    backup_dir: PathBuf,
    archive_dir: PathBuf,
    zone: Zone,
    clock: Clock,
    rotate: bool,
    time_trigger: bool,
    buffered: bool,
    /// Staged mode: each thread's events first go to its own [`Stage`].
    staged: bool,
    stages: Mutex<Vec<SharedStage>>,
    /// A stage is moved to the shared buffer once it holds this much (so, with the event
    /// that fills it, it never holds more than twice this, nor more than the shared
    /// buffer's capacity: neither ever reallocates).
    stage_cap: usize,
    /// This writer's id in the threads' stage tables (never reused, unlike an address).
    id: u64,
    /// Staged mode: what the lock-free fast path needs to know whether the log may be
    /// due, copied from `State` whenever it changes there.
    hints: Padded<Hints>,
    max_bytes: u64,
    min_bytes: u64,
    min_age: i64,
    buf_cap: usize,
    state: Padded<Mutex<State>>,
    /// Buffered mode: the spare buffer and the right to write a full one. Taken while
    /// holding `state` (so flushes reach the file in order), held alone for the write.
    io: Padded<Mutex<Spare>>,
    signal: Arc<Signal>,
    maintainer: Arc<Maintainer>,
    worker: Mutex<Option<JoinHandle<()>>>,
    _lock: File,
}

#[derive(Debug)]
struct State {
    /// The open file; `None` only when opening a new one failed (retried on each write).
    /// Shared so a buffered flush can write to it outside the lock.
    file: Option<Arc<File>>,
    /// Bytes in the file (not counting `buf`).
    disk: u64,
    /// Bytes waiting in memory (buffered mode); capacity reserved once.
    buf: Vec<u8>,
    buf_events: u64,
    /// When the active file was started, and the day that names its copy.
    started: i64,
    day: NaiveDate,
    /// The next midnight after `started` (`i64::MAX` without a time trigger).
    due_at: i64,
    /// After a failed rotation: no new try before this.
    retry_at: i64,
    /// The open file was renamed into `backups/` but no new active file could be opened.
    detached: bool,
    /// The last copy this writer made (its day and number), so the next copy of the same
    /// day gets the next number without scanning a folder.
    last_copy: Option<(NaiveDate, u32)>,
    stats: Stats,
}

impl State {
    #[inline]
    fn size(&self) -> u64 {
        self.disk + self.buf.len() as u64
    }
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

/// One thread's staged events for one file (staged mode).
#[derive(Debug, Default)]
struct Stage {
    buf: Vec<u8>,
    events: u64,
}

/// A stage, shared by its thread (which fills it) and its writer (which drains it).
type SharedStage = Arc<Padded<Mutex<Stage>>>;

/// Bytes a stage holds before its thread moves them to the shared buffer.
const STAGE_CAP: usize = 16 * 1024;

/// Read-mostly copies of `State` fields for the staged fast path.
#[derive(Debug, Default)]
struct Hints {
    /// `State::size()` as of the last time it changed under the lock.
    size: std::sync::atomic::AtomicU64,
    /// `State::due_at`.
    due_at: std::sync::atomic::AtomicI64,
    /// `State::started + min_age`: before it, the log cannot rotate.
    gate_at: std::sync::atomic::AtomicI64,
    /// `State::retry_at`.
    retry_at: std::sync::atomic::AtomicI64,
}

static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

thread_local! {
    /// This thread's stages, by writer id.
    static STAGES: std::cell::RefCell<Vec<(u64, SharedStage)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The spare buffer, and what failed in flushes written outside the state lock.
#[derive(Debug, Default)]
struct Spare {
    buf: Vec<u8>,
    /// Bytes counted in `State::disk` whose write failed (and was cut back).
    shrink: u64,
    write_errors: u64,
    lost_events: u64,
    lost_bytes: u64,
    last_error: Option<String>,
}

/// A full buffer on its way to the file; holds the io lock until written.
struct Flush<'a> {
    io: parking_lot::MutexGuard<'a, Spare>,
    file: Option<Arc<File>>,
    disk_before: u64,
    events: u64,
}

impl Flush<'_> {
    fn finish(mut self, path: &Path) -> io::Result<()> {
        let result = match &self.file {
            Some(file) => (&**file).write_all(&self.io.buf),
            None => Err(io::Error::other("the log file could not be reopened")),
        };
        if let Err(e) = &result {
            if let Some(file) = &self.file {
                let _ = file.set_len(self.disk_before);
            }
            let len = self.io.buf.len() as u64;
            self.io.shrink += len;
            self.io.write_errors += 1;
            self.io.lost_events += self.events;
            self.io.lost_bytes += len;
            self.io.last_error = Some(format!("writing {}: {e}", path.display()));
        }
        self.io.buf.clear();
        result
    }
}

impl Inner {
    fn stats(&self) -> Stats {
        let mut stats = self.state.lock().stats.clone();
        {
            let io = self.io.lock();
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
        let lock = take_lock(&dir, &log_name)?;
        let backup_dir = settings.backup_dir_for(&path);
        let archive_dir = settings.archive_dir_for(&path);
        let zone = settings.zone();
        let now = clock.now_nanos();

        let file = open_append(&path)
            .map_err(|e| InitError::io("cannot open the log for appending", &path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| InitError::io("cannot read the log's metadata", &path, e))?;
        let mut disk = meta.len();
        // A process killed inside a write(2) can leave a partial last line (the kernel
        // checks for a fatal signal between pages). End it, so the next event starts on a
        // line of its own; the fragment itself was never acknowledged to anyone.
        if disk > 0 && last_byte(&path).is_some_and(|b| b != b'\n') {
            let mut f = &file;
            if f.write_all(b"\n").is_ok() {
                disk += 1;
            }
        }
        // A restart keeps the file's age: its creation time where the platform reports
        // one, else its last modification (which can only make it look younger).
        let started = if disk == 0 {
            now
        } else {
            meta.created()
                .or_else(|_| meta.modified())
                .map(retention::system_time_nanos)
                .unwrap_or(now)
                .min(now)
        };
        let day = zone.day(started);
        let time_trigger = settings.get_rotate_at() != RotateAt::Never;
        let due_at = if time_trigger { zone.next_midnight(started) } else { i64::MAX };
        let last_copy = last_copy_of_day(&log_name, day, &backup_dir, &archive_dir, zone);
        let staged = settings.get_write_mode() == WriteMode::Staged;
        let buffered = staged || settings.get_write_mode() == WriteMode::Buffered;
        let buf_cap = settings.get_buffer_capacity();

        let signal = Arc::new(Signal::default());
        let maintainer = Arc::new(Maintainer {
            log_name: log_name.clone(),
            backup_dir: backup_dir.clone(),
            archive_dir: archive_dir.clone(),
            policy: Policy::from_settings(&settings),
            zone,
            clock: clock.clone(),
        });
        let inner = Arc::new(Inner {
            path,
            log_name,
            backup_dir,
            archive_dir,
            zone,
            clock,
            rotate: !settings.get_rotation_disabled(),
            time_trigger,
            buffered,
            staged,
            stages: Mutex::new(Vec::new()),
            stage_cap: STAGE_CAP.min(buf_cap / 2).max(1),
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            hints: Padded(Hints::default()),
            max_bytes: settings.get_max_bytes(),
            // An empty file never rotates, whatever the gate says.
            min_bytes: settings.get_min_rotate_bytes().max(1),
            min_age: duration_to_nanos(settings.get_min_rotate_age()),
            buf_cap,
            state: Padded(Mutex::new(State {
                file: Some(Arc::new(file)),
                disk,
                buf: Vec::with_capacity(if buffered { buf_cap } else { 0 }),
                buf_events: 0,
                started,
                day,
                due_at,
                retry_at: i64::MIN,
                detached: false,
                last_copy,
                stats: Stats::default(),
            })),
            io: Padded(Mutex::new(Spare {
                buf: Vec::with_capacity(if buffered { buf_cap } else { 0 }),
                ..Spare::default()
            })),
            signal: Arc::clone(&signal),
            maintainer: Arc::clone(&maintainer),
            worker: Mutex::new(None),
            _lock: lock,
        });
        let tick = if buffered { settings.get_flush_interval() } else { Duration::from_secs(1) };
        let weak = Arc::downgrade(&inner);
        let handle = thread::Builder::new()
            .name(format!("mhm-log:{}", inner.log_name))
            .spawn(move || worker_loop(weak, signal, maintainer, tick))
            .map_err(|e| InitError::io("cannot start the background thread", &inner.path, e))?;
        *inner.worker.lock() = Some(handle);
        inner.update_hints(&inner.state.lock());
        Ok(inner)
    }

    #[inline]
    fn write_event(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        if self.staged {
            return self.write_staged(now, data, urgent);
        }
        self.write_locked(now, data, urgent)
    }

    /// Staged mode: the event goes to this thread's stage, touching nothing another
    /// thread writes, unless the log may be due (then everything staged goes to the
    /// shared buffer first and the exact check runs under the lock), the event is urgent,
    /// or the stage is full.
    #[inline]
    fn write_staged(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        if self.rotate {
            let size = self.hints.size.load(Relaxed);
            let mut clock_now = now;
            let maybe_due = size + data.len() as u64 > self.max_bytes
                || (self.time_trigger
                    && *clock_now.get_or_insert_with(|| self.clock.now_nanos())
                        >= self.hints.due_at.load(Relaxed));
            if maybe_due && size >= self.min_bytes {
                let now = clock_now.unwrap_or_else(|| self.clock.now_nanos());
                if now >= self.hints.gate_at.load(Relaxed)
                    && now >= self.hints.retry_at.load(Relaxed)
                {
                    let _ = self.drain_all_outside_lock();
                    return self.write_locked(Some(now), data, urgent);
                }
            }
        }
        if data.len() > self.stage_cap {
            let _ = self.drain_all_outside_lock();
            return self.write_locked(now, data, urgent);
        }
        // `try_with`: a thread being torn down (an event logged from another thread-local's
        // destructor) has no stage table any more; its events take the locked path.
        let staged = STAGES.try_with(|cell| {
            let mut table = cell.borrow_mut();
            let stage = match table.iter().find(|(id, _)| *id == self.id) {
                Some((_, stage)) => stage,
                None => {
                    // Padded: two threads' stages on one cache line would bounce it between cores
                    // on every event, which is what stages exist to avoid.
                    let stage = Arc::new(Padded(Mutex::new(Stage {
                        buf: Vec::with_capacity(2 * self.stage_cap),
                        events: 0,
                    })));
                    self.stages.lock().push(Arc::clone(&stage));
                    table.retain(|(_, s)| Arc::strong_count(s) > 1); // writers gone
                    table.push((self.id, stage));
                    &table.last().expect("just pushed").1
                }
            };
            let mut s = stage.lock();
            s.buf.extend_from_slice(data);
            s.events += 1;
            (s.buf.len() >= self.stage_cap).then(|| Arc::clone(stage))
        });
        let full = match staged {
            Ok(full) => full,
            Err(_) => {
                // What this thread staged before must still come first.
                let _ = self.drain_all_outside_lock();
                return self.write_locked(now, data, urgent);
            }
        };
        if urgent {
            return self.flush_outside_lock();
        }
        if let Some(stage) = full {
            let mut st = self.state.lock();
            let pending = self.absorb(&mut st, &stage);
            self.update_hints(&st);
            drop(st);
            if let Some(flush) = pending {
                let _ = flush.finish(&self.path);
            }
        }
        Ok(())
    }

    /// Moves one stage's events into the shared buffer, making room first if needed: a
    /// full shared buffer is handed back as a [`Flush`] for the caller to finish.
    fn absorb(&self, st: &mut State, stage: &Mutex<Stage>) -> Option<Flush<'_>> {
        let mut s = stage.lock();
        if s.buf.is_empty() {
            return None;
        }
        let pending =
            if st.buf.len() + s.buf.len() > self.buf_cap { self.start_flush(st) } else { None };
        st.buf.extend_from_slice(&s.buf);
        st.buf_events += s.events;
        s.buf.clear();
        s.events = 0;
        pending
    }

    /// Moves every thread's staged events into the shared buffer, writing it out as often
    /// as needed (under the lock: flushes, ERROR events and rotations only). Stages of
    /// threads that have ended are dropped once empty.
    fn drain_all(&self, st: &mut State) -> io::Result<()> {
        if !self.staged {
            return Ok(());
        }
        let mut result = Ok(());
        let mut stages = self.stages.lock();
        for stage in stages.iter() {
            if let Some(flush) = self.absorb(st, stage) {
                if let Err(e) = flush.finish(&self.path) {
                    result = Err(e);
                }
            }
        }
        stages.retain(|s| Arc::strong_count(s) > 1 || !s.lock().buf.is_empty());
        drop(stages);
        self.update_hints(st);
        result
    }

    fn drain_all_outside_lock(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        self.drain_all(&mut st)
    }

    /// Copies what the staged fast path reads out of `State`.
    fn update_hints(&self, st: &State) {
        if !self.staged {
            return;
        }
        use std::sync::atomic::Ordering::Relaxed;
        self.hints.size.store(st.size(), Relaxed);
        self.hints.due_at.store(st.due_at, Relaxed);
        self.hints.gate_at.store(st.started.saturating_add(self.min_age), Relaxed);
        self.hints.retry_at.store(st.retry_at, Relaxed);
    }

    /// The check, the rotation and the write, all under the state lock (direct and
    /// buffered modes, and staged mode's slow path).
    fn write_locked(&self, now: Option<i64>, data: &[u8], urgent: bool) -> io::Result<()> {
        let mut st = self.state.lock();
        if self.rotate {
            let mut clock_now = now;
            let due = st.size() + data.len() as u64 > self.max_bytes
                || (self.time_trigger
                    && *clock_now.get_or_insert_with(|| self.clock.now_nanos()) >= st.due_at);
            if due {
                let now = clock_now.unwrap_or_else(|| self.clock.now_nanos());
                if now >= st.retry_at
                    && st.size() >= self.min_bytes
                    && now.saturating_sub(st.started) >= self.min_age
                {
                    self.rotate(&mut st, now);
                }
            }
        }
        if !self.buffered {
            return self.write_file(&mut st, data, 1);
        }
        // Buffered: copy under the lock; a full buffer is swapped for the empty spare and
        // written by this thread *after* the state lock is released, so other threads keep
        // copying while the write runs (the io lock keeps flushes in order).
        let mut pending = None;
        if st.buf.len() + data.len() > self.buf_cap {
            pending = self.start_flush(&mut st);
        }
        if data.len() > self.buf_cap {
            // Larger than the whole buffer: straight to the file, after what was pending.
            if let Some(flush) = pending {
                let _ = flush.finish(&self.path);
            }
            return self.write_file(&mut st, data, 1);
        }
        st.buf.extend_from_slice(data);
        st.buf_events += 1;
        drop(st);
        if let Some(flush) = pending {
            // Its failure is counted; it concerns earlier events, not this one.
            let _ = flush.finish(&self.path);
        }
        if urgent {
            return self.flush_outside_lock();
        }
        Ok(())
    }

    /// Writes `data` (holding `events` events) to the file, under the state lock. On
    /// failure the file is cut back to its previous length so no torn line stays, and
    /// the loss is counted.
    fn write_file(&self, st: &mut State, data: &[u8], events: u64) -> io::Result<()> {
        if st.file.is_none() {
            self.reopen(st);
        }
        let result = match &st.file {
            Some(file) => (&**file).write_all(data),
            None => Err(io::Error::other("the log file could not be reopened")),
        };
        match result {
            Ok(()) => {
                st.disk += data.len() as u64;
                st.stats.events_written += events;
                st.stats.bytes_written += data.len() as u64;
                Ok(())
            }
            Err(e) => {
                if let Some(file) = &st.file {
                    let _ = file.set_len(st.disk);
                }
                st.stats.write_errors += 1;
                st.stats.lost_events += events;
                st.stats.last_error = Some(format!("writing {}: {e}", self.path.display()));
                Err(e)
            }
        }
    }

    /// Reopens the active file after an earlier failure to open one.
    fn reopen(&self, st: &mut State) {
        if let Ok(file) = open_append(&self.path) {
            st.disk = file.metadata().map(|m| m.len()).unwrap_or(0);
            st.file = Some(Arc::new(file));
        }
    }

    /// Hands the buffered events to a [`Flush`]: takes the io lock (waiting for a flush
    /// still in flight), swaps the full buffer for the empty spare, and accounts for it.
    fn start_flush(&self, st: &mut State) -> Option<Flush<'_>> {
        let mut io = self.io.lock();
        if st.buf.is_empty() {
            return None;
        }
        st.disk = st.disk.saturating_sub(std::mem::take(&mut io.shrink));
        std::mem::swap(&mut st.buf, &mut io.buf);
        let events = std::mem::take(&mut st.buf_events);
        let disk_before = st.disk;
        st.disk += io.buf.len() as u64;
        st.stats.events_written += events;
        st.stats.bytes_written += io.buf.len() as u64;
        if st.file.is_none() {
            self.reopen(st);
        }
        Some(Flush { io, file: st.file.clone(), disk_before, events })
    }

    /// Writes out the buffer with the state lock released during the write.
    fn flush_outside_lock(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        let drained = self.drain_all(&mut st);
        let flush = self.start_flush(&mut st);
        self.update_hints(&st);
        drop(st);
        flush.map_or(Ok(()), |f| f.finish(&self.path)).and(drained)
    }

    /// Writes out the buffer while the caller keeps the state lock (rotation, sync).
    fn flush_buf(&self, st: &mut State) -> io::Result<()> {
        match self.start_flush(st) {
            Some(flush) => flush.finish(&self.path),
            None => Ok(()),
        }
    }

    /// Moves the active file into `backups/` and starts a new one. Never panics; a
    /// failure is counted, the writer keeps writing where it can, and the next try comes
    /// after `RETRY_AFTER`.
    #[cold]
    fn rotate(&self, st: &mut State, now: i64) {
        // Everything accepted before this moment belongs to the file being closed.
        let _ = self.drain_all(st);
        let _ = self.flush_buf(st);
        let day = st.day;
        let mut copy = None;
        if !st.detached {
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
                st.file = Some(file);
                st.disk = 0;
                st.started = now;
                st.day = self.zone.day(now);
                st.due_at = if self.time_trigger { self.zone.next_midnight(now) } else { i64::MAX };
                st.retry_at = i64::MIN;
                st.detached = false;
                st.stats.rotations += 1;
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
                    }
                }
                self.rotation_failed(st, now, why);
            }
        }
    }

    fn rotation_failed(&self, st: &mut State, now: i64, why: String) {
        st.stats.rotation_errors += 1;
        st.stats.last_error = Some(why);
        st.retry_at = now.saturating_add(duration_to_nanos(RETRY_AFTER));
        self.update_hints(st);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        for stage in self.stages.get_mut().iter() {
            let mut s = stage.lock();
            st.buf.extend_from_slice(&s.buf);
            s.buf.clear();
        }
        if !st.buf.is_empty() {
            if let Some(file) = &st.file {
                let _ = (&**file).write_all(&st.buf);
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

fn last_byte(path: &Path) -> Option<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Takes the exclusive lock that makes this process the log's only writer.
fn take_lock(dir: &Path, log_name: &str) -> Result<File, InitError> {
    let lock_path = dir.join(format!(".{log_name}.lock"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| InitError::io("cannot open the log's lock file", &lock_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another writer".to_string()
            } else {
                format!("process {holder}")
            };
            return Err(InitError::msg(
                format!("{log_name} is already being written by {who}; a log has one writer (give each process its own file)"),
                lock_path,
            ));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(InitError::io("cannot lock the log", lock_path, e))
        }
    }
    let _ =
        file.set_len(0).and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
    Ok(file)
}

/// The highest copy number already used for `day` in either folder, so a restarted
/// writer continues the numbering instead of reusing a gap.
fn last_copy_of_day(
    log: &str,
    day: NaiveDate,
    backup_dir: &Path,
    archive_dir: &Path,
    zone: Zone,
) -> Option<(NaiveDate, u32)> {
    let copies = retention::scan_log(log, backup_dir, archive_dir, zone).ok()?;
    copies
        .backups
        .iter()
        .chain(&copies.archive)
        .filter(|c| c.name.date == Some(day))
        .map(|c| c.name.seq)
        .max()
        .map(|seq| (day, seq))
}

// === the background thread ===

#[derive(Debug, Default)]
struct Signal {
    state: Mutex<WorkerState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
struct WorkerState {
    maintain: bool,
    stop: bool,
    copies_archived: u64,
    copies_deleted: u64,
    maintenance_errors: u64,
    last_error: Option<String>,
}

impl Signal {
    fn request_maintenance(&self) {
        self.state.lock().maintain = true;
        self.cv.notify_one();
    }

    fn stop(&self) {
        self.state.lock().stop = true;
        self.cv.notify_one();
    }
}

/// What the background thread needs to keep one log's folders in order.
#[derive(Debug)]
struct Maintainer {
    log_name: String,
    backup_dir: PathBuf,
    archive_dir: PathBuf,
    policy: Policy,
    zone: Zone,
    clock: Clock,
}

impl Maintainer {
    /// One pass: overflow, compression, pruning, stale temp files. Returns whether every
    /// step worked. Passes are serialised (one process-wide lock) so two never race on a folder.
    fn run(&self, signal: &Signal) -> bool {
        static PASS: Mutex<()> = Mutex::new(());
        let _one_at_a_time = PASS.lock();
        // Rotations renamed files into backups/: make that durable before anything moves.
        retention::sync_dir(&self.backup_dir.join("."));
        retention::remove_stale_temps(&self.archive_dir, Duration::from_secs(3600));
        let now = self.clock.now_nanos();
        let copies = match retention::scan_log(
            &self.log_name,
            &self.backup_dir,
            &self.archive_dir,
            self.zone,
        ) {
            Ok(c) => c,
            Err(e) => {
                let mut w = signal.state.lock();
                w.maintenance_errors += 1;
                w.last_error = Some(format!(
                    "listing {} / {}: {e}",
                    self.backup_dir.display(),
                    self.archive_dir.display()
                ));
                return false;
            }
        };
        let mut ok = true;
        for step in retention::plan(&copies, &self.policy, now, self.zone, &self.archive_dir) {
            let result = retention::execute(&step.action, &mut |_| {});
            let mut w = signal.state.lock();
            match (&step.action, result) {
                (retention::Action::Delete { .. }, Ok(_)) => w.copies_deleted += 1,
                (_, Ok(_)) => w.copies_archived += 1,
                (action, Err(e)) => {
                    ok = false;
                    w.maintenance_errors += 1;
                    w.last_error = Some(format!("{action:?}: {e}"));
                }
            }
        }
        ok
    }
}

fn worker_loop(
    weak: Weak<Inner>,
    signal: Arc<Signal>,
    maintainer: Arc<Maintainer>,
    tick: Duration,
) {
    let mut pending = true; // a first pass at start-up finishes what a crash left
    let mut failed_at: Option<Instant> = None;
    let mut reported_at: Option<Instant> = None;
    let mut reported = 0u64;
    loop {
        {
            let mut w = signal.state.lock();
            if !w.stop && !w.maintain && !pending {
                signal.cv.wait_for(&mut w, tick);
            }
            if w.stop {
                return;
            }
            pending |= std::mem::take(&mut w.maintain);
        }
        if failed_at.is_some_and(|t| t.elapsed() >= MAINTAIN_RETRY) {
            pending = true;
        }
        if pending {
            pending = false;
            failed_at = if maintainer.run(&signal) { None } else { Some(Instant::now()) };
        }
        let Some(inner) = weak.upgrade() else { return };
        if inner.buffered {
            let _ = inner.flush_outside_lock();
        }
        let stats = inner.stats();
        let failures = stats.write_errors + stats.rotation_errors + stats.maintenance_errors;
        let failures = (failures > reported
            && reported_at.is_none_or(|t| t.elapsed() >= REPORT_EVERY))
        .then_some((failures, stats.lost_events, stats.last_error));
        if let Some((failures, lost, last)) = failures {
            eprintln!(
                "mhm-log: {}: {failures} failure(s) so far, {lost} event(s) not written; last: {}",
                inner.path.display(),
                last.unwrap_or_default()
            );
            reported = failures;
            reported_at = Some(Instant::now());
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
