//! Peak memory of the real binary (Linux: read from `/proc/<pid>/status` while it runs).
//! SPEC: memory flat with data size, and at most about 1 KiB per stored file.
#![cfg(target_os = "linux")]

use crate::common;

use std::{fs, path::Path, time::Duration};

use common::*;

/// Runs the binary and returns (exit code, peak resident memory in bytes).
fn peak_rss(root: &Path, args: &[&str]) -> (i32, u64) {
    let mut child = spawn_quiet(root, args);
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

/// `{"metadata": {...}, "messages": [...]}` of about `bytes`, half of it a year old.
fn big_messages(bytes: usize) -> Vec<u8> {
    let mut out = String::from("{\"metadata\": {\"total_messages\": 0}, \"messages\": [");
    let mut i = 0;
    while out.len() < bytes {
        if i > 0 {
            out.push_str(", ");
        }
        let year = if i % 2 == 0 { 2024 } else { 2026 };
        out.push_str(&format!(
            "{{\"timestamp\": \"{year}-01-{:02} 10:00:00\", \"text\": \"message number {i}, \
             with some words to make it look like one\", \"channel\": \"discord\"}}",
            i % 28 + 1
        ));
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

#[test]
fn a_big_message_file_costs_at_most_about_three_times_its_size() {
    // regression (issue 8): a 100 MB sent_messages.json took 956 MB in `messages archive`
    // (every message a serde_json::Value, the document cloned to write it, the file read
    // twice).
    const SIZE: usize = 30 << 20;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let active = r.join("data/users/u1/messages/sent_messages.json");
    write(&active, big_messages(SIZE));
    let (code, peak) = peak_rss(r, &["--now", "2026-03-20T10:00:00Z", "messages", "archive"]);
    assert_eq!(code, 0);
    let kept: serde_json::Value = serde_json::from_slice(&fs::read(&active).unwrap()).unwrap();
    let n = kept["messages"].as_array().unwrap().len();
    assert!(n > 1000 && kept["messages"][0]["timestamp"].as_str().unwrap().starts_with("2026"));
    let budget = (16 << 20) + 3 * SIZE as u64;
    assert!(peak < budget, "peak {} MiB, budget {} MiB", peak >> 20, budget >> 20);
}

#[test]
fn a_big_user_index_costs_at_most_about_three_times_its_size() {
    // regression (issue 8): an 87 MB user_index.json took 747 MB in `system validate`.
    const SIZE: usize = 30 << 20;
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // 2,000 users with a long history each (the problems listed stay few).
    let mut index = String::from("{\"last_updated\": \"2026-03-01\"");
    let history: Vec<String> = (0..600).map(|n| format!("\"login {n} from 10.0.0.1\"")).collect();
    let history = history.join(", ");
    let mut i = 0;
    while index.len() < SIZE {
        index.push_str(&format!(
            ", \"user{i}\": {{\"name\": \"user {i}\", \"history\": [{history}]}}"
        ));
        i += 1;
    }
    index.push('}');
    write(&r.join("data/user_index.json"), index);
    fs::create_dir_all(r.join("data/users/user0")).unwrap();
    // And as big a JSON file under users/.
    write(&r.join("data/users/user0/messages/sent_messages.json"), big_messages(SIZE));
    let (code, peak) = peak_rss(r, &["system", "validate"]);
    assert_eq!(code, 1, "every user but user0 lacks a folder");
    let budget = (16 << 20) + 3 * SIZE as u64;
    assert!(peak < budget, "peak {} MiB, budget {} MiB", peak >> 20, budget >> 20);
}
