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
    let list = listed(&list);
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
    // Said once, in the result (issue 22: it was printed twice).
    assert_eq!(stdout(&out).matches("safety backup: ").count(), 1, "{}", stdout(&out));
    assert!(!stderr(&out).contains("safety backup: "), "{}", stderr(&out));
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

/// A per-user backup as the service's `storage/user_data_backup.py` writes it before a
/// multi-part save: the user's files under `users/<id>/` and `backup_metadata.json`, no
/// manifest.
fn user_backup(root: &Path, user: &str, stamp: &str) -> std::path::PathBuf {
    let path = root.join("data/backups").join(format!("user_backup_{user}_{stamp}.zip"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    let files =
        [format!("users/{user}/account.json"), format!("users/{user}/messages/sent_messages.json")];
    for f in &files {
        z.start_file(f.as_str(), opts).unwrap();
        z.write_all(br#"{"schema_version": 2, "deliveries": []}"#).unwrap();
    }
    let date = stamp.replacen('_', " ", 1);
    let (day, time) = date.split_once(' ').unwrap();
    let meta = serde_json::json!({
        "user_id": user, "backup_date": format!("{day} {}", time.replace('-', ":")),
        "backup_type": "complete", "includes_messages": true, "files_backed_up": files,
    });
    z.start_file("backup_metadata.json", opts).unwrap();
    z.write_all(serde_json::to_string_pretty(&meta).unwrap().as_bytes()).unwrap();
    z.finish().unwrap();
    path
}

#[test]
fn the_services_per_user_backups_are_a_kind_of_their_own() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["--now", "2026-11-20T10:00:00Z", "backup", "create"]), 0);
    let alice = "3f2b1c9e-0000-4000-8000-1234567890ab";
    for day in 1..=14 {
        user_backup(r, alice, &format!("2026-11-{:02}_09-00-00", day + 15));
    }
    user_backup(r, "u2", "2026-11-29_08-00-00");
    let before = snapshot(r);
    // Listed as `user`, made by the service, valid; verified for what they carry.
    let out = run(r, &["--now", NOW, "--json", "backup", "list"]);
    assert_code(&out, 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows: Vec<&Value> = list["backups"]
        .as_array()
        .unwrap_or_else(|| listed(&list))
        .iter()
        .filter(|b| b["name"].as_str().unwrap().starts_with("user_backup_"))
        .collect();
    assert_eq!(rows.len(), 15, "{list}");
    for b in &rows {
        assert_eq!(
            (b["kind"].as_str(), b["made_by"].as_str(), b["valid"].as_bool()),
            (Some("user"), Some("mhm"), Some(true)),
            "{b}"
        );
    }
    let newest_user = format!("user_backup_{alice}_2026-11-29_09-00-00");
    let out = run(r, &["--json", "backup", "verify", &newest_user]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["valid"].as_bool(), v["entries"].as_u64()), (Some(true), Some(3)), "{v}");
    // Not the newest backup; no warning about them; and these read-only commands changed
    // nothing (no logs/sidecar.log either).
    let out = run(r, &["--now", NOW, "--json", "status"]);
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(st["backups"]["newest"]["name"].as_str().unwrap().starts_with("mhm_backup_"), "{st}");
    let warnings = st["warnings"].to_string();
    assert!(!warnings.contains("user_backup"), "{warnings}");
    for args in [&["system", "validate"][..], &["logs", "list"], &["backup", "list"]] {
        run(r, args);
    }
    assert_same(&before, &snapshot(r));
    // A damaged one is invalid, and named.
    let bad = user_backup(r, "u3", "2026-11-29_07-00-00");
    let bytes = fs::read(&bad).unwrap();
    fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap(); // cut short, as a full disk does
    let out = run(r, &["backup", "verify", "user_backup_u3_2026-11-29_07-00-00"]);
    assert_code(&out, 1);
    fs::remove_file(&bad).unwrap();
    // Pruned by their own rule: the newest 10 of each user, none past the retention.
    let out = run(r, &["--now", NOW, "--json", "backup", "prune", "--retention-days", "12"]);
    assert_code(&out, 0);
    let left: Vec<String> = names(&r.join("data/backups"))
        .into_iter()
        .filter(|n| n.starts_with(&format!("user_backup_{alice}")))
        .collect();
    // 2026-11-16..29: the newest 10 are 11-20..29; 12 days before 11-30 10:00 is 11-18 10:00.
    let want: Vec<String> =
        (20..=29).map(|d| format!("user_backup_{alice}_2026-11-{d:02}_09-00-00.zip")).collect();
    assert_eq!(left, want);
    assert!(r.join("data/backups/user_backup_u2_2026-11-29_08-00-00.zip").is_file());
}

#[test]
fn a_directory_backup_has_the_services_shape_with_digests() {
    let root = make_root();
    let r = root.path();
    let out = run(r, &["--now", NOW, "backup", "create", "--format", "directory", "--name", "d1"]);
    assert_code(&out, 0);
    let dir = r.join("data/backups/d1");
    // What the service's BackupManager reads (list_backups, validate_backup, restore).
    let m: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(m["format"], "directory");
    assert_eq!(m["backup_name"], "d1");
    let created = m["created_at"].as_str().unwrap();
    assert!(chrono::NaiveDateTime::parse_from_str(created, "%Y-%m-%d %H:%M:%S").is_ok(), "{m}");
    assert_eq!(
        (m["includes"]["users"].as_bool(), m["includes"]["config"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(dir.join("users/u1/account.json").is_file() && dir.join("config/.env").is_file());
    // With our digests beside it: listed as ours and verified in full.
    assert!(m["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["sha256"].as_str().unwrap().len() == 64));
    let list: Value =
        serde_json::from_slice(&run(r, &["--json", "backup", "list"]).stdout).unwrap();
    let row = listed(&list).iter().find(|b| b["name"] == "d1").unwrap().clone();
    assert!(row.get("made_by").is_none() && row["valid"] == true, "{row}");
    assert_code(&run(r, &["backup", "verify", "d1"]), 0);
    let account = dir.join("users/u1/account.json");
    let good = fs::read(&account).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 1;
    fs::write(&account, &bad).unwrap();
    let out = run(r, &["backup", "verify", "d1"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("users/u1/account.json"), "{}", stdout(&out));
    fs::write(&account, &good).unwrap();
    // Restorable as any backup; BACKUP_FORMAT picks the form, and a bad value is named.
    write(&r.join("data/users/u1/account.json"), "{\"changed\": true}");
    assert_code(&run(r, &["--now", NOW, "backup", "restore", "d1", "--users"]), 0);
    assert_eq!(fs::read(r.join("data/users/u1/account.json")).unwrap(), good);
    let out = bin()
        .arg("--root")
        .arg(r)
        .args(["backup", "create", "--name", "d2"])
        .env("BACKUP_FORMAT", "directory")
        .launch_output()
        .unwrap();
    assert_code(&out, 0);
    assert!(r.join("data/backups/d2/manifest.json").is_file());
    let out = bin()
        .arg("--root")
        .arg(r)
        .args(["backup", "create"])
        .env("BACKUP_FORMAT", "tar")
        .launch_output()
        .unwrap();
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("BACKUP_FORMAT") && stderr(&out).contains("tar"),
        "{}",
        stderr(&out)
    );
}

/// Linux only: elsewhere no process can be told dead (`process_alive`), and only the
/// hour's rule removes a leftover.
#[cfg(target_os = "linux")]
#[test]
fn a_folder_left_by_a_prune_cut_short_is_cleaned_like_a_file() {
    // `remove_backup` renames a service folder backup to `.tmp-<pid>-<name>/` before
    // deleting it: a run killed there leaves the folder, which the next run removes
    // (never following a link inside), while a live writer's young one stays.
    let root = make_root();
    let r = root.path();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("keep.txt"), "not ours").unwrap();
    // Above Linux's largest pid (2^22): never a live process.
    let dead = r.join("data/backups/.tmp-4194305-weekly_backup_2026-09-01_01-00-00");
    fs::create_dir_all(dead.join("users/u1")).unwrap();
    fs::write(dead.join("users/u1/account.json"), "{}").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path(), dead.join("users/link")).unwrap();
    let live = r.join(format!("data/backups/.tmp-{}-push-x", std::process::id()));
    fs::create_dir_all(&live).unwrap();
    let out = run(r, &["--now", NOW, "backup", "prune"]);
    assert_code(&out, 0);
    assert!(!dead.exists(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("removed data/backups/.tmp-4194305-weekly_backup_2026-09-01_01-00-00"),
        "{}",
        stderr(&out)
    );
    assert!(live.is_dir(), "a live writer's folder stays");
    assert_eq!(fs::read_to_string(outside.path().join("keep.txt")).unwrap(), "not ours");
}
