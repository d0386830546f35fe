//! The rotation rules of SPEC.md section 1, one test each, with a manual clock.

// `io::Write` on a `RollingFile`: each `write` call is one event, so these tests write
// whole lines with `write_all` (`writeln!` would make one event per formatted piece).

mod common;

use std::{fs, io::Write, time::Duration};

use chrono::{NaiveDate, Utc};
use common::{copies, history, names, utc};
use mhm_log::{ManualClock, RollingFile, RotateAt, Settings};

const LINE: &str = "2026-01-01 00:00:00,000 - app - INFO - a line of about a hundred bytes, padded out to make the arithmetic easy ...\n";

fn utc_settings() -> Settings {
    Settings::default().rotate_at(RotateAt::UtcMidnight)
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[test]
fn a_log_written_every_minute_rotates_right_after_midnight() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 12, 0, 0));
    let mut log = common::open(dir.path().join("app.log"), utc_settings(), &clock);
    let mut minute = 0;
    while clock.now() < utc(2026, 1, 2, 0, 0, 0) {
        writeln!(log, "minute {minute}").unwrap();
        clock.advance(Duration::from_secs(60));
        minute += 1;
    }
    assert!(names(&dir.path().join("backups")).is_empty(), "nothing rotates before midnight");
    writeln!(log, "first after midnight").unwrap();
    assert_eq!(names(&dir.path().join("backups")), ["app.log.2026-01-01"]);
    let copy = fs::read_to_string(dir.path().join("backups/app.log.2026-01-01")).unwrap();
    assert!(copy.starts_with("minute 0\n") && copy.ends_with(&format!("minute {}\n", minute - 1)));
    assert_eq!(fs::read_to_string(dir.path().join("app.log")).unwrap(), "first after midnight\n");
    assert_eq!(log.stats().rotations, 1);
}

#[test]
fn a_log_started_at_2330_rotates_at_the_first_event_after_0030() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 23, 30, 0));
    let log = common::open(dir.path().join("app.log"), utc_settings(), &clock);
    let mut w = &log;
    for _ in 0..100 {
        w.write_all(LINE.as_bytes()).unwrap(); // 11 KB: past the size gate
    }
    // Midnight has passed, but the file is only 30 minutes old at 00:00, and 59:59 at 00:29:59.
    clock.set(utc(2026, 1, 2, 0, 0, 0));
    w.write_all(b"at midnight\n").unwrap();
    clock.set(utc(2026, 1, 2, 0, 29, 59));
    w.write_all(b"at 00:29:59\n").unwrap();
    assert_eq!(log.stats().rotations, 0);
    assert!(names(&dir.path().join("backups")).is_empty());
    clock.set(utc(2026, 1, 2, 0, 30, 0));
    w.write_all(b"at 00:30\n").unwrap();
    assert_eq!(
        names(&dir.path().join("backups")),
        ["app.log.2026-01-01"],
        "named by the day of its first event"
    );
    let copy = fs::read_to_string(dir.path().join("backups/app.log.2026-01-01")).unwrap();
    assert!(copy.ends_with("at midnight\nat 00:29:59\n"));
    assert_eq!(fs::read_to_string(dir.path().join("app.log")).unwrap(), "at 00:30\n");
    // The new file was started at 00:30 on the 2nd: its deadline is the 3rd's midnight, not a stale one.
    clock.set(utc(2026, 1, 2, 23, 59, 59));
    for _ in 0..100 {
        w.write_all(LINE.as_bytes()).unwrap();
    }
    assert_eq!(log.stats().rotations, 1);
    clock.set(utc(2026, 1, 3, 0, 0, 1));
    w.write_all(b"day three\n").unwrap();
    assert_eq!(names(&dir.path().join("backups")), ["app.log.2026-01-01", "app.log.2026-01-02"]);
}

#[test]
fn a_small_log_stays_due_and_rotates_once_it_passes_the_size_gate() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let log = common::open(dir.path().join("app.log"), utc_settings(), &clock);
    let mut w = &log;
    w.write_all(b"small\n").unwrap();
    clock.set(utc(2026, 1, 2, 9, 0, 0));
    // Due since midnight, but under 5 KiB: keeps growing in place.
    let mut size = 6;
    while size + LINE.len() < 5120 {
        w.write_all(LINE.as_bytes()).unwrap();
        size += LINE.len();
    }
    w.write_all(LINE.as_bytes()).unwrap();
    assert_eq!(log.stats().rotations, 0, "{size} bytes before this event: still under the gate");
    w.write_all(LINE.as_bytes()).unwrap();
    assert_eq!(log.stats().rotations, 1, "rotates at the first event once 5 KiB is reached");
    assert_eq!(names(&dir.path().join("backups")), ["app.log.2026-01-01"]);
    assert!(fs::metadata(dir.path().join("backups/app.log.2026-01-01")).unwrap().len() >= 5120);
}

#[test]
fn the_size_trigger_rotates_before_the_event_that_would_pass_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let settings =
        utc_settings().max_bytes(1000).min_rotate_bytes(0).min_rotate_age(Duration::ZERO);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let mut w = &log;
    for i in 0..25 {
        w.write_all(format!("{i:039}\n").as_bytes()).unwrap(); // 40 bytes: 25 lines fill exactly 1000
    }
    assert_eq!(log.stats().rotations, 0, "exactly at the limit is not past it");
    w.write_all(b"x\n").unwrap();
    assert_eq!(log.stats().rotations, 1);
    assert_eq!(fs::metadata(dir.path().join("backups/app.log.2026-01-01")).unwrap().len(), 1000);
    assert_eq!(fs::read_to_string(dir.path().join("app.log")).unwrap(), "x\n");
}

#[test]
fn two_rotations_on_one_day_keep_both_copies_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 1, 0, 0));
    let settings = utc_settings().max_bytes(50).min_rotate_bytes(0);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let mut w = &log;
    for i in 0..30 {
        w.write_all(format!("event {i:04}\n").as_bytes()).unwrap();
        clock.advance(Duration::from_secs(20 * 60)); // ages pass the 1-hour gate every 3 events
    }
    let backups = copies(&dir.path().join("backups"), "app.log");
    assert!(backups.len() >= 3, "{backups:?}");
    let first_day: Vec<_> = backups
        .iter()
        .filter(|(n, _)| n.date == Some(day(2026, 1, 1)))
        .map(|(n, _)| n.to_string())
        .collect();
    assert!(
        first_day.len() >= 2
            && first_day[0] == "app.log.2026-01-01"
            && first_day[1] == "app.log.2026-01-01.1",
        "{first_day:?}"
    );
    // Date plus number order is write order: the history reads back 0..30 in sequence.
    let text: String = history(dir.path(), "app.log").into_iter().map(|(_, t)| t).collect();
    let expected: String = (0..30).map(|i| format!("event {i:04}\n")).collect();
    assert_eq!(text, expected);
}

#[test]
fn a_taken_name_gets_the_next_number_and_nothing_is_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("backups")).unwrap();
    fs::create_dir_all(dir.path().join("archive")).unwrap();
    fs::write(dir.path().join("backups/app.log.2026-01-01"), "older copy\n").unwrap();
    fs::write(dir.path().join("archive/app.log.2026-01-01.1.gz"), "not even gzip").unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let settings = utc_settings().max_bytes(10).min_rotate_bytes(0).min_rotate_age(Duration::ZERO);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let mut w = &log;
    w.write_all(b"first!!!\n").unwrap();
    w.write_all(b"second!!\n").unwrap();
    assert_eq!(names(&dir.path().join("backups")), ["app.log.2026-01-01", "app.log.2026-01-01.2"]);
    assert_eq!(
        fs::read_to_string(dir.path().join("backups/app.log.2026-01-01")).unwrap(),
        "older copy\n"
    );
    assert_eq!(
        fs::read_to_string(dir.path().join("backups/app.log.2026-01-01.2")).unwrap(),
        "first!!!\n"
    );
    assert_eq!(
        fs::read(dir.path().join("archive/app.log.2026-01-01.1.gz")).unwrap(),
        b"not even gzip"
    );
}

#[test]
fn a_restart_resumes_the_active_file_and_its_age() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // Near real time: the age after a restart comes from the file's creation time.
    let clock = ManualClock::new(Utc::now());
    let settings = utc_settings().rotate_at(RotateAt::Never).max_bytes(100).min_rotate_bytes(0);
    {
        let log = common::open(&path, settings.clone(), &clock);
        let mut w = &log;
        for _ in 0..5 {
            w.write_all(&[b'a'; 39]).unwrap();
            w.write_all(b"\n").unwrap();
        }
        assert_eq!(log.stats().rotations, 0, "younger than an hour");
    }
    let created = fs::metadata(&path).unwrap().created();
    clock.advance(Duration::from_secs(2 * 3600));
    let log = common::open(&path, settings, &clock);
    let mut w = &log;
    w.write_all(b"after restart\n").unwrap();
    if created.is_ok() {
        assert_eq!(log.stats().rotations, 1, "the age survived the restart");
        assert_eq!(fs::read_to_string(&path).unwrap(), "after restart\n");
        let backups = copies(&dir.path().join("backups"), "app.log");
        assert_eq!(
            fs::metadata(&backups[0].1).unwrap().len(),
            200,
            "the resumed file was appended to, then rotated whole"
        );
    } else {
        // Without creation times the mtime stands in: it also says two hours here.
        assert_eq!(log.stats().rotations, 1);
    }
}

#[test]
fn disable_log_rotation_turns_both_triggers_off() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let settings = utc_settings()
        .max_bytes(10)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .rotation_disabled(true);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let mut w = &log;
    for _ in 0..10 {
        w.write_all(b"0123456789\n").unwrap();
        clock.advance(Duration::from_secs(86_400));
    }
    assert_eq!(log.stats().rotations, 0);
    assert!(!dir.path().join("backups").exists());
    assert_eq!(fs::metadata(dir.path().join("app.log")).unwrap().len(), 110);
}

#[test]
fn overflow_moves_to_archive_compressed_and_prunes_by_count_and_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let settings = utc_settings()
        .max_bytes(10)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(2)
        .archive_count(3)
        .archive_max_age(Duration::from_secs(6 * 86_400))
        .compress(true);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let mut w = &log;
    for i in 0..8 {
        // One rotation a day: day N's copy holds "day N".
        w.write_all(format!("day {i} ......\n").as_bytes()).unwrap();
        clock.advance(Duration::from_secs(86_400));
    }
    w.write_all(b"last\n").unwrap();
    log.maintain_now();
    // 8 copies made: the newest 2 stay in backups, the 3 before them in archive (gzipped),
    // the 3 oldest are deleted (beyond 3 in archive).
    assert_eq!(names(&dir.path().join("backups")), ["app.log.2026-01-07", "app.log.2026-01-08"]);
    assert_eq!(
        names(&dir.path().join("archive")),
        ["app.log.2026-01-04.gz", "app.log.2026-01-05.gz", "app.log.2026-01-06.gz"]
    );
    assert_eq!(
        common::read_copy(&dir.path().join("archive/app.log.2026-01-05.gz")),
        "day 4 ......\n"
    );
    // Age: at 2026-01-11 00:00 the 01-04 copy is 7 days old (6 is the limit), 01-05 exactly 6: both go.
    clock.set(utc(2026, 1, 11, 0, 0, 0));
    log.maintain_now();
    assert_eq!(names(&dir.path().join("archive")), ["app.log.2026-01-06.gz"]);
    let stats = log.stats();
    assert_eq!(stats.rotations, 8);
    assert_eq!(stats.maintenance_errors, 0, "{stats:?}");
    // Five copies are gone; how many passed through archive/ first depends on when the
    // background thread ran, but never fewer than the three still there or have been.
    assert_eq!(stats.copies_deleted, 5, "{stats:?}");
    assert!((3..=6).contains(&stats.copies_archived), "{stats:?}");
}

#[test]
fn copies_go_to_configured_folders_resolved_against_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let settings = utc_settings()
        .max_bytes(10)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(0)
        .root(dir.path())
        .backup_dir("logs/backups")
        .archive_dir("logs/archive");
    let log = common::open(dir.path().join("logs/sub/app.log"), settings, &clock);
    let mut w = &log;
    w.write_all(b"0123456789\n").unwrap();
    w.write_all(b"next\n").unwrap();
    log.maintain_now();
    assert_eq!(log.backup_dir(), dir.path().join("logs/backups"));
    assert_eq!(names(&dir.path().join("logs/archive")), ["app.log.2026-01-01"]);
    assert!(names(&dir.path().join("logs/backups")).is_empty());
}

#[test]
fn a_partial_last_line_left_by_a_kill_is_ended_on_restart() {
    // regression: a writer killed inside write(2) left "...payl" and the next start wrote
    // its first event onto the end of it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    fs::write(&path, "whole line\nhalf a li").unwrap();
    let log = RollingFile::builder().settings(utc_settings()).build(&path).unwrap();
    (&log).write_all(b"next event\n").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "whole line\nhalf a li\nnext event\n");
}

#[test]
fn a_second_build_on_one_path_merges_its_settings_and_says_so() {
    // SPEC 9: the file rotates when any handle asks (the smallest size limit, midnight if
    // any asks) and keeps the most any asks for; each disagreement is reported once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let open = |s: Settings| {
        RollingFile::builder()
            .settings(s.min_rotate_bytes(0).min_rotate_age(Duration::ZERO))
            .clock(clock.clone())
            .build_with_notes(&path)
            .unwrap()
    };
    let (first, notes) = open(utc_settings().rotate_at(RotateAt::Never).max_bytes(u64::MAX / 2));
    assert!(notes.is_empty());
    let (second, notes) = open(utc_settings().max_bytes(1000).backup_count(9));
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("size limit (none in force, 1000 asked)"), "{notes:?}");
    assert!(notes[1].contains("time trigger"), "{notes:?}");
    assert!(notes[2].contains("backup_count (7 in force, 9 asked)"), "{notes:?}");
    // The same again: nothing new to say but the zone (a writer without a time trigger
    // counts its days in the local zone, and it stays).
    let (third, notes) = open(utc_settings().max_bytes(1000).backup_count(9));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("zone of midnight"), "{notes:?}");
    let (fourth, notes) = open(utc_settings().max_bytes(1000).backup_count(9));
    assert!(notes.is_empty(), "said once: {notes:?}");
    drop(fourth);
    drop(third);
    // Through the first handle too: the size limit is the second's.
    for _ in 0..25 {
        (&first).write_all(LINE.as_bytes()).unwrap();
    }
    let copies = names(&dir.path().join("backups"));
    let per_copy = 1000 / LINE.len(); // lines that fit in the limit
    assert_eq!(copies.len(), (25 - 1) / per_copy, "{copies:?}");
    for c in &copies {
        assert!(fs::metadata(dir.path().join("backups").join(c)).unwrap().len() <= 1000);
    }
    // And midnight (local: past it in every zone), which only the second asked for.
    clock.set(utc(2026, 1, 2, 15, 0, 0));
    (&second).write_all(LINE.as_bytes()).unwrap();
    assert_eq!(names(&dir.path().join("backups")).len(), copies.len() + 1);
    assert_eq!(first.stats().settings_merged, 2, "the second and third builds");
}

/// Issue 21: after the clock steps back, a file's start lies in the future and its age
/// is unknown. It counts as started when the step was seen, so the hour's gate holds for
/// an hour, as for a new file, not until the clock catches up (a day here).
#[test]
fn after_the_clock_steps_back_the_size_trigger_waits_an_hour_not_a_day() {
    use mhm_log::WriteMode;
    for mode in [WriteMode::Direct, WriteMode::Buffered, WriteMode::Staged] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(utc(2026, 1, 10, 12, 0, 0));
        let settings = utc_settings()
            .write_mode(mode)
            .buffer_capacity(1024)
            .max_bytes(4096)
            .min_rotate_bytes(0);
        let log = common::open(dir.path().join("app.log"), settings, &clock);
        let mut w = &log;
        w.write_all(b"before the step\n").unwrap();
        clock.set(utc(2026, 1, 9, 12, 0, 0)); // a day back
        for _ in 0..100 {
            w.write_all(LINE.as_bytes()).unwrap();
        }
        // An hour and a second after the step, well before the clock is back at the start.
        clock.advance(Duration::from_secs(3601));
        w.write_all(LINE.as_bytes()).unwrap();
        log.flush().unwrap();
        let backups = names(&dir.path().join("backups"));
        assert!(!backups.is_empty(), "{mode:?}: no rotation an hour after the step");
        assert!(fs::metadata(dir.path().join("app.log")).unwrap().len() <= 4096, "{mode:?}");
        // Nothing lost on the way.
        let text: String = history(dir.path(), "app.log").into_iter().map(|(_, t)| t).collect();
        assert_eq!(text.matches(LINE).count(), 101, "{mode:?}");
    }
}
