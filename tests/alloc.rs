//! No allocation per event once warm: a counting allocator around the system one counts
//! this thread's allocations while events go through the layer and the writer.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use chrono::{TimeZone, Utc};
use mhm_log::{LogFiles, ManualClock, RollingFile, Settings, WriteMode};
use tracing_subscriber::prelude::*;

struct Counting;

thread_local! {
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = COUNT.with(Cell::get);
    f();
    COUNT.with(Cell::get) - before
}

#[test]
fn the_layer_does_not_allocate_per_event_once_warm() {
    for mode in [WriteMode::Direct, WriteMode::Buffered, WriteMode::Staged] {
        let dir = tempfile::tempdir().unwrap();
        // A clock a millisecond further each event: the 11,000 events span 11 seconds of
        // one minute, so the per-second timestamp text is rebuilt ten times (the zone's
        // offset is looked up once a minute, at warm-up).
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap());
        let (layer, guard) = LogFiles::builder(dir.path())
            .settings(Settings::default().write_mode(mode))
            .clock(clock.clone())
            .errors_file("errors.log")
            .build()
            .unwrap();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let event = |i: u64| {
                tracing::warn!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12.5, "message delivered {}", i);
                clock.advance(std::time::Duration::from_millis(1));
            };
            for i in 0..1000 {
                event(i); // warm: buffers grow to the longest line
            }
            let n = allocations_during(|| {
                for i in 0..10_000 {
                    event(i);
                }
            });
            assert_eq!(n, 0, "{mode:?}: {n} allocations in 10,000 events");
        });
        drop(guard);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app.log")).unwrap().lines().count(),
            11_000
        );
    }
}

#[test]
fn the_writer_does_not_allocate_per_event_once_warm() {
    for mode in [WriteMode::Buffered, WriteMode::Staged] {
        writer_without_allocation(mode);
    }
}

fn writer_without_allocation(mode: WriteMode) {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let log = RollingFile::builder()
        .settings(Settings::default().write_mode(mode))
        .build(dir.path().join("app.log"))
        .unwrap();
    let line = b"2026-11-26 21:00:00,000 - mhm - INFO - a line\n";
    (&log).write_all(line).unwrap();
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            (&log).write_all(line).unwrap();
        }
    });
    assert_eq!(n, 0, "{mode:?}");
}
