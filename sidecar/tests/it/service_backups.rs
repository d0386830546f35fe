//! Backups the service made itself (its `core/backup_manager.py`): folders with a
//! `manifest.json` (`"format": "directory"`), and older zips whose manifest lists no files.
//! Listed, counted for the weekly check and `status`, verified for what they carry,
//! restored with the same safety backup, pruned by the same rules.

use crate::common;

use std::{fs, io::Write, path::Path};

use common::*;
use serde_json::Value;

const NOW: &str = "2026-11-30T10:00:00Z";

/// A folder backup as the service writes it today.
fn service_folder(root: &Path, name: &str, created_at: &str, account: &str) {
    let dir = root.join("data/backups").join(name);
    write(
        &dir.join("manifest.json"),
        format!(
            r#"{{"backup_name": "{name}", "format": "directory", "created_at": "{created_at}",
                "includes": {{"users": true, "config": true, "logs": false}},
                "system_info": {{"total_users": 1}}}}"#
        ),
    );
    write(&dir.join("users/u1/account.json"), account);
    write(&dir.join("users/u1/messages/sent_messages.json"), "{}");
    write(&dir.join("config/.env"), "APP_MODE=from_folder\n");
    write(&dir.join("config/user_index.json"), r#"{"last_updated": "x", "alice": "u1"}"#);
}

/// An older zip of the service's: a manifest without `files`, Python's isoformat time.
fn service_zip(root: &Path, name: &str, created_at: &str, account: &str) {
    let path = root.join("data/backups").join(format!("{name}.zip"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("users/u1/account.json", opts).unwrap();
    z.write_all(account.as_bytes()).unwrap();
    z.start_file("config/user_index.json", opts).unwrap();
    z.write_all(br#"{"u1": {}}"#).unwrap();
    z.start_file("manifest.json", opts).unwrap();
    write!(
        z,
        r#"{{"backup_name": "{name}", "created_at": "{created_at}",
            "includes": {{"users": true, "config": true, "logs": false}},
            "system_info": {{"total_users": 1, "backup_size": "unknown"}}}}"#
    )
    .unwrap();
    z.finish().unwrap();
}

// regression: the service's folder backups were not seen (status said "none found" five
// days after one; backup weekly made another) and its zips were "INVALID ... missing field"
#[test]
fn the_services_backups_are_listed_counted_verified_and_restored() {
    let root = make_root();
    let r = root.path();
    service_folder(
        r,
        "weekly_backup_2026-11-25_01-00-00",
        "2026-11-25 01:00:00",
        r#"{"v": "folder"}"#,
    );
    service_zip(r, "mhm_backup_20261120_120000", "2026-11-20T12:00:00.123456", r#"{"v": "zip"}"#);

    let out = run(r, &["--now", NOW, "--json", "backup", "list"]);
    assert_code(&out, 0);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    for b in list {
        assert_eq!(b["made_by"], "mhm");
        assert_eq!(b["valid"], true);
    }
    assert_eq!(list[1]["name"], "weekly_backup_2026-11-25_01-00-00");
    assert_eq!(list[1]["kind"], "weekly");
    assert_eq!(list[0]["kind"], "manual");

    // The weekly one counts: no new weekly backup, no warning in status.
    let out = run(r, &["--now", NOW, "backup", "weekly"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    let out = run(r, &["--now", NOW, "--json", "status"]);
    let status: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(status["backups"]["newest_weekly"]["name"], "weekly_backup_2026-11-25_01-00-00");
    assert!(!status["warnings"].to_string().contains("no weekly backup"), "{status}");

    // Verified for what they carry, saying they hold no digests.
    for name in ["weekly_backup_2026-11-25_01-00-00", "mhm_backup_20261120_120000"] {
        let out = run(r, &["--now", NOW, "backup", "verify", name]);
        assert_code(&out, 0);
        assert!(stdout(&out).contains("no digests"), "{}", stdout(&out));
    }
    // A JSON file that does not parse makes it invalid.
    let bad = r.join("data/backups/weekly_backup_2026-11-25_01-00-00/users/u1/account.json");
    let good = fs::read(&bad).unwrap();
    fs::write(&bad, "{broken").unwrap();
    let out = run(r, &["--now", NOW, "backup", "verify", "weekly_backup_2026-11-25_01-00-00"]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("users/u1/account.json") && stdout(&out).contains("not valid JSON")
    );
    fs::write(&bad, good).unwrap();

    // Restored with a safety backup, from the folder and from the zip.
    let out = run(
        r,
        &[
            "--now",
            NOW,
            "backup",
            "restore",
            "weekly_backup_2026-11-25_01-00-00",
            "--users",
            "--config",
        ],
    );
    assert_code(&out, 0);
    assert_eq!(
        fs::read_to_string(r.join("data/users/u1/account.json")).unwrap(),
        r#"{"v": "folder"}"#
    );
    assert!(!r.join("data/users/u2").exists(), "the users folder is the backup's");
    assert_eq!(fs::read_to_string(r.join(".env")).unwrap(), "APP_MODE=from_folder\n");
    assert!(stderr(&out).contains("safety backup: "), "{}", stderr(&out));
    let out =
        run(r, &["--now", NOW, "backup", "restore", "mhm_backup_20261120_120000", "--user", "u1"]);
    assert_code(&out, 0);
    assert_eq!(
        fs::read_to_string(r.join("data/users/u1/account.json")).unwrap(),
        r#"{"v": "zip"}"#
    );
}

#[test]
fn the_services_backups_are_pruned_by_the_same_rules_never_the_newest_valid() {
    let root = make_root();
    let r = root.path();
    service_folder(r, "weekly_backup_2026-09-01_01-00-00", "2026-09-01 01:00:00", "{}");
    service_folder(r, "weekly_backup_2026-11-25_01-00-00", "2026-11-25 01:00:00", "{}");
    let out = run(r, &["--now", NOW, "backup", "prune"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("deleted weekly_backup_2026-09-01_01-00-00"), "{}", stdout(&out));
    assert!(!r.join("data/backups/weekly_backup_2026-09-01_01-00-00").exists());
    assert!(r.join("data/backups/weekly_backup_2026-11-25_01-00-00/manifest.json").exists());
    // Far in the future everything is too old, but the newest valid one stays.
    let out = run(r, &["--now", "2027-06-01T00:00:00Z", "backup", "prune"]);
    assert_code(&out, 0);
    assert!(r.join("data/backups/weekly_backup_2026-11-25_01-00-00/manifest.json").exists());
}
