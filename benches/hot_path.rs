//! The hot path: one `info!` with three fields (a ~127-byte line) through each writer,
//! baselines in the same group and the same run.
//!
//! `cargo bench --bench hot_path` then `python3 benches/ratios.py` prints the ratios the
//! README quotes (`benches/run.sh N`: N runs, medians). Files rotate for real here (5 MiB
//! limit, no age gate, the default retention: at most 1 active + 7 backups + 7 archive
//! copies, so the bytes a case holds stay bounded however long it runs), except in the
//! `*_check` benches, where rotation is on but never due (the cost of the check alone),
//! and the `*_norotate` ones (`DISABLE_LOG_ROTATION`). Each `LogFiles` case prints on
//! stderr how many rotations it made and what it held on disk at the end.
//!
//! The two checks come from this one group: `logfiles/staged` (rotating) against
//! `fmt/sink`, and the 2-thread scaling of `logfiles/staged` against `fmt/sink`'s.
//!
//! Files go to the system's temp folder, or to `MHM_BENCH_DIR` (e.g. `/dev/shm`, to take
//! the disk's writeback throttling out of CPU-bound comparisons such as thread scaling).

use std::{
    fs::File,
    hint::black_box,
    io::{BufWriter, Write},
    path::Path,
    sync::{Arc, Barrier, Mutex},
    thread,
    time::{Duration, Instant},
};

mod common;

use common::bench_dir;
use criterion::{criterion_group, criterion_main, Criterion};
use mhm_log::{LogFiles, RollingFile, Settings, WriteMode};
use tracing::Dispatch;
use tracing_subscriber::{fmt::MakeWriter, prelude::*};

#[derive(Clone, Copy)]
enum Rotation {
    /// Rotates every 5 MiB, copies overflow and are deleted in the background.
    Real,
    /// Rotation on, never due: the per-event check alone.
    CheckOnly,
    /// `DISABLE_LOG_ROTATION`.
    Off,
}

fn settings(mode: WriteMode, rotation: Rotation) -> Settings {
    let s = Settings::default().min_rotate_age(Duration::ZERO).write_mode(mode);
    match rotation {
        Rotation::Real => s,
        Rotation::CheckOnly => s.max_bytes(u64::MAX / 2),
        Rotation::Off => s.rotation_disabled(true),
    }
}

fn fmt_dispatch<W>(writer: W) -> Dispatch
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    Dispatch::new(tracing_subscriber::fmt().with_writer(writer).with_ansi(false).finish())
}

fn layer_dispatch(
    dir: &Path,
    mode: WriteMode,
    rotation: Rotation,
    buffer: Option<usize>,
) -> (Dispatch, mhm_log::LogFilesGuard) {
    let mut settings = settings(mode, rotation);
    if let Some(bytes) = buffer {
        settings = settings.buffer_capacity(bytes);
    }
    let (layer, guard) = LogFiles::builder(dir).settings(settings).build().unwrap();
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

fn rolling(dir: &Path, mode: WriteMode, rotation: Rotation) -> RollingFile {
    RollingFile::builder().settings(settings(mode, rotation)).build(dir.join("app.log")).unwrap()
}

/// Time for `iters` events on each of `threads` threads, all started together: one
/// "iteration" is `threads` events, so throughput ratios come out of the medians.
fn threaded(dispatch: &Dispatch, threads: usize, iters: u64) -> Duration {
    let (barrier, handles) = common::logging_threads(dispatch, threads, iters);
    barrier.wait();
    let start = Instant::now();
    handles.into_iter().for_each(|h| h.join().unwrap());
    start.elapsed()
}

const LINE: &[u8] = b"2026-11-26 21:00:00,007 - mhm::bench - INFO - message delivered to the user | {\"user_id\": 42, \"channel\": \"discord\", \"latency_ms\": 12}\n";

/// The writer alone: `iters` pre-formatted lines on each thread, thread `i` writing to
/// `files[i % files.len()]` (one shared file, or one file per thread).
fn writer_threaded(files: &[RollingFile], threads: usize, iters: u64) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let file = files[i % files.len()].clone();
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..iters {
                    (&file).write_all(black_box(LINE)).unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    handles.into_iter().for_each(|h| h.join().unwrap());
    start.elapsed()
}

fn writer_bench(c: &mut Criterion, name: &str, mode: WriteMode, threads: usize, files: usize) {
    let dir = bench_dir();
    let files: Vec<RollingFile> = (0..files)
        .map(|i| {
            RollingFile::builder()
                .settings(settings(mode, Rotation::Real))
                .build(dir.path().join(format!("w{i}.log")))
                .unwrap()
        })
        .collect();
    c.bench_function(name, |b| b.iter_custom(|iters| writer_threaded(&files, threads, iters)));
}

/// One benchmark: `threads` threads, each sending the same number of events.
fn bench(
    c: &mut Criterion,
    name: &str,
    threads: usize,
    make: impl Fn(&Path) -> (Dispatch, Option<Box<dyn std::any::Any>>),
) {
    let dir = bench_dir();
    let (dispatch, guard) = make(dir.path());
    c.bench_function(name, |b| b.iter_custom(|iters| threaded(&dispatch, threads, iters)));
    drop(dispatch);
    let files = guard.as_ref().and_then(|g| g.downcast_ref::<mhm_log::LogFilesGuard>());
    let stats = files.map(|f| f.files()[0].stats()).filter(|s| s.events_written > 0);
    if let Some(stats) = stats {
        // What the case really did: rotations, and the bytes it held on disk at the end
        // (bounded by retention: 1 active + 7 backups + 7 archive copies of 5 MiB).
        eprintln!(
            "{name}: {} events, {} rotations, {} copies deleted, {:.1} MiB on disk",
            stats.events_written,
            stats.rotations,
            stats.copies_deleted,
            folder_size(dir.path()) as f64 / (1 << 20) as f64
        );
    }
    drop(guard);
}

fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_size(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn hot_path(c: &mut Criterion) {
    use Rotation::{CheckOnly, Off, Real};
    use WriteMode::{Buffered, Direct, Staged};
    let none = || None::<Box<dyn std::any::Any>>;
    let sink = |_: &Path| (fmt_dispatch(std::io::sink), none());
    let bufwriter = |d: &Path| {
        (fmt_dispatch(Mutex::new(BufWriter::new(File::create(d.join("app.log")).unwrap()))), none())
    };
    let daily = |d: &Path| (fmt_dispatch(tracing_appender::rolling::daily(d, "app.log")), none());
    let non_blocking = |d: &Path| {
        let (w, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .finish(File::create(d.join("app.log")).unwrap());
        (fmt_dispatch(w), Some(Box::new(guard) as Box<dyn std::any::Any>))
    };
    let fmt_rolling =
        |mode, rotation| move |d: &Path| (fmt_dispatch(rolling(d, mode, rotation)), none());
    let layer_with = |mode, rotation: Rotation, buffer: Option<usize>| {
        move |d: &Path| {
            let (dispatch, guard) = layer_dispatch(d, mode, rotation, buffer);
            (dispatch, Some(Box::new(guard) as Box<dyn std::any::Any>))
        }
    };
    let layer = |mode, rotation: Rotation| layer_with(mode, rotation, None);

    // The cases first and side by side, so the load of this shared VM drifts as
    // little as possible between a case and its baseline; the cases whose files grow
    // without bound (`*_norotate`, `*_check`: 1.5 GB or more each) last, so the kernel's
    // writeback of their pages does not run under the others.
    bench(c, "fmt/sink", 1, sink);
    bench(c, "logfiles/staged", 1, layer(Staged, Real));
    bench(c, "2threads/fmt_sink", 2, sink);
    bench(c, "2threads/logfiles_staged", 2, layer(Staged, Real));
    // Not the default: the same with LOG_BUFFER_BYTES = 256 KiB (writes 4x larger, which
    // the kernel's page cache takes at a lower cost per byte).
    bench(c, "logfiles/staged_256k", 1, layer_with(Staged, Real, Some(256 * 1024)));
    bench(c, "2threads/logfiles_staged_256k", 2, layer_with(Staged, Real, Some(256 * 1024)));
    bench(c, "fmt/bufwriter", 1, bufwriter);
    bench(c, "fmt/appender_daily", 1, daily);
    bench(c, "fmt/appender_non_blocking", 1, non_blocking);
    bench(c, "fmt/rolling_direct", 1, fmt_rolling(Direct, Real));
    bench(c, "fmt/rolling_buffered", 1, fmt_rolling(Buffered, Real));
    bench(c, "logfiles/direct", 1, layer(Direct, Real));
    bench(c, "logfiles/buffered", 1, layer(Buffered, Real));
    bench(c, "2threads/fmt_rolling_buffered", 2, fmt_rolling(Buffered, Real));
    bench(c, "2threads/logfiles_buffered", 2, layer(Buffered, Real));
    writer_bench(c, "writer/buffered", Buffered, 1, 1);
    writer_bench(c, "2threads/writer_buffered_shared", Buffered, 2, 1);
    writer_bench(c, "2threads/writer_buffered_separate", Buffered, 2, 2);
    writer_bench(c, "writer/staged", Staged, 1, 1);
    writer_bench(c, "2threads/writer_staged_shared", Staged, 2, 1);
    bench(c, "fmt/rolling_direct_norotate", 1, fmt_rolling(Direct, Off));
    bench(c, "fmt/rolling_direct_check", 1, fmt_rolling(Direct, CheckOnly));
    bench(c, "logfiles/buffered_norotate", 1, layer(Buffered, Off));
    bench(c, "logfiles/buffered_check", 1, layer(Buffered, CheckOnly));
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = hot_path
}
criterion_main!(benches);
