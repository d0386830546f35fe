//! Tail latency of the writing thread while a 50 MB copy is gzipped in the background,
//! against the same writer idle, in the same run.
//!
//! `cargo bench --bench latency` prints p50/p99/p99.9 per event for each write mode.

use std::{
    fs,
    io::Write,
    path::Path,
    time::{Duration, Instant},
};

use mhm_log::{LogFiles, LogFilesGuard, Settings, WriteMode};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Today's copy name: an old date would be pruned by age instead of compressed.
fn copy_name() -> String {
    format!("app.log.{}", chrono::Local::now().format("%Y-%m-%d"))
}

fn percentiles(mut v: Vec<u64>) -> [u64; 3] {
    v.sort_unstable();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    [at(0.50), at(0.99), at(0.999)]
}

fn layer(dir: &Path, mode: WriteMode) -> (Dispatch, LogFilesGuard) {
    // backup_count 0: the copy in backups/ overflows at once, compressed, when the
    // writer's background thread makes its start-up pass.
    let settings =
        Settings::default().write_mode(mode).compress(true).backup_count(0).archive_count(100);
    let (layer, guard) = LogFiles::builder(dir).settings(settings).build().unwrap();
    (Dispatch::new(tracing_subscriber::registry().with(layer)), guard)
}

fn sample(dispatch: &Dispatch, until: impl Fn(usize) -> bool) -> Vec<u64> {
    let mut out = Vec::with_capacity(1 << 20);
    tracing::dispatcher::with_default(dispatch, || {
        let mut i = 0u64;
        while !until(out.len()) {
            let t = Instant::now();
            tracing::info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12u64, "message delivered to the user");
            out.push(t.elapsed().as_nanos() as u64);
            i += 1;
        }
    });
    out
}

fn write_copy(dir: &Path) {
    fs::create_dir_all(dir.join("backups")).unwrap();
    let mut f =
        std::io::BufWriter::new(fs::File::create(dir.join("backups").join(copy_name())).unwrap());
    let mut n = 0u64;
    let mut written = 0;
    while written < 50_000_000 {
        let line = format!(
            "2026-01-01 12:{:02}:{:02},{:03} - mhm::discord - INFO - message delivered | {{\"user_id\": {}, \"latency_ms\": {}}}\n",
            n / 60 % 60,
            n % 60,
            n % 1000,
            n % 9973,
            n % 211
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
        n += 1;
    }
    f.flush().unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list; there is nothing to test here
    }
    println!("| mode | state | events | p50 ns | p99 ns | p99.9 ns |");
    println!("|---|---|---:|---:|---:|---:|");
    for mode in [WriteMode::Direct, WriteMode::Buffered] {
        let dir = tempfile::tempdir().unwrap();
        write_copy(dir.path());
        let gz = dir.path().join("archive").join(format!("{}.gz", copy_name()));
        let (dispatch, guard) = layer(dir.path(), mode);
        let started = Instant::now();
        let busy = sample(&dispatch, |n| gz.exists() || n >= 50_000_000);
        let took = started.elapsed();
        let idle = sample(&dispatch, |n| n >= busy.len().max(200_000));
        drop(dispatch);
        drop(guard);
        assert!(
            gz.exists() && !dir.path().join("backups").join(copy_name()).exists(),
            "the copy was compressed"
        );
        let [b50, b99, b999] = percentiles(busy.clone());
        let [i50, i99, i999] = percentiles(idle.clone());
        println!("| {mode:?} | idle | {} | {i50} | {i99} | {i999} |", idle.len());
        println!(
            "| {mode:?} | compressing 50 MB ({:.1} s) | {} | {b50} | {b99} | {b999} |",
            took.as_secs_f64(),
            busy.len()
        );
        println!("| {mode:?} | p99 busy / idle | | | {:.2} | |", b99 as f64 / i99 as f64);
        std::thread::sleep(Duration::from_millis(100));
    }
}
