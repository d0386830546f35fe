//! Shutdown (SPEC.md section 1): dropping the last handle, or the guard, writes out every
//! buffered event and finishes the maintenance the rotations of this run asked for, so a
//! process that rotated and exits leaves at most the ceiling on disk.

mod common;

use std::{fs, io::Write, path::Path, time::Duration};

use common::{history, names, utc};
use mhm_log::{LogFiles, ManualClock, RotateAt, Settings, WriteMode};
use tracing_subscriber::prelude::*;

const BACKUPS: usize = 2;
const ARCHIVE: usize = 2;

/// A rotation every other event, two copies kept in each folder.
fn settings(compress: bool) -> Settings {
    Settings::default()
        .rotate_at(RotateAt::UtcMidnight)
        .max_bytes(2_000)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(BACKUPS)
        .archive_count(ARCHIVE)
        .compress(compress)
}

fn assert_at_most_the_ceiling(dir: &Path, what: &str) {
    let backups = names(&dir.join("backups"));
    let archive = names(&dir.join("archive"));
    assert!(
        backups.len() <= BACKUPS && archive.len() <= ARCHIVE,
        "{what}: more than the ceiling right after shutdown: backups {backups:?}, archive {archive:?}"
    );
}

#[test]
fn dropping_the_last_handle_finishes_the_maintenance_due() {
    // regression: 17 rotations, then the last handle dropped: 14 copies stayed in
    // backups/ until some later start (the worker stopped without the pass the last
    // rotations asked for).
    for (compress, mode) in
        [(false, WriteMode::Direct), (true, WriteMode::Direct), (true, WriteMode::Buffered)]
    {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
        let log =
            common::open(dir.path().join("app.log"), settings(compress).write_mode(mode), &clock);
        let line = format!("{}\n", "x".repeat(999));
        for _ in 0..40 {
            (&log).write_all(line.as_bytes()).unwrap();
        }
        (&log).write_all(b"the last line\n").unwrap();
        assert!(log.stats().rotations >= 17, "{:?}", log.stats());
        drop(log);
        let what = format!("compress {compress}, {mode:?}");
        assert_at_most_the_ceiling(dir.path(), &what);
        let kept = history(dir.path(), "app.log");
        assert!(
            kept.last().unwrap().1.ends_with("the last line\n"),
            "{what}: buffered events written"
        );
    }
}

#[test]
fn dropping_the_guard_finishes_the_maintenance_due_while_the_layer_lives() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 9, 0, 0));
    let (layer, guard) = LogFiles::builder(dir.path())
        .settings(settings(true).write_mode(WriteMode::Buffered))
        .clock(clock.clone())
        .build()
        .unwrap();
    // The subscriber (and the layer's handles) outlive the guard, as with a global one.
    let subscriber = tracing_subscriber::registry().with(layer);
    let dispatch = tracing::Dispatch::new(subscriber);
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..40 {
            tracing::info!(target: "app", "event {i} {}", "x".repeat(999));
        }
    });
    drop(guard);
    assert_at_most_the_ceiling(dir.path(), "guard dropped");
    let text = fs::read_to_string(dir.path().join("app.log")).unwrap();
    assert!(text.contains("event 39 "), "buffered events written at the guard's drop");
    drop(dispatch);
}
