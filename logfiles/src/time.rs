//! Time as the copies count it: nanoseconds since the epoch, and the zone in which a
//! day begins. The writer rotates at [`Zone::next_midnight`]; a copy's name carries
//! [`Zone::day`]; retention counts a copy's age from [`Zone::start_of_day`].

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Nanoseconds since the epoch of `t`, saturated at `i64`'s ends (years 1677 and 2262).
pub fn to_nanos<Tz: TimeZone>(t: &DateTime<Tz>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// Converts nanoseconds since the epoch to a `DateTime<Utc>`.
#[inline]
pub fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

/// `d` in nanoseconds, saturated at `i64::MAX`.
#[inline]
pub fn duration_to_nanos(d: Duration) -> i64 {
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
    #[inline]
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

/// Nanoseconds since the epoch of a file time (negative before 1970).
pub fn system_time_nanos(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_to_nanos(d),
        Err(e) => -duration_to_nanos(e.duration()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_next_midnight_is_strictly_after() {
        let t = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        assert_eq!(next_midnight_in(&Utc, t), Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap());
        let t = Utc.with_ymd_and_hms(2026, 2, 28, 23, 59, 59).unwrap();
        assert_eq!(next_midnight_in(&Utc, t), Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap());
    }
}
