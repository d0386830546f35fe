//! The routing layer through a real `tracing_subscriber` registry: line format, routes,
//! the errors file, JSON lines, and the buffered mode's flush rules.

mod common;

use std::{fs, io::Write, time::Duration};

use common::utc;
use mhm_log::{Format, LogFiles, ManualClock, RotateAt, Settings, WriteMode};
use tracing_subscriber::prelude::*;

fn settings() -> Settings {
    Settings::default().rotate_at(RotateAt::UtcMidnight)
}

#[test]
fn mhm_format_routes_by_target_and_copies_warnings_to_errors_log() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 11, 26, 21, 0, 0) + chrono::Duration::milliseconds(7));
    let (layer, guard) = LogFiles::builder(dir.path())
        .settings(settings())
        .clock(clock.clone())
        .route("mhm::discord", "discord.log")
        .route("mhm::discord::voice", "voice.log")
        .default_file("app.log")
        .errors_file("errors.log")
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "mhm::discord", user = 42, name = "bo\"b", ok = true, "connected");
        tracing::info!(target: "mhm::discord::voice", "joined");
        tracing::info!(target: "mhm::discordx", "not discord");
        tracing::warn!(target: "mhm::core", ratio = 0.5, "slow reply");
        tracing::error!(target: "mhm::discord", err = ?std::io::ErrorKind::NotFound, "lost {}", "it");
        tracing::debug!("plain");
    });
    drop(guard);
    let read = |f: &str| fs::read_to_string(dir.path().join(f)).unwrap();
    assert_eq!(
        read("discord.log"),
        "2026-11-26 21:00:00,007 - mhm::discord - INFO - connected | {\"user\": 42, \"name\": \"bo\\\"b\", \"ok\": true}\n\
         2026-11-26 21:00:00,007 - mhm::discord - ERROR - lost it | {\"err\": \"NotFound\"}\n"
    );
    assert_eq!(
        read("voice.log"),
        "2026-11-26 21:00:00,007 - mhm::discord::voice - INFO - joined\n"
    );
    let target = module_path!();
    assert_eq!(
        read("app.log"),
        format!(
            "2026-11-26 21:00:00,007 - mhm::discordx - INFO - not discord\n\
             2026-11-26 21:00:00,007 - mhm::core - WARNING - slow reply | {{\"ratio\": 0.5}}\n\
             2026-11-26 21:00:00,007 - {target} - DEBUG - plain\n"
        )
    );
    assert_eq!(
        read("errors.log"),
        "2026-11-26 21:00:00,007 - mhm::core - WARNING - slow reply | {\"ratio\": 0.5}\n\
         2026-11-26 21:00:00,007 - mhm::discord - ERROR - lost it | {\"err\": \"NotFound\"}\n"
    );
}

#[test]
fn json_lines_parse_and_carry_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 11, 26, 21, 0, 1));
    let (layer, guard) = LogFiles::builder(dir.path())
        .settings(settings())
        .clock(clock)
        .format(Format::Json)
        .build()
        .unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!(target: "mhm", n = -3, big = u64::MAX, s = "tab\there", "multi\nline \"quoted\"");
        tracing::info!(target: "mhm", "no fields");
    });
    drop(guard);
    let text = fs::read_to_string(dir.path().join("app.log")).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["timestamp"], "2026-11-26T21:00:01.000+00:00");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["target"], "mhm");
    assert_eq!(lines[0]["message"], "multi\nline \"quoted\"");
    assert_eq!(lines[0]["fields"], serde_json::json!({"n": -3, "big": u64::MAX, "s": "tab\there"}));
    assert!(lines[1].get("fields").is_none());
}

#[test]
fn buffered_mode_flushes_at_once_on_error_on_the_timer_and_on_guard_drop() {
    flushes_at_once_on_error_on_the_timer_and_on_guard_drop(WriteMode::Buffered);
}

#[test]
fn staged_mode_flushes_at_once_on_error_on_the_timer_and_on_guard_drop() {
    flushes_at_once_on_error_on_the_timer_and_on_guard_drop(WriteMode::Staged);
}

#[test]
fn staged_mode_an_error_on_one_thread_writes_what_every_thread_staged() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    let s = settings().write_mode(WriteMode::Staged).flush_interval(Duration::from_secs(3600));
    let clock = ManualClock::new(utc(2026, 11, 26, 21, 0, 0));
    let (layer, guard) = LogFiles::builder(dir.path()).settings(s).clock(clock).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let d = dispatch.clone();
    std::thread::spawn(move || {
        tracing::dispatcher::with_default(&d, || tracing::info!("staged on another thread"))
    })
    .join()
    .unwrap();
    assert_eq!(fs::read_to_string(&app).unwrap(), "", "held in the other thread's stage");
    tracing::dispatcher::with_default(&dispatch, || tracing::error!("urgent"));
    let text = fs::read_to_string(&app).unwrap();
    assert!(text.contains("staged on another thread") && text.contains("urgent"), "{text}");
    drop(guard);
}

fn flushes_at_once_on_error_on_the_timer_and_on_guard_drop(mode: WriteMode) {
    let clock = ManualClock::new(utc(2026, 11, 26, 21, 0, 0));
    let hour = settings().write_mode(mode).flush_interval(Duration::from_secs(3600));

    // An hour's flush interval: nothing but ERROR, or the guard, writes the buffer out.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    let (layer, guard) =
        LogFiles::builder(dir.path()).settings(hour.clone()).clock(clock.clone()).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("held in memory");
        assert_eq!(fs::read_to_string(&app).unwrap(), "", "INFO waits in the buffer");
        tracing::error!("urgent");
        let text = fs::read_to_string(&app).unwrap();
        assert!(
            text.contains("held in memory") && text.contains("urgent"),
            "ERROR flushes everything before it"
        );
        tracing::info!("at exit");
        assert!(!fs::read_to_string(&app).unwrap().contains("at exit"));
    });
    drop(guard);
    assert!(fs::read_to_string(&app).unwrap().contains("at exit"), "the guard's drop flushes");

    // A 50 ms interval: the background thread writes the buffer out on its own.
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.log");
    let fast = hour.flush_interval(Duration::from_millis(50));
    let (layer, guard) = LogFiles::builder(dir.path()).settings(fast).clock(clock).build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info!("timer")
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !fs::read_to_string(&app).unwrap().contains("timer") {
        assert!(std::time::Instant::now() < deadline, "the timed flush never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(guard);
}

#[test]
fn rolling_file_is_a_make_writer_for_fmt() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let s = settings().max_bytes(100).min_rotate_bytes(0).min_rotate_age(Duration::ZERO);
    let app = common::open(dir.path().join("app.log"), s, &clock);
    let subscriber =
        tracing_subscriber::fmt().with_writer(app.clone()).with_ansi(false).without_time().finish();
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..20 {
            tracing::info!(i, "event");
        }
    });
    let stats = app.stats();
    assert_eq!(stats.events_written, 20);
    assert!(stats.rotations >= 2, "{stats:?}");
    let all: String = common::history(dir.path(), "app.log").into_iter().map(|(_, t)| t).collect();
    let seen: Vec<usize> =
        all.lines().map(|l| l.rsplit("i=").next().unwrap().parse().unwrap()).collect();
    assert_eq!(seen, (0..20).collect::<Vec<_>>(), "every event once, whole, in order:\n{all}");
}

#[test]
fn bad_file_names_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = LogFiles::builder(dir.path()).default_file("../escape.log").build().unwrap_err();
    assert!(err.to_string().contains("plain file name"), "{err}");
}

#[test]
fn handles_on_one_path_in_one_process_share_one_writer() {
    let dir = tempfile::tempdir().unwrap();
    let first = mhm_log::RollingFile::new(dir.path().join("app.log")).unwrap();
    // Another spelling of the same path, another layer: the same writer.
    let second = mhm_log::RollingFile::new(dir.path().join(".").join("app.log")).unwrap();
    let (layer, guard) = LogFiles::builder(dir.path()).errors_file("app.log").build().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::warn!("through the layer");
    });
    drop(guard);
    writeln!(&second, "through the second handle").unwrap();
    let stats = first.stats();
    // The WARN event is written twice (default file and errors file are both app.log).
    assert_eq!(stats.events_written, 3, "{stats:?}");
    drop((first, second));
    // The last handle gone, a new build opens the log afresh.
    let again = mhm_log::RollingFile::new(dir.path().join("app.log")).unwrap();
    assert_eq!(again.stats().events_written, 0);
}
