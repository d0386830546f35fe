//! The background thread: maintenance after rotations (overflow into `archive/`, gzip,
//! pruning, stale temporary files), timed flushes of the buffered modes, and failure
//! reports on stderr.

use std::{
    fs::{File, TryLockError},
    io,
    path::{Path, PathBuf},
    sync::{Arc, Weak},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use super::sync::{Condvar, Mutex};
use crate::{
    clock::{Clock, Zone},
    retention::{self, Policy},
};

/// How often failures are reported on stderr, at most.
const REPORT_EVERY: Duration = Duration::from_secs(60);
/// How often a failed maintenance pass is retried.
const MAINTAIN_RETRY: Duration = Duration::from_secs(60);
/// How soon a pass that found another process maintaining the log looks again.
const BUSY_RETRY: Duration = Duration::from_secs(1);
/// How long a writer finishing its maintenance waits for another process's pass to end.
const BUSY_WAIT: Duration = Duration::from_millis(250);
/// How often the active file is checked to be still at its path (deleted or moved away by
/// someone else: see `Rotator::check_active`).
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// How long dropping the last handle (or the guard) waits for the maintenance already due:
/// no new step starts after it (the step under way, one move or one gzip, finishes, so no
/// step is ever left half done); what is left is done by the next start's first pass.
pub(crate) const SHUTDOWN_BUDGET: Duration = Duration::from_secs(5);

/// Wakes the background thread, and keeps its counters.
#[derive(Debug, Default)]
pub(super) struct Signal {
    pub(super) state: Mutex<WorkerState>,
    cv: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct WorkerState {
    /// A pass was asked for (by a rotation, at start-up, or after one was cut short) and
    /// has not started.
    maintain: bool,
    /// A pass is under way (on the background thread, or on a thread finishing up).
    running: bool,
    /// The last pass failed: the next one is due then.
    retry_at: Option<Instant>,
    stop: bool,
    /// A full buffer was handed off to be written (write-behind).
    write: bool,
    /// Set by `stop`: no maintenance step starts after it.
    deadline: Option<Instant>,
    pub(super) copies_archived: u64,
    pub(super) copies_deleted: u64,
    pub(super) maintenance_errors: u64,
    pub(super) last_error: Option<String>,
}

/// How a maintenance pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// Every step done.
    Done,
    /// A step failed (counted); the pass is tried again `MAINTAIN_RETRY` later.
    Failed,
    /// The deadline came first; the steps left are asked for again.
    CutShort,
    /// Another process is maintaining the log's copies; looked at again `BUSY_RETRY` later.
    Busy,
}

impl WorkerState {
    /// Whether maintenance is due: asked for, or a failed pass's retry (any time, when
    /// `now` is `None`: shutting down).
    fn due(&self, now: Option<Instant>) -> bool {
        self.maintain || self.retry_at.is_some_and(|t| now.is_none_or(|now| now >= t))
    }

    /// Takes the pass that is due, if none is under way.
    fn claim(&mut self, now: Option<Instant>) -> bool {
        let claim = !self.running && self.due(now);
        if claim {
            self.maintain = false;
            self.running = true;
        }
        claim
    }
}

impl Signal {
    /// Wakes the background thread to write a buffer handed off to it.
    pub(super) fn write_behind(&self) {
        self.state.lock().write = true;
        self.cv.notify_all();
    }

    pub(super) fn request_maintenance(&self) {
        self.state.lock().maintain = true;
        self.cv.notify_all();
    }

    /// Asks the background thread to finish the maintenance due within `SHUTDOWN_BUDGET`,
    /// and end.
    pub(super) fn stop(&self) {
        let mut w = self.state.lock();
        w.stop = true;
        w.deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_BUDGET);
        drop(w);
        self.cv.notify_all();
    }

    fn pass_done(&self, pass: Pass) {
        let mut w = self.state.lock();
        w.running = false;
        match pass {
            Pass::Done => w.retry_at = None,
            Pass::Failed => w.retry_at = Some(Instant::now() + MAINTAIN_RETRY),
            Pass::CutShort => w.maintain = true,
            Pass::Busy => w.retry_at = Some(Instant::now() + BUSY_RETRY),
        }
        drop(w);
        self.cv.notify_all();
    }

    /// The earlier of `deadline` and the one `stop` set.
    fn limit(&self, deadline: Option<Instant>) -> Option<Instant> {
        earliest(deadline, self.state.lock().deadline)
    }

    /// Finishes the maintenance already due, on this thread: waits for a pass under way,
    /// then runs the one asked for (or a failed one's retry) if any, starting no step
    /// after `deadline` (nor after the one `stop` set). Returns whether nothing is left.
    pub(super) fn finish_due(&self, maintainer: &Maintainer, deadline: Option<Instant>) -> bool {
        let mut busy_since = None;
        loop {
            let mut w = self.state.lock();
            while w.running {
                match earliest(deadline, w.deadline) {
                    Some(limit) => {
                        let timed_out;
                        (w, timed_out) = self.cv.wait_until(w, limit);
                        if timed_out && w.running {
                            return false;
                        }
                    }
                    None => w = self.cv.wait(w),
                }
            }
            if !w.claim(None) {
                return true;
            }
            drop(w);
            let pass = maintainer.run(self, deadline);
            self.pass_done(pass);
            if pass == Pass::Busy
                && busy_since.get_or_insert_with(Instant::now).elapsed() < BUSY_WAIT
                && self.limit(deadline).is_some_and(|l| Instant::now() < l)
            {
                // Another process is in a pass that may have looked at the copies before
                // this one's last rotation: wait for it a moment and run ours, or an exiting
                // writer can leave its log above the ceiling. One busy for longer is
                // maintaining all the time, and its next pass takes care of these copies.
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
            if pass != Pass::Done {
                // Cut short, or failed (at once again would fail again): left for later.
                return false;
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What the background thread needs to keep one log's folders in order.
#[derive(Debug)]
pub(super) struct Maintainer {
    pub(super) log_name: String,
    pub(super) backup_dir: PathBuf,
    pub(super) archive_dir: PathBuf,
    /// Behind a lock: a later handle on the path may ask to keep more (`merge.rs`).
    pub(super) policy: Mutex<Policy>,
    pub(super) zone: Zone,
    pub(super) clock: Clock,
    /// `.<name>.maintain.lock` beside the log: one process maintains its copies at a time.
    pub(super) lock: File,
}

/// Serialises maintenance passes within one process. Not a mutex: a child made by `fork`
/// inherits a mutex in whatever state another thread of its parent left it, so a pass
/// running in the parent at the fork would lock the child's passes (and its shutdown)
/// forever. This lock records its holder's pid; one held by another process (the parent,
/// before the fork) counts as free.
static PASS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// Holds [`PASS`] until dropped.
struct PassLock;

impl PassLock {
    /// Takes the pass lock, waiting until `limit` at most (`None`: as long as it takes).
    fn take(limit: Option<Instant>) -> Option<Self> {
        use std::sync::atomic::Ordering;
        let me = std::process::id();
        loop {
            let holder = PASS.load(Ordering::Acquire);
            // Free, or held by the parent this process was forked from.
            if holder != me
                && PASS.compare_exchange(holder, me, Ordering::AcqRel, Ordering::Acquire).is_ok()
            {
                return Some(PassLock);
            }
            if limit.is_some_and(|l| Instant::now() >= l) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for PassLock {
    fn drop(&mut self) {
        PASS.store(0, std::sync::atomic::Ordering::Release);
    }
}

impl Maintainer {
    /// One pass: overflow, compression, pruning, stale temp files. Passes are serialised
    /// (one process-wide lock, then the log's maintenance lock between processes) so two
    /// never race on a folder. No step starts after
    /// `deadline`, nor after the one [`Signal::stop`] set (checked before each step).
    pub(super) fn run(&self, signal: &Signal, deadline: Option<Instant>) -> Pass {
        let past = |signal: &Signal| signal.limit(deadline).is_some_and(|d| Instant::now() >= d);
        let Some(_one_at_a_time) = PassLock::take(signal.limit(deadline)) else {
            return Pass::CutShort;
        };
        // One process at a time, too: another one at it now does what this pass would.
        let _one_process = match self.lock.try_lock() {
            Ok(()) => Unlock(&self.lock),
            Err(TryLockError::WouldBlock) => return Pass::Busy,
            Err(TryLockError::Error(e)) => {
                let mut w = signal.state.lock();
                w.maintenance_errors += 1;
                w.last_error = Some(format!("locking the maintenance of {}: {e}", self.log_name));
                return Pass::Failed;
            }
        };
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
                return Pass::Failed;
            }
        };
        let mut pass = Pass::Done;
        let policy = self.policy.lock().clone();
        for step in retention::plan(&copies, &policy, now, self.zone, &self.archive_dir) {
            if past(signal) {
                return Pass::CutShort;
            }
            let result = retention::execute(&step.action, &mut |_| {});
            let mut w = signal.state.lock();
            match (&step.action, result) {
                (retention::Action::Delete { .. }, Ok(_)) => w.copies_deleted += 1,
                (_, Ok(_)) => w.copies_archived += 1,
                (action, Err(e)) => {
                    pass = Pass::Failed;
                    w.maintenance_errors += 1;
                    w.last_error = Some(format!("{action:?}: {e}"));
                }
            }
        }
        pass
    }
}

/// Unlocks an OS file lock when dropped.
struct Unlock<'a>(&'a File);

impl Drop for Unlock<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// What the background thread does with its log (the writer, `mod.rs`, which it holds
/// weakly): this file knows nothing else of it.
pub(super) trait Log: Send + Sync + 'static {
    /// Writes a buffer handed off to the thread (write-behind), and drains the stages if
    /// one asked for it.
    fn write_handed_off(&self);
    /// The timed flush (a no-op in direct mode).
    fn flush_timed(&self);
    /// Checks that the active file is still at its path.
    fn check_active(&self);
    /// Failures so far (write, rotation and maintenance errors, reopens), events not
    /// written, and the last error, for the report on stderr.
    fn failures(&self) -> (u64, u64, Option<String>);
    /// The log's path, to name it in reports.
    fn path(&self) -> &Path;
}

/// Starts the background thread of `log` (called `mhm-log:<name>`), waking at least every
/// `tick`. It holds only a weak reference, and ends when asked to ([`Signal::stop`], when
/// the last handle drops), after finishing the maintenance due.
pub(super) fn spawn<L: Log>(
    log: &Arc<L>,
    name: &str,
    signal: &Arc<Signal>,
    maintainer: &Arc<Maintainer>,
    tick: Duration,
) -> io::Result<JoinHandle<()>> {
    let weak = Arc::downgrade(log);
    let signal = Arc::clone(signal);
    let maintainer = Arc::clone(maintainer);
    // A first pass at start-up finishes what a crash (or a shutdown short of time) left.
    signal.request_maintenance();
    thread::Builder::new()
        .name(format!("mhm-log:{name}"))
        .spawn(move || worker_loop(weak, signal, maintainer, tick))
}

fn worker_loop<L: Log>(
    weak: Weak<L>,
    signal: Arc<Signal>,
    maintainer: Arc<Maintainer>,
    tick: Duration,
) {
    let mut reported_at: Option<Instant> = None;
    let mut reported = 0u64;
    let mut checked_at = Instant::now();
    // The timed flush comes every `tick`, however often a rotation wakes the thread
    // between (so a flush interval is what it says, and a test can hold events in memory).
    let mut flushed_at = Instant::now();
    loop {
        let run = {
            let mut w = signal.state.lock();
            let next_flush = (flushed_at + tick).saturating_duration_since(Instant::now());
            if !w.stop && !w.write && !w.due(Some(Instant::now())) && !next_flush.is_zero() {
                w = signal.cv.wait_for(w, next_flush).0;
            }
            if w.stop {
                break;
            }
            (std::mem::take(&mut w.write), w.claim(Some(Instant::now())))
        };
        let (write, run) = run;
        if write {
            // Before any maintenance: a writer waits for it only when it fills the next
            // buffer first (then it writes this one itself).
            let Some(inner) = weak.upgrade() else { break };
            inner.write_handed_off();
        }
        if run {
            signal.pass_done(maintainer.run(&signal, None));
        }
        let Some(inner) = weak.upgrade() else { break };
        if flushed_at.elapsed() >= tick {
            inner.flush_timed();
            flushed_at = Instant::now();
        }
        if checked_at.elapsed() >= CHECK_EVERY {
            inner.check_active();
            checked_at = Instant::now();
        }
        let (failures, lost, last) = inner.failures();
        let failures = (failures > reported
            && reported_at.is_none_or(|t| t.elapsed() >= REPORT_EVERY))
        .then_some((failures, lost, last));
        if let Some((failures, lost, last)) = failures {
            eprintln!(
                "mhm-log: {}: {failures} failure(s) so far, {lost} event(s) not written; last: {}",
                inner.path().display(),
                last.unwrap_or_default()
            );
            reported = failures;
            reported_at = Some(Instant::now());
        }
    }
    // Shutting down: what the rotations of this run asked for, within the deadline `stop`
    // set.
    signal.finish_due(&maintainer, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    // regression: a fork child hung for ever in its shutdown when its parent's background
    // thread was in a maintenance pass at the fork (the pass mutex was inherited locked)
    #[test]
    fn a_pass_lock_held_by_another_process_counts_as_free() {
        use std::sync::atomic::Ordering;
        let me = std::process::id();
        // Held by this process (no other thread of it is in a pass now): not free, and a
        // bounded wait gives up.
        let held = PassLock::take(None).unwrap();
        assert!(PassLock::take(Some(Instant::now())).is_none());
        // As a fork child finds it: held by the parent's pid. Taken at once.
        PASS.store(me.wrapping_add(1).max(1), Ordering::Release);
        let taken = PassLock::take(None).unwrap();
        assert_eq!(PASS.load(Ordering::Acquire), me);
        // The hold `held` recorded was replaced by `taken`'s.
        std::mem::forget(held);
        drop(taken);
    }
    use crate::{ManualClock, RotateAt, Settings};
    use chrono::{TimeZone, Utc};

    fn backups(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    #[test]
    fn a_pass_out_of_time_starts_no_step_and_is_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let backup_dir = dir.path().join("backups");
        std::fs::create_dir_all(&backup_dir).unwrap();
        for d in 1..=5 {
            std::fs::write(backup_dir.join(format!("app.log.2026-01-0{d}")), "x\n").unwrap();
        }
        let settings = Settings::default().rotate_at(RotateAt::UtcMidnight).backup_count(1);
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 6, 9, 0, 0).unwrap());
        let maintainer = Maintainer {
            log_name: "app.log".into(),
            backup_dir: backup_dir.clone(),
            archive_dir: dir.path().join("archive"),
            policy: Mutex::new(settings.retention_policy()),
            zone: settings.zone(),
            clock: clock.into(),
            lock: File::create(dir.path().join(".app.log.maintain.lock")).unwrap(),
        };
        let signal = Signal::default();
        signal.request_maintenance();
        assert!(!signal.finish_due(&maintainer, Some(Instant::now())), "out of time");
        assert_eq!(backups(&backup_dir), 5, "no step started");
        assert!(signal.state.lock().maintain, "still asked for");
        assert!(signal.finish_due(&maintainer, Some(Instant::now() + SHUTDOWN_BUDGET)));
        assert_eq!(backups(&backup_dir), 1);
        assert_eq!(signal.state.lock().copies_archived, 4);
    }
}
