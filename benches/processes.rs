//! Two processes on one log against two threads in one process: SPEC.md's "several
//! processes" must scale as threads do. Every case runs in child processes (this bench
//! binary run again), so process start-up is paid alike and left out of the timing.
//!
//! `cargo bench --bench processes` prints, per write mode, the time for `iters` events on
//! each writer (the `threaded` convention of `hot_path.rs`), then the two scalings, events/s
//! relative to one writer, computed within the run:
//!
//! - `1proc_1thread`: one process, one thread (the baseline);
//! - `1proc_2threads`: one process, two threads on one `LogFiles`;
//! - `2procs_1thread`: two processes, one thread each, on the same log.
//!
//! Files rotate for real (5 MiB, no age gate; copies overflow and are pruned), in the temp
//! folder or `MHM_BENCH_DIR`.

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

mod common;

use common::bench_dir;
use criterion::Criterion;
use mhm_log::{LogFiles, Settings, WriteMode};
use tracing_subscriber::prelude::*;

const CHILD_VAR: &str = "MHM_BENCH_PROCESS_CHILD";

fn mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Direct => "direct",
        WriteMode::Buffered => "buffered",
        _ => "staged",
    }
}

/// The child: `dir mode threads iters`. Sets up the layer, says "ready", waits for a line
/// on stdin, writes `iters` events on each of `threads` threads, writes everything out
/// (the guard's drop), says "done".
fn child(spec: &str) {
    let parts: Vec<&str> = spec.split('\t').collect();
    let [dir, mode, threads, iters] = parts[..] else { panic!("bad child spec {spec:?}") };
    let mode = match mode {
        "direct" => WriteMode::Direct,
        "buffered" => WriteMode::Buffered,
        _ => WriteMode::Staged,
    };
    let threads: usize = threads.parse().unwrap();
    let iters: u64 = iters.parse().unwrap();
    let settings = Settings::default().min_rotate_age(Duration::ZERO).write_mode(mode);
    let (layer, guard) = LogFiles::builder(dir).settings(settings).build().unwrap();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (barrier, handles) = common::logging_threads(&dispatch, threads, iters);
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    barrier.wait();
    handles.into_iter().for_each(|h| h.join().unwrap());
    drop(dispatch);
    drop(guard);
    println!("done");
}

/// Time from "go" to the last "done", for `procs` children with `threads` threads each.
fn run(dir: &Path, mode: WriteMode, procs: usize, threads: usize, iters: u64) -> Duration {
    let exe = std::env::current_exe().unwrap();
    let spec = format!("{}\t{}\t{threads}\t{iters}", dir.display(), mode_name(mode));
    let mut children: Vec<(Child, BufReader<std::process::ChildStdout>)> = (0..procs)
        .map(|_| {
            let mut c = Command::new(&exe)
                .env(CHILD_VAR, &spec)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let out = BufReader::new(c.stdout.take().unwrap());
            (c, out)
        })
        .collect();
    let mut line = String::new();
    for (_, out) in &mut children {
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
    }
    let start = Instant::now();
    for (c, _) in &mut children {
        c.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    }
    for (_, out) in &mut children {
        line.clear();
        out.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "done");
    }
    let elapsed = start.elapsed();
    for (mut c, _) in children {
        assert!(c.wait().unwrap().success());
    }
    elapsed
}

fn processes(c: &mut Criterion) {
    for mode in [WriteMode::Staged, WriteMode::Buffered, WriteMode::Direct] {
        let mut group = c.benchmark_group(format!("procs_{}", mode_name(mode)));
        for (name, procs, threads) in
            [("1proc_1thread", 1, 1), ("1proc_2threads", 1, 2), ("2procs_1thread", 2, 1)]
        {
            let dir = bench_dir();
            group.bench_function(name, |b| {
                b.iter_custom(|iters| run(dir.path(), mode, procs, threads, iters))
            });
        }
        group.finish();
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        child(&spec);
        return;
    }
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    processes(&mut c);
    c.final_summary();
    print_scalings();
}

/// The scalings of the run just made, from criterion's estimates.
fn print_scalings() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../criterion");
    println!("\nevents/s relative to one writer (same run):");
    for mode in ["staged", "buffered", "direct"] {
        let median = |name: &str| -> Option<f64> {
            let path = root.join(format!("procs_{mode}/{name}/new/estimates.json"));
            let text = std::fs::read_to_string(path).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v["median"]["point_estimate"].as_f64()
        };
        if let (Some(one), Some(threads), Some(procs)) =
            (median("1proc_1thread"), median("1proc_2threads"), median("2procs_1thread"))
        {
            let (t, p) = (2.0 * one / threads, 2.0 * one / procs);
            println!(
                "  {mode:8}  2 threads {t:.2}x   2 processes {p:.2}x   processes/threads {:.2}",
                p / t
            );
        }
    }
}
