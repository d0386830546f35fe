//! Several processes on one log: every event of every process exactly once, whole, in
//! one file, each process's in its order; a due log rotated once; a process killed at
//! random (during rotations and compression, often) while the others go on; a rotation
//! by one process while the others are mid-burst.
//!
//! The processes are this test binary itself, running the ignored test `child_main` with
//! its role in environment variables. Across processes time is the system's: rotations
//! here come from the size trigger (no gates).

mod common;

use common::launch::Launch;

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, SystemTime},
};

use mhm_log::{RollingFile, Settings, WriteMode};

const DIR: &str = "MHM_LOG_PROC_DIR";
const ID: &str = "MHM_LOG_PROC_ID";
/// Events to write; 0: write until killed, acknowledging each on stdout.
const COUNT: &str = "MHM_LOG_PROC_COUNT";
const MODE: &str = "MHM_LOG_PROC_MODE";
const MAX_BYTES: &str = "MHM_LOG_PROC_MAX_BYTES";
/// The file whose appearance starts the child's writes (default `go`).
const GO: &str = "MHM_LOG_PROC_GO";

fn settings(mode: WriteMode, max_bytes: u64) -> Settings {
    // Copies stay in backups/ for the run (moved and compressed at its end): a writer
    // stalled between its generation check and its write for as long as `backup_count`
    // rotations take would write into a copy already compressed and removed (README,
    // "Several processes": the limits).
    Settings::default()
        .write_mode(mode)
        .buffer_capacity(1024)
        .flush_interval(Duration::from_millis(5))
        .max_bytes(max_bytes)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(100_000)
        .archive_count(1_000_000)
        .compress(true)
}

fn mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Direct => "direct",
        WriteMode::Buffered => "buffered",
        _ => "staged",
    }
}

fn event(id: u32, seq: u64) -> String {
    // Lengths vary, so writes of different processes do not line up.
    format!("p{id} {seq:09} {}\n", "x".repeat((seq % 23) as usize))
}

/// The child: writes its events, one write each, then prints its counters.
#[test]
#[ignore = "run as a child process by the tests of this file"]
fn child_main() {
    let var = |name| std::env::var(name).expect("run by a test of this file");
    let id: u32 = var(ID).parse().unwrap();
    let count: u64 = var(COUNT).parse().unwrap();
    let mode = match var(MODE).as_str() {
        "direct" => WriteMode::Direct,
        "buffered" => WriteMode::Buffered,
        _ => WriteMode::Staged,
    };
    let max_bytes = var(MAX_BYTES).parse().unwrap();
    let log = RollingFile::builder()
        .settings(settings(mode, max_bytes))
        .build(Path::new(&var(DIR)).join("app.log"))
        .unwrap();
    // All together: ready, then wait for the go (a file the parent makes).
    let dir = Path::new(&var(DIR)).to_path_buf();
    let go = dir.join(std::env::var(GO).unwrap_or_else(|_| "go".into()));
    std::fs::write(dir.join(format!("ready.{id}")), "").unwrap();
    while count != 0 && !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut seq = 0;
    while count == 0 || seq < count {
        common::write_record(&log, event(id, seq).as_bytes(), false).unwrap();
        if count == 0 {
            writeln!(out, "ACK {seq}").unwrap();
            out.flush().unwrap();
        }
        seq += 1;
    }
    log.flush().unwrap();
    let s = log.stats();
    writeln!(
        out,
        "STATS {} {} {} {} {} {}",
        s.rotations, s.followed, s.lost_events, s.rotation_errors, s.write_errors, s.reopens
    )
    .unwrap();
}

fn spawn(dir: &Path, id: u32, count: u64, mode: WriteMode, max_bytes: u64) -> Child {
    spawn_on(dir, id, count, mode, max_bytes, "go")
}

/// As `spawn`, with the child waiting for the file `go` instead.
fn spawn_on(dir: &Path, id: u32, count: u64, mode: WriteMode, max_bytes: u64, go: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_main", "--nocapture", "--test-threads=1"])
        .env(DIR, dir)
        .env(ID, id.to_string())
        .env(COUNT, count.to_string())
        .env(MODE, mode_name(mode))
        .env(MAX_BYTES, max_bytes.to_string())
        .env(GO, go)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .launch()
        .unwrap()
}

/// Lets the children that are ready (each makes `ready.<id>`) go together.
fn go(dir: &Path, ids: impl IntoIterator<Item = u32>) {
    go_on(dir, ids, "go");
}

/// Waits until the children `ids` are ready, then makes the file `go` they wait for.
fn go_on(dir: &Path, ids: impl IntoIterator<Item = u32>, go: &str) {
    for id in ids {
        let ready = dir.join(format!("ready.{id}"));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ready.exists() {
            assert!(std::time::Instant::now() < deadline, "child {id} never started");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    std::fs::write(dir.join(go), "").unwrap();
}

/// A child's counters, from its last line.
#[derive(Debug, Default)]
struct ChildStats {
    rotations: u64,
    followed: u64,
    /// Events lost, failed rotations and writes, and new active files started because the
    /// old one was gone from its path.
    failures: u64,
    /// Of `failures`, the new active files: a writer's recovery when a rotating process was
    /// killed between its rename and the generation's bump.
    reopens: u64,
}

fn wait(child: Child) -> ChildStats {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "a child failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.split_once("STATS ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no stats from a child: {text}"));
    let n: Vec<u64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
    ChildStats {
        rotations: n[0],
        followed: n[1],
        failures: n[2] + n[3] + n[4] + n[5],
        reopens: n[5],
    }
}

/// Each process's event numbers, as found.
type Seen = HashMap<u32, Vec<u64>>;

/// Every event of the log's history, by process: its numbers in the order they are found
/// (copies in name order, then the active file). Lines that are not events (a killed
/// process's torn last one) are counted.
fn history(dir: &Path) -> (Seen, usize, Vec<(String, usize)>) {
    let mut seen = Seen::new();
    let mut torn = 0;
    let mut files = Vec::new();
    for (file, text) in common::history(dir, "app.log") {
        assert!(text.is_empty() || text.ends_with('\n'), "{file} ends inside a line");
        files.push((file.clone(), text.len()));
        for line in text.lines() {
            let parsed = line.strip_prefix('p').and_then(|l| {
                let mut parts = l.splitn(3, ' ');
                let id = parts.next()?.parse::<u32>().ok()?;
                let seq = parts.next()?.parse::<u64>().ok()?;
                let pad = parts.next()?;
                (event(id, seq) == format!("{line}\n") && pad.bytes().all(|b| b == b'x'))
                    .then_some((id, seq))
            });
            match parsed {
                Some((id, seq)) => seen.entry(id).or_default().push(seq),
                None => torn += 1,
            }
        }
    }
    (seen, torn, files)
}

/// Each process's events are exactly 0..n, once each, in order.
fn assert_exactly_once_in_order(seen: &Seen, id: u32, n: u64) {
    let got = seen.get(&id).map_or(&[][..], |v| v.as_slice());
    if got.len() as u64 == n && got.iter().copied().eq(0..n) {
        return;
    }
    let first_bad = got.iter().enumerate().find(|(i, s)| **s != *i as u64);
    panic!("process {id}: {} events of {n}; first out of place: {first_bad:?}", got.len());
}

#[test]
fn several_processes_each_event_exactly_once_in_order_across_rotations() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 6_000;
    const MAX: u64 = 8 * 1024;
    let modes = [WriteMode::Direct, WriteMode::Buffered, WriteMode::Staged, WriteMode::Direct];
    let children: Vec<_> =
        modes.iter().enumerate().map(|(i, m)| spawn(dir.path(), i as u32, N, *m, MAX)).collect();
    go(dir.path(), 0..modes.len() as u32);
    let stats: Vec<_> = children.into_iter().map(wait).collect();
    // The last writer is gone: let a new one finish the maintenance the rotations asked
    // for (they may have left it to each other).
    RollingFile::builder()
        .settings(settings(WriteMode::Direct, MAX))
        .build(dir.path().join("app.log"))
        .unwrap()
        .maintain_now();

    let (seen, torn, files) = history(dir.path());
    assert_eq!(torn, 0, "no torn or interleaved line");
    for id in 0..modes.len() as u32 {
        assert_exactly_once_in_order(&seen, id, N);
    }
    assert!(stats.iter().all(|s| s.failures == 0), "{stats:?}");
    // A due log rotates once: one copy per rotation, and none of them small (two writers
    // rotating for the same trigger would leave a nearly empty copy).
    let rotations: u64 = stats.iter().map(|s| s.rotations).sum();
    let copies = files.len() as u64 - 1;
    assert_eq!(copies, rotations, "{stats:?}");
    // The size trigger fired: 4 x 6,000 events hold ~24 times the limit, and a writer that
    // finds the log due either rotates it or finds the rotation lock held by one that is
    // rotating it (never both skipping), so at least one copy exists whatever the timing.
    // How many there are depends on the scheduler (a holder descheduled while the others
    // write on makes one long copy), so no count is asserted; the following of one
    // another's rotations is shown, under control, by the next test.
    assert!(rotations >= 1, "{stats:?}");
    let small: Vec<_> = files[..files.len() - 1].iter().filter(|(_, len)| *len < 1024).collect();
    assert!(small.is_empty(), "copies far under the size limit: {small:?}");
    // Issue 21: a due writer that finds another rotating waits for it (20 ms at most)
    // rather than write on past the limit: the overshoot is an event or a buffer (1 KiB
    // here) per writer, not what four processes write while one rotates (~150 KiB copies
    // at this 8 KiB limit before). The bound allows for waits cut short on a loaded box:
    // after one, a writer writes for 0.1 ms and waits again (ten runs under
    // `stress-ng --cpu 2`: 14 KiB at most).
    let largest = files[..files.len() - 1].iter().map(|(_, len)| *len).max().unwrap_or(0);
    eprintln!("largest copy: {largest} bytes of {} copies", files.len() - 1);
    assert!(largest <= 4 * MAX as usize, "a copy of {largest} bytes at a {MAX}-byte limit");
}

#[test]
fn a_rotation_by_one_process_is_followed_by_the_others_mid_burst() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 20_000;
    // Three bursting processes that never rotate by themselves (their limit is far off)
    // open the log and wait. A fourth, alone, writes ~2.7 times the limit and exits: its
    // rotations are finished before any burster writes, so each burster's first write
    // must notice them (a memory read), whatever the scheduler does. Then the bursters
    // write together with a fifth process that rotates for all while they burst: the
    // shared size counts every process's bytes.
    const MAX: u64 = 16 * 1024;
    let mut bursters: Vec<_> = (0..3)
        .map(|i| spawn_on(dir.path(), i, N, WriteMode::Direct, u64::MAX / 2, "go.bursters"))
        .collect();
    bursters.push(spawn_on(dir.path(), 4, N, WriteMode::Direct, MAX, "go.bursters"));
    for id in [0, 1, 2, 4] {
        wait_for(&dir.path().join(format!("ready.{id}")), "a burster to open the log");
    }
    let first = spawn(dir.path(), 3, 2_000, WriteMode::Direct, MAX);
    go(dir.path(), [3]);
    let first = wait(first);
    assert!(first.rotations >= 1, "alone, past the limit with no gates: {first:?}");
    std::fs::write(dir.path().join("go.bursters"), "").unwrap();
    let stats: Vec<_> = bursters.into_iter().map(wait).collect();
    let (seen, torn, files) = history(dir.path());
    assert_eq!(torn, 0);
    for id in [0, 1, 2, 4] {
        assert_exactly_once_in_order(&seen, id, N);
    }
    assert_exactly_once_in_order(&seen, 3, 2_000);
    assert!(stats.iter().all(|s| s.failures == 0) && first.failures == 0, "{stats:?}");
    assert!(stats[..3].iter().all(|s| s.rotations == 0), "{stats:?}");
    assert!(stats[..3].iter().all(|s| s.followed >= 1), "every burster followed: {stats:?}");
    let rotations = first.rotations + stats[3].rotations;
    assert_eq!(files.len() as u64 - 1, rotations, "one copy per rotation: {stats:?}");
}

/// Waits (60 s at most) until `path` exists.
fn wait_for(path: &Path, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "waited 60 s for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn pseudo_random(n: u64) -> u64 {
    let t = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    (t ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % 1000
}

#[test]
fn a_process_killed_at_random_leaves_nothing_the_others_cannot_continue_from() {
    let dir = tempfile::tempdir().unwrap();
    const N: u64 = 4_000;
    const MAX: u64 = 2048; // a rotation every ~40 events: kills land in them often
    let mut acked = Vec::new();
    for round in 0..3u32 {
        let victim_id = 10 + round;
        let steady: Vec<_> =
            (0..2).map(|i| spawn(dir.path(), round * 2 + i, N, WriteMode::Direct, MAX)).collect();
        let _ = std::fs::remove_file(dir.path().join("go"));
        let mut victim = spawn(dir.path(), victim_id, 0, WriteMode::Direct, MAX);
        go(dir.path(), [round * 2, round * 2 + 1]);
        let stdout = victim.stdout.take().unwrap();
        let (first_tx, first_rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(seq) = line.strip_prefix("ACK ") {
                    if last.is_none() {
                        let _ = first_tx.send(());
                    }
                    last = Some(seq.parse::<u64>().unwrap());
                }
            }
            last
        });
        first_rx.recv_timeout(Duration::from_secs(60)).expect("the victim never wrote");
        std::thread::sleep(Duration::from_millis(pseudo_random(round.into()) / 4));
        victim.kill().unwrap(); // SIGKILL; TerminateProcess on Windows
        victim.wait().unwrap();
        acked.push((victim_id, reader.join().unwrap()));
        for child in steady {
            // Nothing lost or failed; a kill between the victim's rename and its bump of
            // the generation leaves the path empty, and a steady writer then starts the new
            // file itself (seen under Wine, where the window is wider): that is the
            // recovery, not a failure.
            let stats = wait(child);
            assert_eq!(stats.failures - stats.reopens, 0, "{stats:?}");
            assert!(stats.reopens <= 1, "one kill, at most one new file: {stats:?}");
        }
    }
    // A writer started afterwards continues too, and its first pass finishes what the
    // kills interrupted.
    let log = RollingFile::builder()
        .settings(settings(WriteMode::Direct, MAX))
        .build(dir.path().join("app.log"))
        .unwrap();
    common::write_record(&log, event(99, 0).as_bytes(), false).unwrap();
    log.maintain_now();
    assert_eq!(log.stats().maintenance_errors, 0, "{:?}", log.stats());
    drop(log);

    let (seen, torn, _) = history(dir.path());
    // A kill inside a write(2) may leave the front of that one unacknowledged event.
    assert!(torn <= 3, "{torn} torn lines from 3 kills");
    for id in 0..6 {
        assert_exactly_once_in_order(&seen, id, N);
    }
    assert_exactly_once_in_order(&seen, 99, 1);
    for (id, last) in acked {
        let got = seen.get(&id).cloned().unwrap_or_default();
        // Everything acknowledged, maybe the one written but not yet acknowledged.
        let n = got.len() as u64;
        assert!(got.iter().copied().eq(0..n), "victim {id}: once each, in order");
        let last = last.expect("acknowledged some");
        assert!(n == last + 1 || n == last + 2, "victim {id}: {n} events found, {last} acked");
    }
}
