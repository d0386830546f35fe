//! The background thread: maintenance after rotations (overflow into `archive/`, gzip,
//! pruning, stale temporary files), timed flushes of the buffered modes, and failure
//! reports on stderr.

use std::{
    io,
    path::PathBuf,
    sync::{Arc, Weak},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};

use super::Inner;
use crate::{
    clock::{Clock, Zone},
    retention::{self, Policy},
};

/// How often failures are reported on stderr, at most.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often a failed maintenance pass is retried.
const MAINTAIN_RETRY: Duration = Duration::from_secs(60);
/// How often the active file is checked to be still at its path (deleted or moved away by
/// someone else: see `Inner::check_active`).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Wakes the background thread, and keeps its counters.
#[derive(Debug, Default)]
pub(super) struct Signal {
    pub(super) state: Mutex<WorkerState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct WorkerState {
    maintain: bool,
    stop: bool,
    pub(super) copies_archived: u64,
    pub(super) copies_deleted: u64,
    pub(super) maintenance_errors: u64,
    pub(super) last_error: Option<String>,
}

impl Signal {
    pub(super) fn request_maintenance(&self) {
        self.state.lock().maintain = true;
        self.cv.notify_one();
    }

    pub(super) fn stop(&self) {
        self.state.lock().stop = true;
        self.cv.notify_one();
    }
}

/// What the background thread needs to keep one log's folders in order.
#[derive(Debug)]
pub(super) struct Maintainer {
    pub(super) log_name: String,
    pub(super) backup_dir: PathBuf,
    pub(super) archive_dir: PathBuf,
    pub(super) policy: Policy,
    pub(super) zone: Zone,
    pub(super) clock: Clock,
}

impl Maintainer {
    /// One pass: overflow, compression, pruning, stale temp files. Returns whether every
    /// step worked. Passes are serialised (one process-wide lock) so two never race on a folder.
    pub(super) fn run(&self, signal: &Signal) -> bool {
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

/// Starts the background thread of `inner`, waking at least every `tick`. It holds only
/// a weak reference, and ends when the last handle drops.
pub(super) fn spawn(inner: &Arc<Inner>, tick: Duration) -> io::Result<JoinHandle<()>> {
    let weak = Arc::downgrade(inner);
    let signal = Arc::clone(&inner.signal);
    let maintainer = Arc::clone(&inner.maintainer);
    thread::Builder::new()
        .name(format!("mhm-log:{}", inner.log_name))
        .spawn(move || worker_loop(weak, signal, maintainer, tick))
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
    let mut checked_at = Instant::now();
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
        if inner.mode.buffer().is_some() {
            let _ = inner.flush_outside_lock();
        }
        if checked_at.elapsed() >= CHECK_EVERY {
            let mut st = inner.state.lock();
            let _ = inner.check_active(&mut st, inner.clock.now_nanos());
            drop(st);
            checked_at = Instant::now();
        }
        let stats = inner.stats();
        let failures =
            stats.write_errors + stats.rotation_errors + stats.maintenance_errors + stats.reopens;
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
