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

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

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

fn to_nanos<Tz: TimeZone>(t: &DateTime<Tz>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// Converts nanoseconds since the epoch to a `DateTime<Utc>`.
pub(crate) fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

pub(crate) fn duration_to_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The zone in which days begin: the system's local zone (honouring `TZ`) or UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// The system's local zone.
    Local,
    /// UTC.
    Utc,
}

impl Zone {
    /// The calendar day that contains `nanos`.
    pub fn day(self, nanos: i64) -> NaiveDate {
        let t = from_nanos(nanos);
        match self {
            Zone::Local => t.with_timezone(&Local).date_naive(),
            Zone::Utc => t.date_naive(),
        }
    }

    /// The first midnight strictly after `nanos`, as nanoseconds since the epoch.
    pub fn next_midnight(self, nanos: i64) -> i64 {
        let t = from_nanos(nanos);
        let next = match self {
            Zone::Local => next_midnight_in(&Local, t),
            Zone::Utc => next_midnight_in(&Utc, t),
        };
        to_nanos(&next)
    }

    /// The instant `day` begins (its first valid local time at or after 00:00).
    pub fn start_of_day(self, day: NaiveDate) -> i64 {
        let t = match self {
            Zone::Local => start_of_day_in(&Local, day),
            Zone::Utc => start_of_day_in(&Utc, day),
        };
        to_nanos(&t)
    }
}

/// The first midnight in `tz` strictly after `t`.
///
/// Correct across DST changes: when 00:00 happens twice the first one counts, and when a
/// zone skips 00:00 (or a whole day) the first valid time after it counts, so there is
/// exactly one rotation per calendar day and no day is ever skipped twice.
pub fn next_midnight_in<Tz: TimeZone>(tz: &Tz, t: DateTime<Utc>) -> DateTime<Utc> {
    let today = t.with_timezone(tz).date_naive();
    let mut day = today;
    loop {
        day = match day.succ_opt() {
            Some(d) => d,
            None => return DateTime::<Utc>::MAX_UTC,
        };
        let start = start_of_day_in(tz, day);
        if start > t {
            return start;
        }
    }
}

/// The instant `day` begins in `tz`: 00:00, or the first valid local time after it when
/// a DST change skips midnight.
pub fn start_of_day_in<Tz: TimeZone>(tz: &Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight: NaiveDateTime = day.and_hms_opt(0, 0, 0).expect("00:00:00 is a valid time");
    // Probe forward in 15-minute steps through a gap; 48 hours covers a skipped day.
    for step in 0..(48 * 4) {
        let local = midnight + chrono::Duration::minutes(15 * step);
        match tz.from_local_datetime(&local) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => {}
        }
    }
    // No zone has a gap this long; fall back to the UTC reading of the day.
    Utc.from_utc_datetime(&midnight)
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

    #[test]
    fn utc_next_midnight_is_strictly_after() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(next_midnight_in(&Utc, t), Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
        let t = Utc.with_ymd_and_hms(2026, 2, 28, 23, 59, 59).unwrap();
        assert_eq!(next_midnight_in(&Utc, t), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
    }
}
