//! Midnight across DST changes: one rotation per calendar day, no day skipped twice, in
//! zones whose midnight is skipped, repeated, or whose whole day vanished.

mod common;

use std::{io::Write, time::Duration};

use chrono::{Datelike, Days, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;
use mhm_log::{ManualClock, RollingFile, RotateAt, Settings};
use mhm_logfiles::time::{next_midnight_in, Zone};

const ZONES: [Tz; 6] = [
    chrono_tz::America::Sao_Paulo, // DST began at 00:00: midnight skipped (until 2019)
    chrono_tz::America::Santiago,  // DST ends at 24:00: the hour before midnight repeats
    chrono_tz::America::New_York,  // changes at 02:00
    chrono_tz::Australia::Lord_Howe, // half-hour DST
    chrono_tz::Pacific::Apia,      // skipped 2011-12-30 entirely
    chrono_tz::Asia::Beirut,       // changes at 00:00
];

#[test]
fn consecutive_midnights_visit_every_day_once() {
    for tz in ZONES {
        let mut t = Utc.with_ymd_and_hms(2010, 1, 1, 12, 0, 0).unwrap();
        let mut day = t.with_timezone(&tz).date_naive();
        while t.year_ce().1 < 2020 {
            let next = next_midnight_in(&tz, t);
            assert!(next > t);
            let local = next.with_timezone(&tz);
            let mut expected = day + Days::new(1);
            // A day with no valid time at all (Apia's 2011-12-30) is the only skip.
            while (0..24 * 4).all(|q| {
                matches!(
                    tz.from_local_datetime(
                        &(expected.and_hms_opt(0, 0, 0).unwrap()
                            + chrono::Duration::minutes(15 * q))
                    ),
                    LocalResult::None
                )
            }) {
                expected = expected + Days::new(1);
            }
            assert_eq!(local.date_naive(), expected, "{tz}: after {day}");
            let midnight = expected.and_hms_opt(0, 0, 0).unwrap();
            if !matches!(tz.from_local_datetime(&midnight), LocalResult::None) {
                assert_eq!(
                    local.naive_local(),
                    midnight,
                    "{tz}: {expected} starts at its midnight"
                );
            }
            day = local.date_naive();
            t = next;
        }
    }
}

/// A writer rotating at local midnight, written to once an hour for `days` days from
/// `start` (a manual clock): the names of its copies.
#[cfg_attr(not(any(unix, windows)), allow(dead_code))]
fn hourly_ticks_at_local_midnight(
    dir: &std::path::Path,
    start: chrono::DateTime<Utc>,
    days: u64,
) -> Vec<String> {
    let clock = ManualClock::new(start);
    let log = RollingFile::builder()
        .settings(
            Settings::default()
                .rotate_at(RotateAt::LocalMidnight)
                .min_rotate_bytes(0)
                .min_rotate_age(Duration::ZERO),
        )
        .clock(clock.clone())
        .build(dir.join("app.log"))
        .unwrap();
    for _ in 0..days * 24 {
        (&log).write_all(b"tick\n").unwrap();
        clock.advance(Duration::from_secs(3600));
    }
    common::names(&dir.join("backups"))
}

/// Child half of `local_zone_honours_tz`: runs with `TZ` set by the parent.
#[cfg(unix)]
#[test]
#[ignore = "run by local_zone_honours_tz with TZ set"]
fn local_zone_child() {
    let tz: Tz = std::env::var("TZ").unwrap().parse().unwrap();
    let dir = std::env::var("MHM_LOG_DST_DIR").unwrap();
    for t in [
        Utc.with_ymd_and_hms(2018, 11, 3, 12, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2019, 2, 16, 12, 0, 0).unwrap(),
    ] {
        let nanos = t.timestamp_nanos_opt().unwrap();
        assert_eq!(
            Zone::Local.next_midnight(nanos),
            next_midnight_in(&tz, t).timestamp_nanos_opt().unwrap()
        );
    }
    // The writer, hour by hour across Sao Paulo's 2018 DST start (midnight skipped) and
    // 2019 DST end (23:00-24:00 twice): exactly one copy per day.
    for (start, days) in [
        (Utc.with_ymd_and_hms(2018, 11, 2, 12, 0, 0).unwrap(), 4),
        (Utc.with_ymd_and_hms(2019, 2, 15, 12, 0, 0).unwrap(), 4),
    ] {
        let dir = std::path::Path::new(&dir).join(start.format("%Y%m%d").to_string());
        let names = hourly_ticks_at_local_midnight(&dir, start, days);
        let first = start.with_timezone(&tz).date_naive();
        let expected: Vec<String> =
            (0..days).map(|d| format!("app.log.{}", first + Days::new(d))).collect();
        assert_eq!(names, expected, "{tz}");
    }
}

/// `TZ` sets the local zone on unix; Windows keeps its zone system-wide and ignores `TZ`,
/// so there the same promise is checked by `local_midnight_is_windows_own_midnight`.
#[cfg(unix)]
#[test]
fn local_zone_honours_tz() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "local_zone_child", "--test-threads=1"])
        .env("TZ", "America/Sao_Paulo")
        .env("MHM_LOG_DST_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
}

/// Windows' form of `local_zone_honours_tz`: the zone is the machine's (a test cannot set
/// it per process), so days are checked against Windows' own conversions between UTC and
/// local time, in whatever zone the machine has. `scripts/windows/test.sh` runs Wine in
/// Europe/Berlin, so both DST changes of two years are crossed; the test says when the
/// zone had no offset change at all, as then it proves less.
#[cfg(windows)]
#[test]
fn local_midnight_is_windows_own_midnight() {
    use chrono::{NaiveDate, NaiveDateTime, Timelike};
    use windows_sys::Win32::{
        Foundation::SYSTEMTIME,
        System::Time::{SystemTimeToTzSpecificLocalTime, TzSpecificLocalTimeToSystemTime},
    };

    fn to_st(t: NaiveDateTime) -> SYSTEMTIME {
        SYSTEMTIME {
            wYear: t.year() as u16,
            wMonth: t.month() as u16,
            wDayOfWeek: 0,
            wDay: t.day() as u16,
            wHour: t.hour() as u16,
            wMinute: t.minute() as u16,
            wSecond: t.second() as u16,
            wMilliseconds: 0,
        }
    }
    fn from_st(s: &SYSTEMTIME) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(s.wYear.into(), s.wMonth.into(), s.wDay.into())
            .unwrap()
            .and_hms_opt(s.wHour.into(), s.wMinute.into(), s.wSecond.into())
            .unwrap()
    }
    /// Windows' local time at the UTC instant `t` (the machine's zone, that year's rules).
    fn local(t: NaiveDateTime) -> NaiveDateTime {
        let mut out = to_st(t);
        // SAFETY: both pointers are to live SYSTEMTIMEs; NULL means the current zone.
        let ok = unsafe { SystemTimeToTzSpecificLocalTime(std::ptr::null(), &to_st(t), &mut out) };
        assert_ne!(ok, 0, "SystemTimeToTzSpecificLocalTime failed for {t}");
        from_st(&out)
    }
    /// Windows' UTC instant of the local time `t`.
    fn utc(t: NaiveDateTime) -> NaiveDateTime {
        let mut out = to_st(t);
        // SAFETY: as above.
        let ok = unsafe { TzSpecificLocalTimeToSystemTime(std::ptr::null(), &to_st(t), &mut out) };
        assert_ne!(ok, 0, "TzSpecificLocalTimeToSystemTime failed for {t}");
        from_st(&out)
    }

    let mut offsets = std::collections::BTreeSet::new();
    let mut t = Utc.with_ymd_and_hms(2018, 1, 1, 12, 0, 0).unwrap();
    while t.year() < 2020 {
        let here = local(t.naive_utc());
        offsets.insert((here - t.naive_utc()).num_minutes());
        let next_day = here.date() + Days::new(1);
        let expected = utc(next_day.and_hms_opt(0, 0, 0).unwrap()).and_utc();
        let nanos = t.timestamp_nanos_opt().unwrap();
        assert_eq!(
            Zone::Local.next_midnight(nanos),
            expected.timestamp_nanos_opt().unwrap(),
            "after {t} (local {here})"
        );
        t += chrono::Duration::hours(7); // every hour of the day, over the years
    }
    println!("local offsets seen, in minutes: {offsets:?}");

    // The writer, hour by hour across the year's two changes: one copy per local day,
    // named by Windows' local date.
    let dir = tempfile::tempdir().unwrap();
    for start in [
        Utc.with_ymd_and_hms(2019, 3, 29, 12, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2019, 10, 25, 12, 0, 0).unwrap(),
    ] {
        let dir = dir.path().join(start.format("%Y%m%d").to_string());
        let names = hourly_ticks_at_local_midnight(&dir, start, 4);
        let first = local(start.naive_utc()).date();
        let expected: Vec<String> =
            (0..4).map(|d| format!("app.log.{}", first + Days::new(d))).collect();
        assert_eq!(names, expected);
    }
    // Under Wine the zone follows `TZ` when Wine starts; on a real machine it is the
    // machine's. A zone without DST still checks the offset, but not a change.
    if std::env::var_os("MHM_REQUIRE_DST_ZONE").is_some() {
        assert!(offsets.len() > 1, "the zone had one offset only: {offsets:?}");
    }
}
