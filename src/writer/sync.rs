//! The writer's locks: `std`'s, behind the small API the writer uses (no poisoning: a
//! panic elsewhere must not stop the logging), and [`Padded`], which keeps a lock or an
//! atomic on cache lines of its own.
//!
//! Not `parking_lot`'s: those park waiters in one process-wide hash table, and a bucket
//! lock held by another thread at a `fork` is copied held into the child, where nothing
//! ever releases it. A writer made in the child (the Python package makes one for every
//! handler after a fork) then hung on its first wake-up of its background thread: seen in
//! `python/tests/test_processes.py`'s fork test, a child spinning in
//! `Condvar::notify_all` for eleven minutes. `std`'s locks (futexes on Linux, SRW locks on
//! Windows) keep their whole state in the lock itself, so a lock made after the fork is
//! clean.

use std::{
    sync::PoisonError,
    time::{Duration, Instant},
};

pub(super) use std::sync::MutexGuard;

/// Tries of [`Mutex::lock`] before it sleeps, each after a pause twice as long (capped).
const SPINS: u32 = 10;

/// `std::sync::Mutex` without poisoning.
#[derive(Debug, Default)]
pub(super) struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub(super) const fn new(value: T) -> Self {
        Self(std::sync::Mutex::new(value))
    }

    /// Tries a while before sleeping: the writer's locks are held for a copy of one line,
    /// so a waiter that spins briefly usually gets the lock without a system call. Two
    /// threads on one buffered file (`2threads/writer_buffered_shared`, one run): 258 ns
    /// per pair of events with std's lock alone, 202 with 10 tries, 279 with 30;
    /// `parking_lot`'s adaptive spinning gave 181 in another run.
    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, T> {
        match self.0.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => self.lock_contended(),
        }
    }

    #[cold]
    fn lock_contended(&self) -> MutexGuard<'_, T> {
        for spins in 0..SPINS {
            for _ in 0..(1 << spins.min(6)) {
                std::hint::spin_loop();
            }
            match self.0.try_lock() {
                Ok(guard) => return guard,
                Err(std::sync::TryLockError::Poisoned(e)) => return e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn get_mut(&mut self) -> &mut T {
        self.0.get_mut().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `std::sync::Condvar` without poisoning.
#[derive(Debug, Default)]
pub(super) struct Condvar(std::sync::Condvar);

impl Condvar {
    pub(super) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits at most `timeout`; the guard, and whether the time ran out.
    pub(super) fn wait_for<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> (MutexGuard<'a, T>, bool) {
        let (guard, result) =
            self.0.wait_timeout(guard, timeout).unwrap_or_else(PoisonError::into_inner);
        (guard, result.timed_out())
    }

    /// Waits until `deadline` at most; the guard, and whether it passed.
    pub(super) fn wait_until<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        deadline: Instant,
    ) -> (MutexGuard<'a, T>, bool) {
        self.wait_for(guard, deadline.saturating_duration_since(Instant::now()))
    }

    pub(super) fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// Keeps a lock or an atomic that every event writes on cache lines of its own, away from
/// the read-mostly fields beside it (two lines: adjacent-line prefetch pairs them).
#[derive(Debug)]
#[repr(align(128))]
pub(super) struct Padded<T>(pub(super) T);

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
