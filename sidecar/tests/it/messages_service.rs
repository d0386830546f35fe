//! `messages archive` beside a running service (issue 21, item 4). The service's writer is
//! played here by [`add_message`], which locks the file as MHM's `core/file_locking.py`
//! does and adds a message as its `store_sent_message` does. Archive runs meet it at a
//! point the test chooses (the writer starts while the archive holds the lock), free-running
//! (a writer process beside archive runs in a loop), and after the archive was killed at
//! each step of its rewrite. The property every test asserts: each message the writer wrote,
//! and each one the file held, is afterwards in the active file or an archive file, once.

use crate::common;
use crate::messages::{delivery, msg_run, new_root, service_json, user_dir, NOW};

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use common::*;
use mhm_sidecar::{messages, Ctx, FailPoint, Hook};
use serde_json::{json, Value};

// === the service's writer, as MHM writes ===

/// How the writer puts its change into the file once it holds the lock.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Through the handle `file_lock` yields (the file opened `r+b`): read from it and
    /// written back into it.
    Handle,
    /// As `safe_json_write` does: read by name, a temporary file beside it moved over it,
    /// all while the lock is held.
    Replace,
}

/// What the writer does with a file it cannot parse.
#[derive(Clone, Copy, Debug)]
enum OnInvalid {
    /// Fails the test: a writer holding the lock must never see a half-written file.
    Fail,
    /// Starts from `{}`, as MHM's loaders do (its `safe_json_read` returns its default, its
    /// `load_json_data` recreates the file with one).
    StartOver,
}

/// How long the writer waits for the lock before it gives up (`safe_json_write`: 10 s).
const WRITER_WAIT: Duration = Duration::from_secs(10);

/// The service's lock, taken as `file_lock` takes it: on unix the file opened `r+b` and
/// `flock(LOCK_EX | LOCK_NB)` retried on that one handle; on Windows `<file>.lock` created
/// exclusively (`open(..., "x")`), retried, removed afterwards, the file then opened `r+b`.
/// (MHM retries every 100 ms; 5 ms here, which changes nothing but the test's length.)
struct Held {
    file: File,
    #[cfg(not(unix))]
    marker: PathBuf,
}

#[cfg(not(unix))]
impl Drop for Held {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.marker);
    }
}

/// Takes the lock on `path`. `opened` runs once the writer is bound to what it will lock
/// (on unix: its handle is open on the file as it is now), with whether the lock was taken
/// by someone else at the first try.
fn lock_like_mhm(path: &Path, opened: impl FnOnce(bool)) -> Held {
    let start = Instant::now();
    let retry = |what: &str| {
        assert!(start.elapsed() < WRITER_WAIT, "the service waited {WRITER_WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(5));
    };
    #[cfg(unix)]
    {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap();
        let taken = |f: &File| match f.try_lock() {
            Ok(()) => true,
            Err(fs::TryLockError::WouldBlock) => false,
            Err(fs::TryLockError::Error(e)) => panic!("flock: {e}"),
        };
        let first = taken(&file);
        opened(!first);
        if !first {
            while !taken(&file) {
                retry("the lock");
            }
        }
        Held { file }
    }
    #[cfg(not(unix))]
    {
        let mut marker = path.as_os_str().to_owned();
        marker.push(".lock");
        let marker = PathBuf::from(marker);
        let create = || match OpenOptions::new().write(true).create_new(true).open(&marker) {
            Ok(_) => true,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                false
            }
            Err(e) => panic!("creating {}: {e}", marker.display()),
        };
        let first = create();
        opened(!first);
        if !first {
            while !create() {
                retry("the lock file");
            }
        }
        let file = OpenOptions::new().read(true).write(true).open(path).unwrap();
        Held { file, marker }
    }
}

/// Adds `delivery` as MHM's `store_sent_message` does (the file read, the delivery put
/// first in `deliveries`, `{schema_version, updated_at, deliveries}` written in its style),
/// holding the service's lock from before the read to after the write.
fn add_message(
    path: &Path,
    delivery: &Value,
    mode: Mode,
    on_invalid: OnInvalid,
    opened: impl FnOnce(bool),
) {
    let mut held = lock_like_mhm(path, opened);
    let mut text = Vec::new();
    match mode {
        Mode::Handle => {
            held.file.seek(SeekFrom::Start(0)).unwrap();
            held.file.read_to_end(&mut text).unwrap();
        }
        Mode::Replace => text = fs::read(path).unwrap(),
    }
    let data: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => match on_invalid {
            OnInvalid::Fail => panic!(
                "the service, holding its lock, read a file that is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&text[..text.len().min(200)])
            ),
            OnInvalid::StartOver => json!({}),
        },
    };
    let mut deliveries = data["deliveries"].as_array().cloned().unwrap_or_default();
    deliveries.insert(0, delivery.clone());
    let out = service_json(&json!({
        "schema_version": 2, "updated_at": "2026-03-20 10:30:00", "deliveries": deliveries,
    }));
    match mode {
        Mode::Handle => {
            held.file.seek(SeekFrom::Start(0)).unwrap();
            held.file.write_all(&out).unwrap();
            held.file.set_len(out.len() as u64).unwrap();
        }
        Mode::Replace => {
            // `tempfile.mkstemp(dir=..., prefix=".tmp_", suffix=".json")`, then `shutil.move`.
            let tmp = path.with_file_name(format!(".tmp_{}.json", std::process::id()));
            let mut f = File::create(&tmp).unwrap();
            f.write_all(&out).unwrap();
            f.sync_all().unwrap();
            drop(f);
            fs::rename(&tmp, path).unwrap();
        }
    }
    drop(held);
}

// === what the files hold ===

fn active_path(root: &Path) -> PathBuf {
    user_dir(root, "u1").join("sent_messages.json")
}

fn journal_path(root: &Path) -> PathBuf {
    user_dir(root, "u1").join(".sent_messages.json.journal")
}

/// The ids of the deliveries in the JSON file at `path`, added to `ids`; false when the
/// file is not JSON.
fn count_ids(path: &Path, ids: &mut BTreeMap<String, usize>) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(&fs::read(path).unwrap()) else {
        return false;
    };
    for d in doc["deliveries"].as_array().into_iter().flatten() {
        *ids.entry(d["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    true
}

/// The ids in every archive file of the user (ours in `archives/`, the service's own
/// beside the active file), counted.
fn archived_ids(root: &Path) -> BTreeMap<String, usize> {
    let dir = user_dir(root, "u1");
    let mut ids = BTreeMap::new();
    for folder in [dir.join("archives"), dir.clone()] {
        for name in names(&folder) {
            if name.starts_with("sent_messages_archive_") {
                let path = folder.join(&name);
                assert!(count_ids(&path, &mut ids), "{name}: not JSON");
            }
        }
    }
    ids
}

fn active_ids(root: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    assert!(count_ids(&active_path(root), &mut ids), "the active file is not JSON");
    ids
}

/// Asserts that every id of `expected` is in the active file or an archive, exactly once,
/// and nothing else is, and that no rewrite was left unfinished.
#[track_caller]
fn assert_each_once(root: &Path, expected: &[String]) {
    let mut all = active_ids(root);
    for (id, n) in archived_ids(root) {
        *all.entry(id).or_default() += n;
    }
    let want: BTreeMap<String, usize> = expected.iter().map(|id| (id.clone(), 1)).collect();
    let lost: Vec<&String> = want.keys().filter(|id| !all.contains_key(*id)).collect();
    let twice: Vec<(&String, &usize)> = all.iter().filter(|(_, n)| **n > 1).collect();
    let stray: Vec<&String> = all.keys().filter(|id| !want.contains_key(*id)).collect();
    assert!(
        lost.is_empty() && twice.is_empty() && stray.is_empty(),
        "lost {lost:?}, more than once {twice:?}, from nowhere {stray:?}"
    );
    assert!(!journal_path(root).exists(), "a journal was left");
}

/// A version 2 file of `n` deliveries (ids `d-m<i>`), newest first, every third one older
/// than a year at [`NOW`].
fn service_file(root: &Path, n: usize) -> Vec<String> {
    let mut list = Vec::new();
    for i in 0..n {
        let sent_at = if i % 3 == 2 {
            format!("2024-{:02}-{:02} 09:00:00", 1 + i % 12, 1 + i % 28)
        } else {
            format!("2026-{:02}-{:02} 09:00:00", 1 + i % 3, 1 + i % 28)
        };
        list.push(delivery(&sent_at, &format!("m{i}")));
    }
    let ids = list.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    let doc = json!({"schema_version": 2, "updated_at": "2026-03-01 09:00:00", "deliveries": list});
    write(&active_path(root), service_json(&doc));
    ids
}

fn ctx_at(root: &Path, now: &str) -> Ctx {
    let now = chrono::DateTime::parse_from_rfc3339(now).unwrap().with_timezone(&chrono::Utc);
    Ctx::new(root, now).unwrap()
}

/// The archive, through the library. (Every archive file it makes is stamped [`NOW`], so
/// no retention setting deletes one.)
fn archive(ctx: &Ctx) -> messages::Report {
    messages::archive_messages(ctx, None, 365, false).unwrap()
}

/// This test binary, to run the ignored test `name` of this module as a child process,
/// with its standard output piped.
fn child_test(name: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--ignored", "--exact", &format!("messages_service::{name}")])
        .args(["--nocapture", "--test-threads=1", "-q"])
        .stdout(Stdio::piped());
    cmd
}

// === a writer that meets the archive at a point the test sets ===

// regression: the archive replaced the file by a rename while it held the service's lock,
// so a writer waiting for that lock got it on the old, unlinked file and wrote its message
// there (20 of 300 messages lost in 27 runs beside a writer)
#[test]
fn a_writer_that_waits_for_the_lock_while_the_archive_works_loses_nothing() {
    for mode in [Mode::Handle, Mode::Replace] {
        let root = new_root();
        let r = root.path();
        let mut expected = service_file(r, 9);
        expected.push("d-new".to_string());
        let path = active_path(r);
        // At the point where the archive holds the service's lock and has not read the file
        // yet, the writer starts: it opens the file, finds the lock taken, and waits.
        let writer = Arc::new(Mutex::new(None));
        let hook: Hook = {
            let writer = writer.clone();
            Arc::new(move |point| {
                if point != FailPoint::MessagesLocked {
                    return;
                }
                let (opened_tx, opened_rx) = mpsc::channel();
                let path = path.clone();
                let thread = std::thread::spawn(move || {
                    let new = delivery("2026-03-20 10:00:00", "new");
                    add_message(&path, &new, mode, OnInvalid::Fail, |busy| {
                        opened_tx.send(busy).unwrap()
                    });
                });
                let busy = opened_rx.recv().expect("the writer started");
                assert!(busy, "{mode:?}: the archive must hold the service's lock");
                *writer.lock().unwrap() = Some(thread);
            })
        };
        let report = archive(&ctx_at(r, NOW).with_hook(hook));
        writer.lock().unwrap().take().expect("the hook ran").join().expect("the writer");
        assert!(report.ok(), "{mode:?}: {:?}", report.problems);
        assert_eq!(report.users[0].archived, 3, "{mode:?}");
        assert_each_once(r, &expected);
        assert_eq!(active_ids(r).get("d-new"), Some(&1), "{mode:?}: the new message is active");
    }
}

// === a writer process beside archive runs ===

/// The child of [`archive_runs_beside_a_writer_process_lose_nothing`]: adds `MHM_TEST_COUNT`
/// messages to `MHM_TEST_FILE`, one way and the other in turn, every third one older than a
/// year, saying `ACK <id>` once each write returned.
#[test]
#[ignore = "run as a child process by the tests of this module"]
fn service_writer_process() {
    let Ok(path) = std::env::var("MHM_TEST_FILE") else { return };
    let count: usize = std::env::var("MHM_TEST_COUNT").unwrap().parse().unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let mode = if i % 2 == 0 { Mode::Handle } else { Mode::Replace };
        let sent_at = if i % 3 == 0 { "2024-05-05 05:05:05" } else { "2026-03-20 10:00:00" };
        let d = delivery(sent_at, &format!("w{i}"));
        add_message(Path::new(&path), &d, mode, OnInvalid::Fail, |_| {});
        writeln!(out, "ACK {}", d["id"].as_str().unwrap()).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn archive_runs_beside_a_writer_process_lose_nothing() {
    const COUNT: usize = 150;
    let root = new_root();
    let r = root.path();
    let mut expected = service_file(r, 12);
    let mut child = child_test("service_writer_process")
        .env("MHM_TEST_FILE", active_path(r))
        .env("MHM_TEST_COUNT", COUNT.to_string())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let acks = std::thread::spawn(move || {
        let lines = BufReader::new(stdout).lines().map_while(Result::ok);
        lines.filter_map(|l| l.strip_prefix("ACK ").map(String::from)).collect::<Vec<_>>()
    });
    // Archive runs, one after the other, for as long as the writer writes, and one after.
    let env = [("MESSAGE_ARCHIVE_RETENTION_DAYS", "0")];
    let args = ["--now", NOW, "messages", "archive"];
    loop {
        let done = child.try_wait().unwrap().is_some();
        assert_code(&msg_run(r, &env, &args), 0);
        if done {
            break;
        }
    }
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "the writer failed: {err}");
    let acked = acks.join().unwrap();
    assert_eq!(acked.len(), COUNT, "{err}");
    expected.extend(acked);
    assert_each_once(r, &expected);
    // And every message older than a year is archived.
    let active = fs::read_to_string(active_path(r)).unwrap();
    assert!(!active.contains("2024-"), "an old message is still active");
}

// === killed at each step ===

/// The child of [`an_archive_killed_at_each_step_of_its_rewrite_loses_nothing`]: archives
/// `MHM_TEST_ROOT`, and at the fail point named `MHM_TEST_STOP_AT` says `AT <point>` and
/// waits there, holding whatever it holds, to be killed.
#[test]
#[ignore = "run as a child process by the tests of this module"]
fn archive_process() {
    let Ok(root) = std::env::var("MHM_TEST_ROOT") else { return };
    let stop = std::env::var("MHM_TEST_STOP_AT").unwrap();
    let hook: Hook = Arc::new(move |point| {
        if format!("{point:?}") == stop {
            let mut out = std::io::stdout().lock();
            writeln!(out, "AT {stop}").unwrap();
            out.flush().unwrap();
            loop {
                std::thread::park();
            }
        }
    });
    let report = archive(&ctx_at(Path::new(&root), NOW).with_hook(hook));
    println!("FINISHED {:?}", report.problems);
}

/// The ids in the journal an interrupted rewrite left, if any.
fn journal_ids(root: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    if journal_path(root).exists() {
        assert!(count_ids(&journal_path(root), &mut ids), "the journal is not JSON");
    }
    ids
}

#[test]
fn an_archive_killed_at_each_step_of_its_rewrite_loses_nothing() {
    let steps = [
        FailPoint::MessagesLocked,
        FailPoint::AfterArchiveWrite,
        FailPoint::MessagesJournalWritten,
        FailPoint::MessagesMarked,
        FailPoint::MessagesPartWritten,
        FailPoint::MessagesBodyWritten,
        FailPoint::MessagesRewritten,
    ];
    for (i, step) in steps.iter().enumerate() {
        // Then the next run finds the files as the kill left them, or after the service
        // wrote a message meanwhile (reading a half-written file as MHM does: as `{}`).
        for service_meanwhile in [false, true] {
            let case = format!("{step:?}, service writing meanwhile: {service_meanwhile}");
            let root = new_root();
            let r = root.path();
            // Over 64 KiB kept, so the rewrite writes in more than one part.
            let mut expected = service_file(r, 450);
            let mut child = child_test("archive_process")
                .env("MHM_TEST_ROOT", r)
                .env("MHM_TEST_STOP_AT", format!("{step:?}"))
                .env_remove("MESSAGE_ARCHIVE_RETENTION_DAYS")
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let at = format!("AT {step:?}");
            let reached = lines
                .by_ref()
                .map_while(Result::ok)
                .find(|l| *l == at || l.starts_with("FINISHED"));
            assert_eq!(
                reached.as_deref(),
                Some(at.as_str()),
                "{case}: the archive never stopped there"
            );
            child.kill().unwrap(); // SIGKILL; TerminateProcess on Windows
            child.wait().unwrap();
            // At the kill, every message is in the active file, an archive or the journal.
            let mut held = archived_ids(r);
            if !count_ids(&active_path(r), &mut held) {
                assert!(journal_path(r).exists(), "{case}: a half-written file and no journal");
            }
            for (id, n) in journal_ids(r) {
                *held.entry(id).or_default() += n;
            }
            let lost: Vec<&String> = expected.iter().filter(|id| !held.contains_key(*id)).collect();
            assert!(lost.is_empty(), "{case}: lost at the kill: {lost:?}");
            // The kill left what the step says: from the mark on a half-written file, then
            // a whole one, its journal beside it until the end.
            let marked = fs::read(active_path(r)).unwrap().first() == Some(&b'#');
            let torn = matches!(
                step,
                FailPoint::MessagesMarked
                    | FailPoint::MessagesPartWritten
                    | FailPoint::MessagesBodyWritten
            );
            assert_eq!(marked, torn, "{case}");
            let journaled = i >= 2;
            assert_eq!(journal_path(r).exists(), journaled, "{case}");
            if service_meanwhile {
                let mode = if i % 2 == 0 { Mode::Handle } else { Mode::Replace };
                let d = delivery("2026-03-20 10:00:00", "meanwhile");
                add_message(&active_path(r), &d, mode, OnInvalid::StartOver, |_| {});
                expected.push("d-meanwhile".to_string());
            }
            // The next run finishes what the killed one began: it writes the journal over a
            // half-written file (or finds it whole); after the service wrote one (from `{}`),
            // it puts back what only the journal held; a journal whose messages are all in
            // the file or an archive just goes.
            let out = msg_run(r, &[], &["--now", NOW, "--json", "messages", "archive"]);
            assert_code(&out, 0);
            let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
            let user = &report["users"][0];
            let put_back = user["put_back"].as_u64().unwrap();
            let finished = !service_meanwhile && (torn || *step == FailPoint::MessagesRewritten);
            assert_eq!(user["finished_rewrite"], finished, "{case}: {user}");
            assert_eq!(put_back > 0, torn && service_meanwhile, "{case}: {user}");
            assert_each_once(r, &expected);
            // (A killed run's temporary files go at once where the platform can tell that
            // their writer is dead, Linux; elsewhere after an hour.)
            let left: Vec<String> = names(&user_dir(r, "u1"))
                .into_iter()
                .filter(|n| n.ends_with(".lock") || cfg!(target_os = "linux") && n.starts_with('.'))
                .collect();
            assert!(left.is_empty(), "{case}: left behind: {left:?}");
        }
    }
}

// A run that fails (a full disk, here an injected failure) half way through putting back
// what only a journal held writes the file back as it was and keeps the journal: the
// messages are still there for the next run.
#[test]
fn a_run_that_fails_while_putting_messages_back_loses_none() {
    let root = new_root();
    let r = root.path();
    let mut expected = service_file(r, 300);
    // As a kill after the mark and a service write since left the files: the journal holds
    // what the killed run kept, the file only the message the service wrote from `{}`.
    let kept = fs::read(active_path(r)).unwrap();
    write(&journal_path(r), &kept);
    let d = delivery("2026-03-20 10:00:00", "meanwhile");
    write(
        &active_path(r),
        service_json(&json!({"schema_version": 2, "updated_at": "x", "deliveries": [d]})),
    );
    expected.push("d-meanwhile".to_string());
    for point in [
        FailPoint::MessagesJournalWritten,
        FailPoint::MessagesMarked,
        FailPoint::MessagesPartWritten,
        FailPoint::MessagesRewritten,
    ] {
        let faults = mhm_sidecar::Faults(vec![point]);
        let report = archive(&ctx_at(r, NOW).with_faults(faults));
        assert!(!report.ok(), "{point:?}: the failure is reported");
        assert_eq!(active_ids(r).len(), 1, "{point:?}: the file is as it was");
        let mut held = archived_ids(r);
        for (id, n) in active_ids(r).into_iter().chain(journal_ids(r)) {
            *held.entry(id).or_default() += n;
        }
        let lost: Vec<&String> = expected.iter().filter(|id| !held.contains_key(*id)).collect();
        assert!(lost.is_empty(), "{point:?}: lost {lost:?}");
    }
    let report = archive(&ctx_at(r, NOW));
    assert!(report.ok(), "{:?}", report.problems);
    // The 200 young ones: the first failed run archived the 100 old ones already.
    assert_eq!(report.users[0].put_back, 200);
    assert_each_once(r, &expected);
}
