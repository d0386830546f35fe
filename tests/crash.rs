//! A process killed (SIGKILL; TerminateProcess on Windows) at a random moment while writing in direct mode loses no
//! event whose write had returned, and the next start of the writer recovers.
//!
//! The child is this test binary itself, running the ignored test `child_writer`. While
//! the first one runs, the parent writes the same log too (a second process).

mod common;

use common::launch::Launch;

use std::{
    collections::HashSet,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Command, Stdio},
    time::{Duration, SystemTime},
};

use mhm_log::{RollingFile, Settings};

const DIR_VAR: &str = "MHM_LOG_CRASH_DIR";
const START_VAR: &str = "MHM_LOG_CRASH_START";
/// Events the parent writes into the log while the first child writes it too.
const PARENT_EVENTS: u32 = 200;

fn settings() -> Settings {
    // Small files and no gates: the kill often lands during a rotation or a compression.
    Settings::default()
        .max_bytes(2048)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(2)
        .archive_count(100_000)
        .compress(true)
}

/// Run by the parent: writes numbered events forever, acknowledging each on stdout only
/// after its write returned.
#[test]
#[ignore = "the child half of kill_during_writes_loses_no_acknowledged_event"]
fn child_writer() {
    let dir = std::env::var(DIR_VAR).expect("run by the parent test");
    let start: u64 = std::env::var(START_VAR).unwrap().parse().unwrap();
    let log =
        RollingFile::builder().settings(settings()).build(Path::new(&dir).join("app.log")).unwrap();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut line = Vec::new();
    for seq in start.. {
        line.clear();
        writeln!(line, "event {seq:012} payload payload payload").unwrap();
        (&log).write_all(&line).unwrap();
        writeln!(out, "ACK {seq}").unwrap();
        out.flush().unwrap();
    }
}

fn pseudo_random(n: u64) -> u64 {
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    (t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1000
}

#[test]
fn kill_during_writes_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = Vec::new();
    for round in 0..6u64 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "child_writer", "--nocapture", "--test-threads=1"])
            .env(DIR_VAR, dir.path())
            .env(START_VAR, (round * 10_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .launch()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("ACK ") {
                    seen.push(seq.parse::<u64>().unwrap());
                    if seen.len() == 1 {
                        let _ = first_tx.send(());
                    }
                }
            }
            seen
        });
        // Wait until the child writes (however loaded the machine), then kill it at a
        // random moment within the next half second.
        first_rx.recv_timeout(Duration::from_secs(60)).expect("the child never wrote");
        std::thread::sleep(Duration::from_millis(pseudo_random(round) / 2));
        if round == 0 {
            // A second process writes the same log meanwhile: its events are kept too.
            let log = RollingFile::builder()
                .settings(settings())
                .build(dir.path().join("app.log"))
                .unwrap();
            for i in 0..PARENT_EVENTS {
                // One write per event (`writeln!` would write it in pieces).
                (&log).write_all(format!("parent {i:06}\n").as_bytes()).unwrap();
            }
        }
        child.kill().unwrap(); // SIGKILL; TerminateProcess on Windows
        child.wait().unwrap();
        let seen = reader.join().unwrap();
        acked.extend(seen);
    }
    // The writer starts again on the same folder (the lock died with the process), writes,
    // and its maintenance pass finishes what a kill interrupted (a .gz renamed into place
    // whose source was not yet removed).
    let log =
        RollingFile::builder().settings(settings()).build(dir.path().join("app.log")).unwrap();
    (&log).write_all(b"after the crashes\n").unwrap();
    log.maintain_now();
    assert_eq!(log.stats().maintenance_errors, 0, "{:?}", log.stats());
    assert!(std::fs::read_to_string(dir.path().join("app.log"))
        .unwrap()
        .ends_with("after the crashes\n"));
    drop(log);

    // Every acknowledged event is in exactly one file, whole. A kill inside a write(2)
    // can leave the front of one unacknowledged line (the kernel stops between pages); the
    // next start ends it with a newline, so it stands alone: at most one per kill.
    let mut found = HashSet::new();
    let mut fragments = 0;
    let mut parent = HashSet::new();
    let shape = "event 000000000000 payload payload payload";
    for (file, text) in common::history(dir.path(), "app.log") {
        assert!(text.is_empty() || text.ends_with('\n'), "{file} ends in a torn line");
        for line in text.lines().filter(|l| *l != "after the crashes") {
            if let Some(i) = line.strip_prefix("parent ").and_then(|i| i.parse::<u32>().ok()) {
                assert!(parent.insert(i), "{file}: parent event {i} appears twice");
                continue;
            }
            let seq = line
                .strip_prefix("event ")
                .and_then(|l| l.strip_suffix(" payload payload payload"))
                .and_then(|s| s.parse::<u64>().ok());
            match seq {
                Some(seq) => assert!(found.insert(seq), "{file}: event {seq} appears twice"),
                None => {
                    let same_shape = line.len() < shape.len()
                        && line
                            .bytes()
                            .zip(shape.bytes())
                            .all(|(a, b)| a == b || (a.is_ascii_digit() && b == b'0'));
                    assert!(same_shape, "{file}: malformed line {line:?}");
                    fragments += 1;
                }
            }
        }
    }
    assert!(fragments <= 6, "{fragments} partial lines from 6 kills");
    assert_eq!(parent.len(), PARENT_EVENTS as usize, "the second process's events");
    let missing: Vec<_> = acked.iter().filter(|s| !found.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}
