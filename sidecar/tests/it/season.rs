//! A season of unattended operation (issue 20): 120 simulated days of MHM on a generated
//! root, run as MHM runs it, deterministic (no real time is waited for; the only timing is
//! the order the test imposes).
//!
//! - The service's `app.log` is written through the real writer by two processes each day
//!   (children of this test binary, each with a `ManualClock` set to that day), so size and
//!   midnight rotations, overflow, compression and pruning really happen across processes.
//! - Every day each user gets v2 deliveries in `sent_messages.json`.
//! - `maintain` runs every simulated hour through the library with the run's time injected
//!   (as `--now` does), after the crash recovery the binary runs first, with off-site copies
//!   on (a `file://` store, encrypted to a key made by `remote keygen`).
//! - Faults: the store unreachable for two days, a bad value in `.env` for half a day, the
//!   newest local backup corrupted, a push stopped dead mid-upload (`FailPoint`), a killed
//!   weekly backup's temporary file.
//! - Every day: each writer's events are exactly once, whole, in order, and what is left of
//!   them is a suffix of what it wrote (retention removes the oldest copies first, never a
//!   newer one) holding all of the last day; every delivery is exactly once (active file or
//!   archives); retention bounds hold; `status` is healthy exactly when no fault is active
//!   (each fault's effect gone within a day of its end); no temporary file outlives a run.
//! - At the end, the fire drill: an empty folder, the key and the store; `remote restore`
//!   brings back users, index and config byte for byte as they were when the newest copy in
//!   the store was made.

use crate::common;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use mhm_sidecar::{maintain, recover, remote, status, Ctx, FailPoint, Faults};

const DAYS: i64 = 120;
const WRITERS: u32 = 2;
const EVENTS_PER_DAY: u64 = 150;
const USERS: [&str; 3] = ["u1", "u2", "u3"];

/// The child: writes `count` events of writer `id` from `first` on, at that day's times.
#[test]
#[ignore = "run as a child process by the season test"]
fn season_writer() {
    let var = |n: &str| std::env::var(n).expect("run by the season test");
    let logs = PathBuf::from(var("SEASON_LOGS"));
    let id: u32 = var("SEASON_ID").parse().unwrap();
    let first: u64 = var("SEASON_FIRST").parse().unwrap();
    let count: u64 = var("SEASON_COUNT").parse().unwrap();
    let start: i64 = var("SEASON_START").parse().unwrap();
    let clock = mhm_log::ManualClock::new(Utc.timestamp_opt(start, 0).unwrap());
    let log = mhm_log::RollingFile::builder()
        .settings(log_settings())
        .clock(clock.clone())
        .build(logs.join("app.log"))
        .unwrap();
    // Opened: say so, and write when both are (see `spawn_writer`).
    let go = PathBuf::from(var("SEASON_GO"));
    fs::write(go.with_extension(format!("ready{id}")), "").unwrap();
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(1));
    }
    for seq in first..first + count {
        (&log).write_all(event(id, seq).as_bytes()).unwrap();
        clock.advance(Duration::from_secs(240)); // 150 events over ten hours
    }
    log.flush().unwrap();
    let s = log.stats();
    assert_eq!((s.lost_events, s.write_errors), (0, 0), "{s:?}");
}

fn log_settings() -> mhm_log::Settings {
    mhm_log::Settings::default()
        .max_bytes(16 * 1024)
        .rotate_at(mhm_log::RotateAt::UtcMidnight)
        .compress(true)
}

fn event(id: u32, seq: u64) -> String {
    format!("p{id} {seq:08} {}\n", "e".repeat(60 + (seq % 17) as usize))
}

/// A writer process for one day. It opens the log, makes `<go>.ready<id>`, and writes once
/// `go` exists: the two open the log one after the other's open, then write together.
/// (A writer opening the log while another is inside a write could take that half-written
/// last line for a torn one and end it with a newline: an empty line in the log, found by
/// this test. The writer now looks again 20 ms later before it ends a line; the test opens
/// one after the other so that it does not rest on that timing.)
fn spawn_writer(logs: &Path, id: u32, first: u64, start: DateTime<Utc>, go: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "season::season_writer", "--test-threads=1", "-q"])
        .env("SEASON_LOGS", logs)
        .env("SEASON_ID", id.to_string())
        .env("SEASON_FIRST", first.to_string())
        .env("SEASON_COUNT", EVENTS_PER_DAY.to_string())
        .env("SEASON_START", start.timestamp().to_string())
        .env("SEASON_GO", go)
        .stdout(std::process::Stdio::null())
        .launch()
        .unwrap()
}

/// Every line of `app.log`'s history: archive copies, backups, the active file.
fn log_lines(logs: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = Vec::new();
    for sub in ["archive", "backups"] {
        let mut names: Vec<String> = names(&logs.join(sub))
            .into_iter()
            .filter(|n| n.starts_with("app.log.") && !n.starts_with('.'))
            .collect();
        names.sort_by_key(|n| copy_key(n));
        files.extend(names.into_iter().map(|n| logs.join(sub).join(n)));
    }
    files.push(logs.join("app.log"));
    let mut lines = Vec::new();
    for f in files {
        let Ok(bytes) = fs::read(&f) else { continue };
        let text = if f.extension().is_some_and(|e| e == "gz") {
            let mut out = String::new();
            flate2::read::MultiGzDecoder::new(&bytes[..]).read_to_string(&mut out).unwrap();
            out
        } else {
            String::from_utf8(bytes).unwrap()
        };
        assert!(text.is_empty() || text.ends_with('\n'), "{}: a torn last line", f.display());
        lines.extend(text.lines().map(String::from));
    }
    lines
}

/// `app.log.<date>[.N][.gz]` in write order.
fn copy_key(name: &str) -> (String, u32) {
    let rest = name.trim_start_matches("app.log.").trim_end_matches(".gz");
    match rest.split_once('.') {
        Some((date, n)) => (date.to_string(), n.parse().unwrap_or(0)),
        None => (rest.to_string(), 0),
    }
}

/// Adds two v2 deliveries a user, newest first, as the service writes them.
fn deliver(root: &Path, day: i64, now: DateTime<Utc>, all: &mut BTreeSet<String>) {
    for user in USERS {
        let path = root.join("data/users").join(user).join("messages/sent_messages.json");
        let mut doc: serde_json::Value = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .filter(|v: &serde_json::Value| v.get("deliveries").is_some())
            .unwrap_or_else(|| serde_json::json!({"schema_version": 2, "deliveries": []}));
        // Sent a year before the simulated day, so that monthly archiving moves them.
        let sent = now - chrono::Duration::days(360);
        for k in 0..2 {
            let id = format!("{user}-d{day:03}-{k}");
            let entry = serde_json::json!({
                "id": id, "message_template_id": "t1", "sent_text": "ping", "category": "motivational",
                "channel": "discord", "status": "sent", "source": {"kind": "scheduled"},
                "sent_at": sent.format("%Y-%m-%d %H:%M:%S").to_string(), "time_period": "morning",
                "metadata": {}
            });
            doc["deliveries"].as_array_mut().unwrap().insert(0, entry);
            all.insert(id);
        }
        doc["updated_at"] = now.format("%Y-%m-%d %H:%M:%S").to_string().into();
        let tmp = path.with_extension("json.tmp");
        fs::write(&tmp, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        fs::rename(&tmp, &path).unwrap();
    }
}

/// Every delivery id in the users' active files and archives (ours and the service's).
fn delivery_ids(root: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    for user in USERS {
        let messages = root.join("data/users").join(user).join("messages");
        let mut files = vec![messages.join("sent_messages.json")];
        for n in names(&messages.join("archives")) {
            files.push(messages.join("archives").join(n));
        }
        for f in files {
            let doc: serde_json::Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
            for d in doc["deliveries"].as_array().into_iter().flatten() {
                ids.push(d["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

/// The users, the index and the config files: what a fire drill must bring back.
fn recoverable(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut all = BTreeMap::new();
    for (k, v) in snapshot(&root.join("data/users")) {
        all.insert(Path::new("data/users").join(k), v);
    }
    for f in ["data/user_index.json", ".env", "requirements.txt"] {
        all.insert(PathBuf::from(f), fs::read(root.join(f)).unwrap());
    }
    all
}

fn temp_files(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for dir in ["data", "data/backups", "logs", "logs/backups", "logs/archive"] {
        for n in names(&root.join(dir)) {
            if n.starts_with(".tmp-") {
                found.push(format!("{dir}/{n}"));
            }
        }
    }
    found
}

#[test]
#[cfg_attr(
    windows,
    ignore = "not yet run under Wine (2,880 maintain runs and 240 writer processes); the \
              parts it exercises run there in their own tests"
)]
fn a_season_of_unattended_operation() {
    let root = make_root();
    let r = root.path();
    let store = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
    let ctx_at = |now: DateTime<Utc>| Ctx::new(r, now).unwrap();
    let key = keys.path().join("key.txt");
    let public = remote::keygen(&ctx_at(start), &key).unwrap();
    let env = format!(
        "# config\nAPP_MODE=season\nLOG_MAX_BYTES=16384\nLOG_ROTATE_AT=utc-midnight\n\
         LOG_COMPRESS_BACKUPS=true\nMESSAGE_ARCHIVE_RETENTION_DAYS=0\n\
         MHM_REMOTE_URL=file://{}\nMHM_REMOTE_RECIPIENT={public}\nMHM_REMOTE_IDENTITY_FILE={}\n",
        store.path().display(),
        key.display()
    );
    write(&r.join(".env"), &env);
    fs::remove_file(r.join("logs/app.log")).unwrap();
    for user in USERS {
        write(&r.join("data/users").join(user).join("messages/sent_messages.json"), "{}");
    }
    let logs = r.join("logs");
    let ready_dir = tempfile::tempdir().unwrap();
    let mut next_seq = [0u64; WRITERS as usize];
    let mut deliveries = BTreeSet::new();
    let mut at_backup: BTreeMap<String, BTreeMap<PathBuf, Vec<u8>>> = BTreeMap::new();
    let mut unhealthy_days = Vec::new();

    for day in 0..DAYS {
        let midnight = start + chrono::Duration::days(day);
        for hour in 0..24 {
            let now = midnight + chrono::Duration::hours(hour);
            // Faults, switched on and off at their times.
            let outage = (20..22).contains(&day);
            let bad_env = day == 30 && (6..18).contains(&hour);
            let mut text = env.clone();
            if outage {
                text = text.replace(
                    &format!("file://{}", store.path().display()),
                    &format!("file://{}/unmounted", store.path().display()),
                );
            }
            if bad_env {
                text.push_str("BACKUP_MAX_COUNT=ten\n");
            }
            if fs::read_to_string(r.join(".env")).unwrap() != text {
                fs::write(r.join(".env"), &text).unwrap();
            }
            if day == 70 && hour == 0 {
                // What a weekly backup killed mid-write leaves (its writer is gone).
                write(
                    &r.join("data/backups/.tmp-3999999-weekly_backup_x.zip"),
                    "PK\x03\x04partial",
                );
            }
            if hour == 8 {
                // The service's day: two processes on app.log, then the deliveries.
                let go = ready_dir.path().join(format!("go-{day}"));
                let children: Vec<Child> = (0..WRITERS)
                    .map(|id| {
                        let child = spawn_writer(&logs, id, next_seq[id as usize], now, &go);
                        // One opens the log, then the next: no write is under way meanwhile.
                        let ready = go.with_extension(format!("ready{id}"));
                        let deadline = std::time::Instant::now() + Duration::from_secs(60);
                        while !ready.exists() {
                            assert!(
                                std::time::Instant::now() < deadline,
                                "a writer never opened the log"
                            );
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        child
                    })
                    .collect();
                fs::write(&go, "").unwrap();
                for c in children {
                    let out = c.wait_with_output().unwrap();
                    assert!(out.status.success(), "day {day}: a writer failed");
                }
                for s in &mut next_seq {
                    *s += EVENTS_PER_DAY;
                }
                deliver(r, day, now, &mut deliveries);
            }
            // maintain, as the binary runs it: recovery first, then the due jobs.
            let faults =
                if day == 63 && hour == 3 { vec![FailPoint::RemoteMidUpload] } else { vec![] };
            let ctx = ctx_at(now).with_faults(Faults(faults));
            let before: BTreeSet<String> = names(&r.join("data/backups")).into_iter().collect();
            recover::after_crash(&ctx);
            let policy = mhm_sidecar::backup::PrunePolicy::from_settings(&ctx, None, None).ok();
            maintain::run(&ctx, policy, false).unwrap();
            for n in names(&r.join("data/backups")) {
                if n.starts_with("weekly_backup_") && !before.contains(&n) {
                    at_backup.insert(n.trim_end_matches(".zip").to_string(), recoverable(r));
                }
            }
            assert_eq!(
                temp_files(r),
                Vec::<String>::new(),
                "day {day} {hour}:00: a temporary file outlived the run"
            );
            if hour == 12 {
                let st = status::status(&ctx_at(now)).unwrap();
                if !st.healthy {
                    unhealthy_days
                        .push((day, st.reasons.iter().map(|r| r.kind).collect::<Vec<_>>()));
                }
            }
            if day == 50 && hour == 12 {
                // The newest local backup corrupted (after today's check).
                let newest = names(&r.join("data/backups"))
                    .into_iter()
                    .filter(|n| n.starts_with("weekly_backup_"))
                    .max()
                    .unwrap();
                let path = r.join("data/backups").join(newest);
                let bytes = fs::read(&path).unwrap();
                fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            }
        }
        // The day's checks. Log events: exactly once, whole, in order; what is left of each
        // writer is a suffix of what it wrote, holding all of the last day.
        let lines = log_lines(&logs);
        let mut seen: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for l in &lines {
            let mut parts = l.splitn(3, ' ');
            let id: u32 = parts
                .next()
                .unwrap()
                .trim_start_matches('p')
                .parse()
                .unwrap_or_else(|_| panic!("day {day}: not an event: {l:?}"));
            let seq: u64 = parts.next().unwrap().parse().unwrap();
            assert_eq!(format!("{l}\n"), event(id, seq), "day {day}: a torn or changed line");
            seen.entry(id).or_default().push(seq);
        }
        for id in 0..WRITERS {
            let got = &seen[&id];
            let first = got[0];
            let want: Vec<u64> = (first..next_seq[id as usize]).collect();
            assert_eq!(got, &want, "day {day}: writer {id}: not exactly once, in order, a suffix");
            assert!(first + EVENTS_PER_DAY <= next_seq[id as usize], "day {day}: today's events");
        }
        // Retention bounds: 7 copies in backups/, 7 in archive/, none older than 30 days.
        let backups =
            names(&logs.join("backups")).iter().filter(|n| n.starts_with("app.log.")).count();
        let archive: Vec<String> = names(&logs.join("archive"));
        assert!(backups <= 7 && archive.len() <= 7, "day {day}: {backups} backups, {archive:?}");
        let local: Vec<String> = names(&r.join("data/backups"))
            .into_iter()
            .filter(|n| n.starts_with("weekly_backup_"))
            .collect();
        assert!(local.len() <= 10 + 1, "day {day}: {local:?}");
        // Deliveries: every one exactly once, in the active file or an archive.
        let mut ids = delivery_ids(r);
        ids.sort();
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(ids.len(), unique.len(), "day {day}: a delivery twice");
        assert_eq!(unique, deliveries, "day {day}: a delivery lost");
    }
    // Unhealthy exactly while a fault was active: the outage (days 20, 21) and the bad
    // setting (day 30, 06:00-18:00); the corrupted backup (day 50, after its check) and the
    // stopped push (day 63, 03:00) were repaired by the next runs, before the next check.
    let days: Vec<i64> = unhealthy_days.iter().map(|(d, _)| *d).collect();
    assert_eq!(days, [20, 21, 30], "{unhealthy_days:?}");
    assert!(unhealthy_days[2].1.contains(&"setting"), "{unhealthy_days:?}");
    // The messages job did move deliveries into archives on the way.
    assert!(USERS
        .iter()
        .any(|u| !names(&r.join("data/users").join(u).join("messages/archives")).is_empty()));

    // Nine days without `maintain`: the newest off-site copy is past REMOTE_MAX_AGE_DAYS (8).
    let later = status::status(&ctx_at(start + chrono::Duration::days(DAYS + 9))).unwrap();
    let kinds: Vec<&str> = later.reasons.iter().map(|r| r.kind).collect();
    assert!(kinds.contains(&"offsite_stale") && kinds.contains(&"overdue"), "{kinds:?}");

    // The fire drill: an empty machine, the key and the store.
    let ctx = ctx_at(start + chrono::Duration::days(DAYS));
    let listing =
        remote::Remote::open(&ctx, &remote::Overrides::default()).unwrap().list().unwrap();
    // A weekly backup a week went off-site (the one stopped mid-upload too, an hour later).
    let whole = listing.copies.iter().filter(|c| c.status == remote::Status::Ok).count();
    assert!(whole >= (DAYS / 7) as usize, "{whole} copies in the store");
    let newest = listing.copies.iter().rev().find(|c| c.status == remote::Status::Ok).unwrap();
    let want = &at_backup[&newest.name];
    let new = tempfile::tempdir().unwrap();
    let fresh = new.path().join("mhm");
    let out = fire_drill(&fresh, store.path(), &key);
    assert_code(&out, 0);
    assert!(stdout(&out).contains(&format!("restored {}", newest.name)), "{}", stdout(&out));
    let got = recoverable(&fresh);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (k, v) in want {
        assert!(&got[k] == v, "{}: not as it was when {} was made", k.display(), newest.name);
    }
}
