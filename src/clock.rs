//! Time, injected: the system clock in production, a [`ManualClock`] in tests.
//!
//! Every time-dependent rule of the writer (midnight, the one-hour gate, the age of a
//! copy) takes its time from a [`Clock`], so tests move time instead of waiting for it.
//!
//! ```
//! use mhm_log::ManualClock;
//! use chrono::{TimeZone, Utc};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 23, 30, 0).unwrap());
//! let shared = clock.clone();
//! clock.advance(Duration::from_secs(3600));
//! assert_eq!(shared.now(), Utc.with_ymd_and_hms(2026, 11, 27, 0, 30, 0).unwrap());
//! ```

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use chrono::{DateTime, TimeZone, Utc};
pub(crate) use mhm_logfiles::time::{duration_to_nanos, from_nanos, to_nanos, Zone};

/// Where the writer reads the time: the system clock, or a [`ManualClock`].
///
/// Reading it is one `clock_gettime` through the vDSO (no syscall) or one atomic load.
#[derive(Clone, Debug, Default)]
pub struct Clock(ClockKind);

#[derive(Clone, Debug, Default)]
enum ClockKind {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self(ClockKind::System)
    }

    /// The current time.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.now_nanos())
    }

    /// The current time as nanoseconds since the Unix epoch: the hot path's form.
    #[inline]
    pub fn now_nanos(&self) -> i64 {
        match &self.0 {
            ClockKind::System => system_nanos(),
            ClockKind::Manual(m) => m.nanos.load(Ordering::Acquire),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(clock: ManualClock) -> Self {
        Self(ClockKind::Manual(clock))
    }
}

#[inline]
fn system_nanos() -> i64 {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } == 0 {
            // `time_t` and `c_long` are 32 bits on some targets.
            #[allow(clippy::useless_conversion)]
            return i64::from(ts.tv_sec)
                .saturating_mul(1_000_000_000)
                .saturating_add(i64::from(ts.tv_nsec));
        }
    }
    // Seconds and nanoseconds apart: cheaper than `as_nanos` (a u128) on the hot path.
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64)
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(d.subsec_nanos())),
        Err(e) => -duration_to_nanos(e.duration()),
    }
}

/// A clock that only moves when told to. Clones share one time.
///
/// Applications use it to test their own logging: set it to 23:59, log, advance it past
/// midnight, log again, and look at which file each line landed in.
#[derive(Clone, Debug)]
pub struct ManualClock {
    nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock showing `start` (in any zone).
    pub fn new<Tz: TimeZone>(start: DateTime<Tz>) -> Self {
        Self { nanos: Arc::new(AtomicI64::new(to_nanos(&start))) }
    }

    /// The time it shows.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_nanos(self.nanos.load(Ordering::Acquire))
    }

    /// Sets the time (in any zone). Time may move backwards; the writer copes.
    pub fn set<Tz: TimeZone>(&self, t: DateTime<Tz>) {
        self.nanos.store(to_nanos(&t), Ordering::Release);
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.nanos.fetch_add(by, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_nanos_is_the_system_time() {
        let std_nanos = || {
            let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
            i64::try_from(d.as_nanos()).unwrap()
        };
        for _ in 0..1000 {
            let (before, now, after) = (std_nanos(), system_nanos(), std_nanos());
            assert!(before <= now && now <= after, "{before} {now} {after}");
        }
    }

    #[test]
    fn manual_clock_clones_share_time() {
        let c = ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
        let d = c.clone();
        c.advance(Duration::from_millis(1500));
        assert_eq!(
            d.now(),
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap()
                + chrono::Duration::milliseconds(500)
        );
        let clock: Clock = d.into();
        assert_eq!(clock.now(), c.now());
    }
}
