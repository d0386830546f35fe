//! `logs archive | list | cat | restore` on the real binary.

use crate::common;

use std::fs;

use common::*;

const NOW: &str = "2026-03-20T03:00:00Z";

fn gunzip(path: &std::path::Path) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(fs::File::open(path).unwrap()).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn archive_compresses_old_copies_and_prunes_by_name_age() {
    let root = make_root();
    let r = root.path();
    let logs = r.join("logs");
    // 2026-03-13 00:00 is exactly 7 days before NOW's day start... NOW is 03:00 on the 20th.
    write(&logs.join("backups/app.log.2026-03-13"), "seven days\n"); // 7d 3h: compress
    write(&logs.join("backups/app.log.2026-03-14"), "six days\n"); // 6d 3h: stays
    write(&logs.join("backups/app.log.2026-03-19.1"), "yesterday\n");
    write(&logs.join("archive/app.log.2026-03-01"), "plain in archive\n"); // compress in place
    write(&logs.join("archive/app.log.2026-02-17.gz"), gz(b"31 days\n")); // delete (>= 30 days)
    write(&logs.join("archive/app.log.2026-02-18.gz"), gz(b"30 days 3h\n")); // delete
    write(&logs.join("archive/app.log.2026-02-19.gz"), gz(b"29 days\n")); // keep
    write(&logs.join("archive/notes.txt"), "foreign"); // never touched
    write(&logs.join("errors.log"), "err\n");
    let active = fs::read(logs.join("app.log")).unwrap();

    // Dry run: nothing changes, the plan is printed.
    let before = snapshot(r);
    let out = run(r, &["--now", NOW, "--dry-run", "logs", "archive"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("would gzip logs/backups/app.log.2026-03-13"),
        "{}",
        stdout(&out)
    );
    assert_same(&before, &snapshot(r));

    let out = run(r, &["--now", NOW, "logs", "archive"]);
    assert_code(&out, 0);
    assert_eq!(
        names(&logs.join("archive")),
        ["app.log.2026-02-19.gz", "app.log.2026-03-01.gz", "app.log.2026-03-13.gz", "notes.txt"]
    );
    assert_eq!(names(&logs.join("backups")), ["app.log.2026-03-14", "app.log.2026-03-19.1"]);
    assert_eq!(gunzip(&logs.join("archive/app.log.2026-03-13.gz")), b"seven days\n");
    assert_eq!(gunzip(&logs.join("archive/app.log.2026-03-01.gz")), b"plain in archive\n");
    assert_eq!(fs::read(logs.join("app.log")).unwrap(), active);
    assert_eq!(fs::read(logs.join("errors.log")).unwrap(), b"err\n");
    // A second run has nothing to do.
    let out = run(r, &["--now", NOW, "logs", "archive"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to archive"), "{}", stdout(&out));
}

#[test]
fn archive_keeps_at_most_archive_count_per_log_and_handles_dir() {
    let root = make_root();
    let r = root.path();
    for d in 1..=9 {
        write(
            &r.join(format!("logs/archive/app.log.2026-03-0{d}.gz")),
            gz(format!("{d}\n").as_bytes()),
        );
    }
    write(&r.join("tests/logs/backups/test.log.2026-03-01"), "t\n");
    let out = run(
        r,
        &["--now", "2026-03-10T12:00:00Z", "--json", "logs", "archive", "--dir", "tests/logs"],
    );
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 3, "{v}");
    let left = names(&r.join("logs/archive"));
    assert_eq!(left.len(), 7);
    assert_eq!(left[0], "app.log.2026-03-03.gz");
    assert_eq!(names(&r.join("tests/logs/archive")), ["test.log.2026-03-01.gz"]);
    // A --dir that is not there is bad usage, named.
    let out = run(r, &["logs", "archive", "--dir", "no/such/logs"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("no/such/logs"), "{}", stderr(&out));
    // LOG_ARCHIVE_COUNT from .env is honoured.
    write(&r.join(".env"), "LOG_ARCHIVE_COUNT=5\n");
    assert_code(&run(r, &["--now", "2026-03-10T12:00:00Z", "logs", "archive"]), 0);
    assert_eq!(names(&r.join("logs/archive")).len(), 5);
}

#[test]
fn a_corrupt_gz_is_reported_left_in_place_and_the_rest_is_done() {
    let root = make_root();
    let r = root.path();
    let mut bad = gz(&b"some text that compresses\n".repeat(100));
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    write(&r.join("logs/archive/app.log.2026-03-02.gz"), &bad);
    write(&r.join("logs/archive/app.log.2026-03-03.gz"), b"not gzip at all");
    write(&r.join("logs/backups/app.log.2026-03-05"), "old\n");
    let out = run(r, &["--now", NOW, "logs", "archive"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("app.log.2026-03-02.gz") && err.contains("corrupt"), "{err}");
    assert!(err.contains("app.log.2026-03-03.gz"), "{err}");
    assert_eq!(fs::read(r.join("logs/archive/app.log.2026-03-02.gz")).unwrap(), bad);
    assert_eq!(gunzip(&r.join("logs/archive/app.log.2026-03-05.gz")), b"old\n");
    assert!(!r.join("logs/backups/app.log.2026-03-05").exists());
}

#[test]
fn list_shows_counts_and_dates() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/backups/app.log.2026-03-14"), "x\n");
    write(&r.join("logs/backups/app.log.2026-03-15"), "x\n");
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), gz(b"x\n"));
    write(&r.join("logs/archive/gone.log.2026-03-01.gz"), gz(b"x\n"));
    let out = run(r, &["--json", "logs", "list"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = listed(&v).iter().find(|l| l["name"] == "app.log").unwrap();
    assert_eq!(app["active_bytes"], 12);
    assert_eq!(app["backups"], 2);
    assert_eq!(app["archives"], 1);
    assert_eq!(app["oldest"], "2026-03-01");
    assert_eq!(app["newest"], "2026-03-15");
    let gone = listed(&v).iter().find(|l| l["name"] == "gone.log").unwrap();
    assert!(gone["active_bytes"].is_null());
    let table = stdout(&run(r, &["logs", "list"]));
    assert!(table.contains("app.log") && table.contains("2026-03-15"), "{table}");
}

#[test]
fn cat_prints_the_history_in_order_with_multi_member_gzip() {
    let root = make_root();
    let r = root.path();
    let mut two_members = gz(b"archived 1a\n");
    two_members.extend(gz(b"archived 1b\n"));
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), two_members);
    write(&r.join("logs/archive/app.log.2026-03-02"), "archived 2\n");
    write(&r.join("logs/backups/app.log.2026-03-10.1"), "backup 10.1\n");
    write(&r.join("logs/backups/app.log.2026-03-10"), "backup 10\n");
    write(&r.join("logs/backups/app.log.2026-03-09"), "backup 9\n");
    write(&r.join("logs/backups/errors.log.2026-03-09"), "other log\n");
    let out = run(r, &["--now", NOW, "logs", "cat", "app"]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out),
        "archived 1a\narchived 1b\narchived 2\nbackup 9\nbackup 10\nbackup 10.1\nactive line\n"
    );
    let out = run(
        r,
        &["--now", NOW, "logs", "cat", "app.log", "--since", "2026-03-02", "--until", "2026-03-10"],
    );
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "archived 2\nbackup 9\nbackup 10\nbackup 10.1\n");
    assert_code(&run(r, &["logs", "cat", "app", "--since", "March"]), 2);
    assert_code(&run(r, &["logs", "cat", "nosuchlog"]), 2);
    assert_code(&run(r, &["logs", "cat", "../etc/passwd"]), 2);
}

#[test]
fn cat_prints_what_it_can_of_a_corrupt_copy_and_exits_1() {
    let root = make_root();
    let r = root.path();
    let mut truncated = gz(&b"0123456789\n".repeat(5000));
    truncated.truncate(truncated.len() - 20);
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), truncated);
    write(&r.join("logs/backups/app.log.2026-03-10"), "backup 10\n");
    let out = run(r, &["--now", NOW, "logs", "cat", "app"]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(text.starts_with("0123456789\n"), "{}", &text[..50.min(text.len())]);
    assert!(text.ends_with("backup 10\nactive line\n"));
    assert!(stderr(&out).contains("app.log.2026-03-01.gz"), "{}", stderr(&out));
}

#[test]
fn restore_writes_restored_files_and_never_overwrites() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), gz(b"from archive\n"));
    write(&r.join("logs/backups/app.log.2026-03-10"), "from backups\n");
    let out = run(r, &["logs", "restore", "app.log.2026-03-01.gz"]);
    assert_code(&out, 0);
    assert_eq!(fs::read(r.join("logs/app.log.restored")).unwrap(), b"from archive\n");
    let path = r.join("logs/backups/app.log.2026-03-10");
    let out = run(r, &["logs", "restore", path.to_str().unwrap()]);
    assert_code(&out, 0);
    assert_eq!(fs::read(r.join("logs/app.log.restored")).unwrap(), b"from archive\n");
    assert_eq!(fs::read(r.join("logs/app.log.restored.1")).unwrap(), b"from backups\n");
    // The copies themselves are untouched.
    assert_eq!(fs::read(&path).unwrap(), b"from backups\n");
    // A corrupt copy: exit 1, nothing written.
    write(&r.join("logs/archive/app.log.2026-03-02.gz"), b"junk");
    let before = snapshot(r);
    let out = run(r, &["logs", "restore", "app.log.2026-03-02.gz"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("app.log.2026-03-02.gz"), "{}", stderr(&out));
    assert_same(&before, &snapshot(r));
    // A name not found names the next step: the newest copies there are, and `logs list`.
    let out = run(r, &["logs", "restore", "no.log.2026-01-01"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("app.log.2026-03-10") && err.contains("logs list"), "{err}");
    let out = run(r, &["logs", "restore", "app.log.2026-02-01"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    let newest = err.find("app.log.2026-03-10").unwrap_or(usize::MAX);
    assert!(newest < err.find("app.log.2026-03-01.gz").unwrap_or(0), "newest first: {err}");
}

#[test]
fn copy_folders_from_dotenv_resolve_against_the_root() {
    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "LOG_BACKUP_DIR=logs/rotated\nLOG_ARCHIVE_DIR=\"old/archive\"\n");
    write(&r.join("logs/rotated/app.log.2026-03-01"), "old\n");
    // Run from another folder: relative settings are about the root, not the cwd.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(elsewhere.path())
        .arg("--root")
        .arg(r)
        .args(["--now", NOW, "logs", "archive"])
        .launch_output()
        .unwrap();
    assert_code(&out, 0);
    assert_eq!(gunzip(&r.join("old/archive/app.log.2026-03-01.gz")), b"old\n");
    assert!(!r.join("logs/rotated/app.log.2026-03-01").exists());
    assert!(names(elsewhere.path()).is_empty());
}

// regression: copies older versions left directly in logs/ were ignored by every command
#[test]
fn copies_left_beside_the_active_logs_count_as_backups() {
    let root = make_root();
    let r = root.path();
    let logs = r.join("logs");
    write(&logs.join("old.log.2026-03-01"), "old one\n");
    write(&logs.join("old.log.2026-03-02"), "old two\n");
    write(&logs.join("app.log.restored"), "not a copy\n");
    let out = run(r, &["--now", NOW, "--json", "logs", "list"]);
    assert_code(&out, 0);
    let list: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let old = listed(&list).iter().find(|l| l["name"] == "old.log").unwrap();
    assert_eq!(old["backups"], 2);
    assert_eq!(old["active_bytes"], serde_json::Value::Null);
    assert!(listed(&list).iter().all(|l| l["name"] != "app.log.restored"));
    let out = run(r, &["--now", NOW, "logs", "cat", "old"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), "old one\nold two\n");
    // The daily archival treats them as backups: 7 days old, so gzipped into archive/.
    let out = run(r, &["--now", NOW, "logs", "archive"]);
    assert_code(&out, 0);
    assert_eq!(gunzip(&logs.join("archive/old.log.2026-03-01.gz")), b"old one\n");
    assert!(!logs.join("old.log.2026-03-01").exists());
}

// regression: `logs restore app.log.2026-03-01` was refused while only the .gz existed
#[test]
fn restore_finds_a_copy_by_name_whether_or_not_it_is_compressed() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/archive/app.log.2026-03-01.gz"), gz(b"from the archive\n"));
    let out = run(r, &["logs", "restore", "app.log.2026-03-01"]);
    assert_code(&out, 0);
    assert_eq!(fs::read(r.join("logs/app.log.restored")).unwrap(), b"from the archive\n");
}
