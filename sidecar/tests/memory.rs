//! Peak memory of the real binary (Linux: read from `/proc/<pid>/status` while it runs).
//! SPEC: memory flat with data size, and at most about 1 KiB per stored file.
#![cfg(target_os = "linux")]

mod common;

use std::{fs, path::Path, process::Stdio, time::Duration};

use common::*;

/// Runs the binary and returns (exit code, peak resident memory in bytes).
fn peak_rss(root: &Path, args: &[&str]) -> (i32, u64) {
    let mut child = bin()
        .arg("--root")
        .arg(root)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        // VmHWM is the peak so far; read it until the process is gone.
        if let Ok(text) = fs::read_to_string(&status) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            if let Some(kib) = hwm {
                peak = peak.max(kib * 1024);
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            return (s.code().unwrap_or(-1), peak);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn many_small_files_cost_about_a_kib_each() {
    // regression (issue 8): `snapshot create` took 6.2 GB for 20,000 files; backups too.
    // Each entry's compressor (zlib-rs, 380 KB, 64-byte aligned) left glibc's heap
    // fragmented, so the heap grew by about one compressor per file.
    const FILES: usize = 4000;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for i in 0..FILES {
        write(
            &r.join(format!("data/users/u1/d{:02}/f{i:05}.json", i / 100)),
            format!("{{\"n\": {i}}}"),
        );
        if i % 2 == 0 {
            write(&r.join(format!("src/d{:02}/m{i:05}.py", i / 100)), format!("print({i})\n"));
        }
    }
    let base = 48u64 << 20; // the process itself, buffers, threads
    let budget = base + FILES as u64 * 1024;
    let (code, backup) = peak_rss(r, &["backup", "create", "--name", "b"]);
    assert_eq!(code, 0);
    let snapshots = tempfile::tempdir().unwrap();
    let archive = snapshots.path().to_str().unwrap();
    let (code, snapshot) =
        peak_rss(r, &["snapshot", "create", "--archive-dir", archive, "--include-user-data"]);
    assert_eq!(code, 0);
    assert!(
        backup < budget && snapshot < budget,
        "peak memory: backup {} MiB, snapshot {} MiB, budget {} MiB",
        backup >> 20,
        snapshot >> 20,
        budget >> 20
    );
}
