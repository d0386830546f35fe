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
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
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
static OPENING: Mutex<()> = Mutex::new(());
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
        py.detach(|| file.write_record(record, urgent))
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

/// `os.register_at_fork(before=...)`: no thread is opening a writer while the process forks.
#[pyfunction]
fn _before_fork() {
    // Released by one of the two hooks below, in parent and child alike.
    std::mem::forget(OPENING.lock());
}

/// `os.register_at_fork(after_in_parent=...)`.
#[pyfunction]
fn _after_fork_in_parent() {
    // SAFETY: locked by `_before_fork` on this thread, and not unlocked since.
    unsafe { OPENING.force_unlock() };
}

/// `os.register_at_fork(after_in_child=...)`: the parent's writers are forgotten (never
/// dropped: their threads are not in this process); each handle reopens on first use,
/// in direct mode (see `Writer::file`).
#[pyfunction]
fn _after_fork_in_child() {
    // SAFETY: locked by `_before_fork` in the parent on the thread that forked, which is
    // the only thread of the child.
    unsafe { OPENING.force_unlock() };
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Writer>()?;
    m.add_class::<ManualClock>()?;
    m.add_function(wrap_pyfunction!(_before_fork, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_parent, m)?)?;
    m.add_function(wrap_pyfunction!(_after_fork_in_child, m)?)?;
    Ok(())
}
