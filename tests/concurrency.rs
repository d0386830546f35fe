//! Nothing lost, nothing torn: many threads, tens of thousands of events, a tiny size
//! limit forcing hundreds of rotations (and compressions) while the clock moves across
//! midnights; then every line is found exactly once, whole, in write order per thread.

mod common;

use std::{
    io::Write,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::Duration,
};

use common::utc;
use mhm_log::{LogFiles, ManualClock, RollingFile, RotateAt, Settings, WriteMode};
use tracing_subscriber::prelude::*;

const THREADS: usize = 4;
const EVENTS: usize = 10_000;

fn settings(mode: WriteMode) -> Settings {
    Settings::default()
        .rotate_at(RotateAt::UtcMidnight)
        .max_bytes(4096)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(3)
        .archive_count(1_000_000)
        .archive_max_age(Duration::from_secs(100_000 * 86_400))
        .compress(true)
        .write_mode(mode)
        .buffer_capacity(1024)
}

/// Moves the clock forward ten minutes at a time until told to stop.
fn spin_clock(clock: ManualClock, stop: Arc<AtomicBool>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            clock.advance(Duration::from_secs(600));
            thread::sleep(Duration::from_micros(200));
        }
    })
}

/// Checks the history: every `t<thread> <seq>` line exactly once, whole, in order.
fn check(
    dir: &std::path::Path,
    log: &str,
    pattern: impl Fn(&str) -> Option<(usize, usize)>,
) -> usize {
    let history = common::history(dir, log);
    let mut next = [0usize; THREADS];
    for (file, text) in &history {
        assert!(text.is_empty() || text.ends_with('\n'), "{file} ends in a torn line");
        for line in text.lines() {
            let (t, seq) =
                pattern(line).unwrap_or_else(|| panic!("{file}: malformed line {line:?}"));
            assert_eq!(seq, next[t], "{file}: thread {t} out of order or duplicated at {line:?}");
            next[t] += 1;
        }
    }
    assert_eq!(next, [EVENTS; THREADS], "every event exactly once");
    history.len()
}

fn run_rolling_file(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 0, 0, 0));
    let log = common::open(dir.path().join("app.log"), settings(mode), &clock);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = spin_clock(clock, Arc::clone(&stop));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                let mut line = Vec::new();
                for seq in 0..EVENTS {
                    line.clear();
                    writeln!(line, "t{t} {seq:06} the quick brown fox").unwrap();
                    (&log).write_all(&line).unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    flushed_without_a_failure(&log);
    let files = check(dir.path(), "app.log", |line| {
        let rest = line.strip_prefix('t')?.strip_suffix(" the quick brown fox")?;
        let (t, seq) = rest.split_once(' ')?;
        Some((t.parse().ok()?, seq.parse().ok()?))
    });
    assert!(files > 100);
    assert!(common::names(&dir.path().join("archive")).iter().any(|n| n.ends_with(".gz")));
}

#[test]
fn rolling_file_direct_loses_nothing_across_rotations() {
    run_rolling_file(WriteMode::Direct);
}

#[test]
fn rolling_file_buffered_loses_nothing_across_rotations() {
    run_rolling_file(WriteMode::Buffered);
}

#[test]
fn rolling_file_staged_loses_nothing_across_rotations() {
    run_rolling_file(WriteMode::Staged);
}

#[test]
fn layer_buffered_loses_nothing_across_rotations() {
    run_layer(WriteMode::Buffered);
}

#[test]
fn layer_staged_loses_nothing_across_rotations() {
    run_layer(WriteMode::Staged);
}

fn run_layer(mode: WriteMode) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 0, 0, 0));
    let (layer, guard) = LogFiles::builder(dir.path())
        .settings(settings(mode))
        .clock(clock.clone())
        .errors_file("errors.log")
        .build()
        .unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = spin_clock(clock, Arc::clone(&stop));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let dispatch = dispatch.clone();
            thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for seq in 0..EVENTS {
                        if seq % 10 == 0 {
                            tracing::warn!(target: "mhm", t, seq, "event");
                        } else {
                            tracing::info!(target: "mhm", t, seq, "event");
                        }
                    }
                })
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    for f in guard.files() {
        f.maintain_now();
    }
    drop(dispatch);
    drop(guard);
    let parse = |line: &str| {
        let fields = line.split_once(" - mhm - ")?.1.split_once(" - event | {\"t\": ")?.1;
        let (t, seq) = fields.strip_suffix('}')?.split_once(", \"seq\": ")?;
        Some((t.parse().ok()?, seq.parse().ok()?))
    };
    check(dir.path(), "app.log", parse);
    // errors.log got every tenth event of each thread, in order.
    let errors: String =
        common::history(dir.path(), "errors.log").into_iter().map(|(_, t)| t).collect();
    let mut next = [0usize; THREADS];
    for line in errors.lines() {
        let (t, seq) = parse(line).unwrap();
        assert_eq!(seq, next[t] * 10);
        next[t] += 1;
    }
    assert_eq!(next, [EVENTS / 10; THREADS]);
}

/// Write-behind: a full buffer handed to the background thread reaches the file by itself,
/// with no later event, flush or drop to push it (the flush interval here is an hour), and
/// whole, in order; the events after it wait in the new buffer.
#[test]
fn a_full_buffer_reaches_the_file_with_nothing_after_it() {
    // 78 lines fill 4056 of the 4096 bytes; the 79th does not fit, so the 78 are handed off.
    the_background_thread_writes_78_lines_by_itself(WriteMode::Buffered, 79);
}

/// Staged mode: a stage holding about a buffer (4096 - 64 bytes here) asks the background
/// thread to write it; the thread that staged it does not wait for it.
#[test]
fn a_stage_past_its_threshold_is_drained_by_the_background_thread() {
    // 77 lines stage 4004 bytes, under the threshold; the 78th crosses it (4056 bytes).
    the_background_thread_writes_78_lines_by_itself(WriteMode::Staged, 78);
}

/// Writes `before_wait` lines of 52 bytes into a 4 KiB buffer that is never flushed on a
/// timer, then waits for the first 78 to reach the file (the background thread's doing
/// alone), checks that line 79 waits in memory, and that a flush then writes it.
fn the_background_thread_writes_78_lines_by_itself(mode: WriteMode, before_wait: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let log =
        RollingFile::builder().settings(common::held_in_memory(mode, 4096)).build(&path).unwrap();
    // 52 bytes each.
    let line = |i: usize| format!("event {i:04} {}\n", "x".repeat(40));
    for i in 0..before_wait {
        (&log).write_all(line(i).as_bytes()).unwrap();
    }
    let first: String = (0..78).map(line).collect();
    wait_for_len(&path, first.len());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "by the background thread");
    for i in before_wait..79 {
        (&log).write_all(line(i).as_bytes()).unwrap();
    }
    thread::sleep(Duration::from_millis(50));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "line 79 waits in memory");
    log.flush().unwrap();
    let all: String = (0..79).map(line).collect();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), all);
    assert_eq!(log.stats().lost_events, 0);
    assert_eq!(log.stats().events_written, 79);
}

/// Staged mode at its edges: a buffer of a few hundred bytes (stages of a few hundred,
/// rings of a KiB: they wrap and fill all the time, and both drains run, the copy into
/// the shared buffer and the write straight from the ring), a rotation every 2 KiB and at
/// every midnight, ERROR events (which flush) among the others, events larger than a
/// stage and larger than the buffer, and every thread's events written by a run of
/// short-lived threads, each ending with events still staged. Every event is found once,
/// whole, in order per writer.
#[test]
fn staged_tiny_buffers_lose_nothing_with_errors_big_events_and_threads_that_end() {
    for cap in [256, 700, 1024] {
        staged_at_the_edges(cap);
    }
}

fn staged_at_the_edges(cap: usize) {
    const CHUNK: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(utc(2026, 1, 1, 0, 0, 0));
    let settings = settings(WriteMode::Staged).max_bytes(2048).buffer_capacity(cap).compress(false);
    let log = common::open(dir.path().join("app.log"), settings, &clock);
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = spin_clock(clock, Arc::clone(&stop));
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let log = log.clone();
            thread::spawn(move || {
                for chunk in 0..EVENTS / CHUNK {
                    let log = log.clone();
                    // A thread of its own for each chunk: it ends with events staged.
                    thread::spawn(move || {
                        let mut line = Vec::new();
                        for seq in chunk * CHUNK..(chunk + 1) * CHUNK {
                            line.clear();
                            // Mostly short; now and then longer than a stage, or than
                            // the whole buffer.
                            let pad = match seq % 29 {
                                0 => cap + 50,
                                7 => cap - cap / 64 - 20,
                                _ => seq % 11,
                            };
                            writeln!(line, "t{t} {seq:06} {}", "x".repeat(pad)).unwrap();
                            common::write_record(&log, &line, seq % 17 == 0).unwrap();
                        }
                    })
                    .join()
                    .unwrap();
                }
            })
        })
        .collect();
    writers.into_iter().for_each(|w| w.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    let stats = flushed_without_a_failure(&log);
    assert_eq!(stats.events_written, (THREADS * EVENTS) as u64, "{stats:?}");
    check(dir.path(), "app.log", |line| {
        let (t, rest) = line.strip_prefix('t')?.split_once(' ')?;
        let (seq, pad) = rest.split_once(' ')?;
        pad.bytes().all(|b| b == b'x').then_some(())?;
        Some((t.parse().ok()?, seq.parse().ok()?))
    });
}

/// Staged mode with a large buffer: a stage holding more than 2^24 events (one-byte
/// events, with the background thread not asked yet) is counted whole.
#[test]
fn a_stage_of_millions_of_tiny_events_counts_every_one() {
    // regression: the ring was four buffers long, and a 32 MiB buffer let a stage hold
    // more events than its position words count (2^24): the drain counted them modulo
    // that, so `events_written` came out 16 777 216 short.
    const N: u64 = (1 << 24) + 1000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let settings = common::held_in_memory(WriteMode::Staged, 32 << 20);
    let log = RollingFile::builder().settings(settings).build(&path).unwrap();
    for _ in 0..N {
        common::write_record(&log, b"\n", false).unwrap();
    }
    log.flush().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), N);
    let stats = log.stats();
    assert_eq!((stats.events_written, stats.bytes_written, stats.lost_events), (N, N, 0));
}

/// Staged mode: a thread that fills its stage past the threshold and ends at once still
/// has it written by the background thread (no flush, no later event: the flush interval
/// is an hour), and the stage of one that ends under the threshold waits for a flush.
#[test]
fn a_stage_left_by_a_thread_that_ended_is_still_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let settings = common::held_in_memory(WriteMode::Staged, 4096);
    let log = RollingFile::builder().settings(settings).build(&path).unwrap();
    // 52 bytes each: 78 cross the threshold (4032 bytes).
    let line = |i: usize| format!("event {i:04} {}\n", "x".repeat(40));
    let write = |lines: std::ops::Range<usize>| {
        let log = log.clone();
        thread::spawn(move || lines.for_each(|i| (&log).write_all(line(i).as_bytes()).unwrap()))
            .join()
            .unwrap();
    };
    write(0..78);
    let first: String = (0..78).map(line).collect();
    wait_for_len(&path, first.len());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first, "by the background thread");
    write(78..80);
    log.flush().unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), (0..80).map(line).collect::<String>());
    assert_eq!(log.stats().events_written, 80);
}

// regression: in the buffered modes an empty record was counted only when a flush next
// wrote bytes (never, if none followed), where direct mode counts it at once
#[test]
fn empty_records_are_counted_in_every_mode() {
    for mode in [WriteMode::Direct, WriteMode::Buffered, WriteMode::Staged] {
        let dir = tempfile::tempdir().unwrap();
        let log = RollingFile::builder()
            .settings(Settings::default().write_mode(mode))
            .build(dir.path().join("app.log"))
            .unwrap();
        for _ in 0..3 {
            common::write_record(&log, b"", false).unwrap();
        }
        log.flush().unwrap();
        assert_eq!(log.stats().events_written, 3, "{mode:?}");
        assert_eq!(std::fs::read(dir.path().join("app.log")).unwrap(), b"", "{mode:?}");
    }
}

/// Flushes `log` and runs its maintenance, then checks that it rotated often and that
/// nothing failed; its counters.
fn flushed_without_a_failure(log: &RollingFile) -> mhm_log::Stats {
    log.flush().unwrap();
    log.maintain_now();
    let stats = log.stats();
    assert!(stats.rotations > 100, "{stats:?}");
    assert_eq!(
        (stats.write_errors, stats.rotation_errors, stats.lost_events, stats.maintenance_errors),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    stats
}

/// Waits until the file at `path` holds `len` bytes, 10 s at most (the caller then checks
/// what it holds).
fn wait_for_len(path: &std::path::Path, len: usize) {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::metadata(path).unwrap().len() < len as u64 && std::time::Instant::now() < until {
        thread::sleep(Duration::from_millis(2));
    }
}
