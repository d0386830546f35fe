//! `mhm_log._native`: the mhm-log writer for Python. The `logging.Handler` subclasses are
//! plain Python (`python/mhm_log/`): formatting stays Python's, and the finished line comes
//! here, where it is written with the GIL released.
//!
//! Handlers on one path in one process share one writer: the writer's own registry
//! (`Builder::build`) maps the log's absolute path to the live writer (weakly, so the last
//! handler closed closes the file) and merges a later handler's settings into it by its
//! rule (the disagreements come back here and become `warnings.warn` in Python). After
//! `fork` the child forgets the parent's writers without touching them (their locks and
//! background threads belong to the parent, and what they buffered the parent writes) and
//! opens its own on first use, in direct mode whatever the settings say: a fork child
//! usually ends with `os._exit` (every `multiprocessing` child of the fork start method
//! does), which runs nothing that could write out a buffer.

use std::{
    collections::HashMap,
    io::Write,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use mhm_log::{ManualClock as RustClock, RollingFile, Settings, WriteMode};
use parking_lot::Mutex;
use pyo3::{
    exceptions::{PyOSError, PyValueError},
    prelude::*,
    types::PyDict,
};

/// Held while a handle opens its writer, and by the fork hooks across a `fork`: so no
/// thread is inside the writer's registry when the process forks.
static OPENING: ForkLock = ForkLock::new();
/// Bumped in a fork child: handles opened before it must reopen. Above 0 in a fork child
/// (of a process that had loaded this module), and in its own fork children.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The time source a handler can be given for tests: `set` and `advance` move it.
#[pyclass(frozen, module = "mhm_log._native")]
struct ManualClock {
    inner: RustClock,
}

#[pymethods]
impl ManualClock {
    /// A clock at `nanos` nanoseconds since the Unix epoch (the Python wrapper converts a
    /// `datetime`).
    #[new]
    fn new(nanos: i64) -> Self {
        Self { inner: RustClock::new(from_nanos(nanos)) }
    }

    /// Now, in nanoseconds since the epoch.
    fn now_nanos(&self) -> i64 {
        self.inner.now().timestamp_nanos_opt().unwrap_or(i64::MAX)
    }

    /// Sets the time (nanoseconds since the epoch).
    fn set_nanos(&self, nanos: i64) {
        self.inner.set(from_nanos(nanos));
    }

    /// Moves the time forward by `seconds` (not negative).
    fn advance(&self, seconds: f64) -> PyResult<()> {
        let by = Duration::try_from_secs_f64(seconds).map_err(|_| {
            PyValueError::new_err(format!("advance: {seconds} is not a duration (seconds >= 0)"))
        })?;
        self.inner.advance(by);
        Ok(())
    }
}

fn from_nanos(nanos: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_nanos(nanos)
}

/// One handler's hold on the shared writer of its path.
#[pyclass(frozen, module = "mhm_log._native")]
struct Writer {
    path: PathBuf,
    settings: Settings,
    clock: Option<RustClock>,
    held: Mutex<Option<(u64, Arc<RollingFile>)>>,
    /// The writer's disagreements with this handle's settings, not yet warned about.
    notes: Mutex<Vec<String>>,
}

impl Writer {
    /// The writer for this handle: the one it holds, or the process's writer for its path
    /// (opened when there is none, or after a fork).
    fn file(&self) -> Result<Arc<RollingFile>, mhm_log::InitError> {
        let generation = GENERATION.load(Ordering::Acquire);
        let mut held = self.held.lock();
        if let Some((g, file)) = held.as_ref() {
            if *g == generation {
                return Ok(Arc::clone(file));
            }
            // Opened before a fork: the parent's. Forgotten, never dropped here (dropping
            // would flush through locks and join a thread that this process does not have).
            if let Some((_, stale)) = held.take() {
                std::mem::forget(stale);
            }
        }
        let opening = OPENING.lock();
        let mut settings = self.settings.clone();
        if generation > 0 {
            // A fork child: it may end with `os._exit` at any time (a `multiprocessing`
            // child does, a pool's worker is killed by `terminate()`), and nothing runs
            // then to write out a buffer. So each record is written at once.
            settings = settings.write_mode(WriteMode::Direct);
        }
        let mut builder = RollingFile::builder().settings(settings);
        if let Some(clock) = &self.clock {
            builder = builder.clock(clock.clone());
        }
        let (file, notes) = builder.build_with_notes(&self.path)?;
        drop(opening);
        let file = Arc::new(file);
        self.notes.lock().extend(notes);
        *held = Some((generation, Arc::clone(&file)));
        Ok(file)
    }
}

fn os_error(what: &str, e: impl std::fmt::Display) -> PyErr {
    PyOSError::new_err(format!("{what}: {e}"))
}

#[pymethods]
impl Writer {
    /// A handle on the log at `path`. `settings` maps the environment names of SPEC
    /// section 1 (`LOG_MAX_BYTES`, ...) to values given by keyword; names not given come
    /// from the environment, then the defaults. A bad value is a `ValueError` naming the
    /// setting. The first handle on a path opens the writer with its settings; later ones
    /// share it.
    #[new]
    #[pyo3(signature = (path, settings, clock=None, open=true))]
    fn new(
        path: PathBuf,
        settings: &Bound<'_, PyDict>,
        clock: Option<&ManualClock>,
        open: bool,
    ) -> PyResult<Self> {
        let mut given = HashMap::new();
        for (k, v) in settings.iter() {
            given.insert(k.extract::<String>()?, v.str()?.to_string());
        }
        let settings = Settings::from_lookup(|name| {
            given.get(name).cloned().or_else(|| std::env::var(name).ok())
        })
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
        let writer = Self {
            path: mhm_fsx::absolute(&path),
            settings,
            clock: clock.map(|c| c.inner.clone()),
            held: Mutex::new(None),
            notes: Mutex::new(Vec::new()),
        };
        if open {
            writer.file().map_err(|e| os_error(&format!("opening {}", path.display()), e))?;
        }
        Ok(writer)
    }

    /// Writes one formatted record (bytes, newline included) with the GIL released.
    /// `urgent` (ERROR and above) flushes a buffered writer at once.
    fn write(&self, py: Python<'_>, record: &[u8], urgent: bool) -> PyResult<()> {
        let file =
            self.file().map_err(|e| os_error(&format!("opening {}", self.path.display()), e))?;
        py.detach(|| {
            // One `write` is one event (an empty record too, as the Rust layer counts it);
            // an urgent one is written out at once, as the layer writes out an ERROR event.
            let written = (&*file).write(record)?;
            debug_assert_eq!(written, record.len(), "one write takes the whole record");
            if urgent {
                file.flush()?;
            }
            Ok::<(), std::io::Error>(())
        })
        .map_err(|e| os_error(&format!("writing {}", self.path.display()), e))
    }

    /// The disagreements between this handle's settings and those of the writer already
    /// open on its path (one sentence each, naming both values), once: the handler warns.
    fn take_notes(&self) -> Vec<String> {
        std::mem::take(&mut *self.notes.lock())
    }

    /// Whether the log is due and both gates pass now (`shouldRollover`).
    fn rotation_due(&self, py: Python<'_>) -> PyResult<bool> {
        let file =
            self.file().map_err(|e| os_error(&format!("opening {}", self.path.display()), e))?;
        Ok(py.detach(|| file.rotation_due()))
    }

    /// Rotates now when both gates pass, whatever the triggers say (`doRollover`);
    /// whether it rotated.
    fn rotate_now(&self, py: Python<'_>) -> PyResult<bool> {
        let file =
            self.file().map_err(|e| os_error(&format!("opening {}", self.path.display()), e))?;
        Ok(py.detach(|| file.rotate_now()))
    }

    /// Writes out what a buffered writer holds. Not a writer opened before a fork: its
    /// buffer is the parent's, which the parent writes (flushing it here wrote the
    /// parent's records twice).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let generation = GENERATION.load(Ordering::Acquire);
        let held =
            self.held.lock().as_ref().filter(|(g, _)| *g == generation).map(|(_, f)| Arc::clone(f));
        match held {
            Some(file) => py
                .detach(|| file.flush())
                .map_err(|e| os_error(&format!("flushing {}", self.path.display()), e)),
            None => Ok(()),
        }
    }

    /// Lets go of the writer: the last handle on a path closes it (every buffered record
    /// written, the maintenance already due finished).
    fn release(&self, py: Python<'_>) {
        let held = self.held.lock().take();
        if let Some((generation, file)) = held {
            if generation == GENERATION.load(Ordering::Acquire) {
                py.detach(move || drop(file));
            } else {
                std::mem::forget(file);
            }
        }
    }

    /// Counters of the shared writer (rotations, bytes, events, failures), as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let file =
            self.file().map_err(|e| os_error(&format!("opening {}", self.path.display()), e))?;
        let s = file.stats();
        let d = PyDict::new(py);
        d.set_item("rotations", s.rotations)?;
        d.set_item("events_written", s.events_written)?;
        d.set_item("bytes_written", s.bytes_written)?;
        d.set_item("write_errors", s.write_errors)?;
        d.set_item("lost_events", s.lost_events)?;
        d.set_item("rotation_errors", s.rotation_errors)?;
        d.set_item("settings_merged", s.settings_merged)?;
        Ok(d)
    }

    /// The log's absolute path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Where rotated copies go.
    #[getter]
    fn backup_dir(&self) -> PathBuf {
        self.settings.backup_dir_for(&self.path)
    }

    /// Where older copies go.
    #[getter]
    fn archive_dir(&self) -> PathBuf {
        self.settings.archive_dir_for(&self.path)
    }
}

/// A lock that is one atomic flag and nothing else: a `fork` copies it whole, whatever
/// another thread was doing with it, and a hook can hold it across the fork and let it go
/// on both sides without any `unsafe` (a mutex's hidden state, its queue of parked
/// threads, would be the parent's in the child). Waiters poll: it is held only while a
/// writer opens.
struct ForkLock(AtomicBool);

/// [`ForkLock`] held; let go when dropped.
struct ForkLockGuard<'a>(&'a ForkLock);

impl ForkLock {
    const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    fn lock(&self) -> ForkLockGuard<'_> {
        let mut wait = Duration::from_micros(1);
        while self
            .0
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            if wait < Duration::from_micros(64) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(wait.min(Duration::from_millis(1)));
            }
            wait = wait.saturating_mul(2);
        }
        ForkLockGuard(self)
    }

    /// Taken before a fork and kept: [`ForkLock::let_go`] on each side after it.
    fn hold_across_fork(&self) {
        std::mem::forget(self.lock());
    }

    fn let_go(&self) {
        self.0.store(false, Ordering::Release);
    }
}

impl Drop for ForkLockGuard<'_> {
    fn drop(&mut self) {
        self.0.let_go();
    }
}

/// The `os.register_at_fork` hooks, registered by the module itself (never module
/// attributes: the three only make sense together, in that order, around a fork).
/// `before`: no thread is opening a writer while the process forks.
#[pyfunction]
fn before_fork() {
    OPENING.hold_across_fork();
}

/// `after_in_parent`.
#[pyfunction]
fn after_fork_in_parent() {
    OPENING.let_go();
}

/// `after_in_child`: the parent's writers are forgotten (never dropped: their threads
/// are not in this process); each handle reopens on first use, in direct mode (see
/// `Writer::file`).
#[pyfunction]
fn after_fork_in_child() {
    OPENING.let_go();
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Writer>()?;
    m.add_class::<ManualClock>()?;
    let os = m.py().import("os")?;
    if os.hasattr("register_at_fork")? {
        let hooks = PyDict::new(m.py());
        hooks.set_item("before", wrap_pyfunction!(before_fork, m)?)?;
        hooks.set_item("after_in_parent", wrap_pyfunction!(after_fork_in_parent, m)?)?;
        hooks.set_item("after_in_child", wrap_pyfunction!(after_fork_in_child, m)?)?;
        os.call_method("register_at_fork", (), Some(&hooks))?;
    }
    Ok(())
}
