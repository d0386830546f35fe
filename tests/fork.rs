//! A writer made in a `fork` child while the parent's writers are busy or asleep: the
//! Python package makes one for every handler after a fork (`os.register_at_fork`), and
//! Rust users are told to build writers after forking.
//!
//! Background: the writer's locks were `parking_lot`'s, which park waiters in one
//! process-wide table that a fork copies as it stands (threads parked in it that do not
//! exist in the child, buckets locked by them). A child's new writer then could hang for
//! ever: seen in CI, and caught by the Python suite's fork test (6 of 50 runs with the old
//! locks, none of 50 with `std`'s). This test did not make the old locks hang here in 200
//! forks; it checks that each child's writers work, within a deadline.
#![cfg(unix)]

use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use mhm_log::{RollingFile, Settings, WriteMode};

const FORKS: u32 = 20;
const WRITERS_PER_CHILD: u32 = 2;

fn busy_settings() -> Settings {
    // A rotation every 4 KiB (each one wakes the background thread for maintenance), a
    // full buffer handed to that thread every few events, and a flush every millisecond:
    // its lock and condition variable are always in use.
    Settings::default()
        .write_mode(WriteMode::Buffered)
        .buffer_capacity(256)
        .flush_interval(Duration::from_millis(1))
        .max_bytes(4096)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(100_000)
        .archive_count(1_000_000)
}

/// The child: a writer of its own that rotates (a wake-up of its background thread for
/// maintenance each time), flushes and is dropped (the thread is stopped and joined).
fn child_work(dir: &std::path::Path, n: u32) -> bool {
    // Several writers: each has locks of its own, so more chances to meet what the fork
    // left held.
    (0..WRITERS_PER_CHILD).all(|w| child_writer(dir, n, w))
}

fn child_writer(dir: &std::path::Path, n: u32, w: u32) -> bool {
    let settings = Settings::default()
        .write_mode(WriteMode::Staged)
        .buffer_capacity(512)
        .max_bytes(2048)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO);
    let Ok(log) =
        RollingFile::builder().settings(settings).build(dir.join(format!("child{n}-{w}.log")))
    else {
        return false;
    };
    for i in 0..200 {
        if (&log)
            .write_all(format!("child {n} line {i:04} {}\n", "y".repeat(40)).as_bytes())
            .is_err()
        {
            return false;
        }
    }
    log.flush().is_ok() && log.stats().rotations > 0
}

#[test]
fn a_writer_made_in_a_fork_child_works_while_the_parent_was_busy() {
    let dir = tempfile::tempdir().unwrap();
    // Writers whose background threads sleep on their condition variables at the fork
    // (as in any idle service), and one whose thread is woken all the time.
    let idle: Vec<_> = (0..4)
        .map(|i| {
            let log = RollingFile::builder()
                .settings(Settings::default().write_mode(WriteMode::Buffered))
                .build(dir.path().join(format!("idle{i}.log")))
                .unwrap();
            (&log).write_all(b"idle\n").unwrap();
            log
        })
        .collect();
    let parent = RollingFile::builder()
        .settings(busy_settings())
        .build(dir.path().join("parent.log"))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (log, stop) = (parent.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let _ = (&log).write_all(format!("parent {i:08}\n").as_bytes());
                i += 1;
            }
        })
    };
    let mut hung = 0;
    for n in 0..FORKS {
        // SAFETY: the child runs only this process's own code and ends with `_exit`; the
        // parent's threads are not touched there (glibc keeps `malloc` usable after fork).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(|| child_work(dir.path(), n)).unwrap_or(false);
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child, without blocking.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "child {n} failed: {status}"
                );
                break;
            }
            if Instant::now() >= deadline {
                hung += 1;
                // SAFETY: our own child.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    stop.store(true, Ordering::Relaxed);
    busy.join().unwrap();
    drop(idle);
    assert_eq!(hung, 0, "children that hung (of {FORKS})");
}
