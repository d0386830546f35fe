//! `backup create | weekly | list | verify | prune | restore` on the real binary.

use crate::common;

use std::{fs, io::Read, path::Path};

use common::*;

const NOW: &str = "2026-03-20T10:30:00Z";

fn zip_names(path: &Path) -> Vec<String> {
    let z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut v: Vec<String> = z.file_names().map(str::to_owned).collect();
    v.sort();
    v
}

fn zip_manifest(path: &Path) -> serde_json::Value {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    z.by_name("manifest.json").unwrap().read_to_string(&mut s).unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn create_writes_a_verified_owner_only_zip_with_the_manifest() {
    let root = make_root();
    let r = root.path();
    let out = run(r, &["--now", NOW, "backup", "create"]);
    assert_code(&out, 0);
    // Piped: no progress bar, no noise on stderr.
    assert_eq!(stderr(&out), "");
    let zip = r.join("data/backups/mhm_backup_20260320_103000.zip");
    assert!(zip.is_file(), "{}", stdout(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&zip).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let names = zip_names(&zip);
    for want in [
        "config/.env",
        "config/requirements.txt",
        "config/user_index.json",
        "manifest.json",
        "users/u1/account.json",
        "users/u3/messages/sent_messages.json",
        "users/u2/blob.bin",
    ] {
        assert!(names.contains(&want.to_string()), "{want} missing from {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("logs/") || n.starts_with("code/")));
    let m = zip_manifest(&zip);
    assert_eq!(m["backup_name"], "mhm_backup_20260320_103000");
    assert_eq!(m["created_at"], "2026-03-20T10:30:00+00:00");
    assert_eq!(
        m["includes"],
        serde_json::json!({"users": true, "config": true, "logs": false, "code": false})
    );
    assert_eq!(m["system_info"]["total_users"], 3);
    let files = m["files"].as_array().unwrap();
    assert_eq!(m["system_info"]["file_count"], files.len());
    assert_eq!(files.len(), names.len() - 1);
    let mut total = 0;
    for f in files {
        let rel = f["path"].as_str().unwrap();
        let disk = match rel.strip_prefix("config/") {
            Some("user_index.json") => r.join("data/user_index.json"),
            Some(other) => r.join(other),
            None => r.join("data").join(rel),
        };
        let bytes = fs::read(&disk).unwrap();
        assert_eq!(f["size"], bytes.len(), "{rel}");
        assert_eq!(f["sha256"], sha256_hex(&bytes), "{rel}");
        total += bytes.len();
    }
    assert_eq!(m["system_info"]["total_bytes"], total);
    assert_eq!(common::names(&r.join("data/backups")), ["mhm_backup_20260320_103000.zip"]);
    assert_code(&run(r, &["backup", "verify", "mhm_backup_20260320_103000"]), 0);
    // Same second again: a new name, never an overwrite.
    assert_code(&run(r, &["--now", NOW, "backup", "create"]), 0);
    assert!(r.join("data/backups/mhm_backup_20260320_103000_1.zip").is_file());
    // An explicit name that exists is refused.
    let out = run(r, &["--now", NOW, "backup", "create", "--name", "mhm_backup_20260320_103000"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("exists already"), "{}", stderr(&out));
    assert_code(&run(r, &["backup", "create", "--name", "../escape"]), 2);
}

#[test]
fn include_logs_and_code_follow_gitignore_without_git() {
    let root = make_root();
    let r = root.path();
    write(&r.join(".gitignore"), "secret.txt\n*.tmp\n");
    write(&r.join("src/main.py"), "print('hi')\n");
    write(&r.join("README.md"), "# mhm\n");
    write(&r.join("secret.txt"), "no");
    write(&r.join("src/scratch.tmp"), "no");
    write(&r.join("src/__pycache__/main.pyc"), "no");
    write(&r.join(".git/config"), "no");
    // regression: .git/info/exclude was not honoured as git honours it
    write(&r.join(".git/info/exclude"), "private_notes.md\n");
    write(&r.join("private_notes.md"), "no");
    write(&r.join("venv/lib/x.py"), "no");
    write(&r.join("target/debug/x"), "no");
    write(&r.join("logs/errors.log"), "e\n");
    write(&r.join("logs/backups/app.log.2026-01-01"), "old\n");
    let out = run(
        r,
        &["--now", NOW, "backup", "create", "--name", "full", "--include-logs", "--include-code"],
    );
    assert_code(&out, 0);
    let names = zip_names(&r.join("data/backups/full.zip"));
    for want in
        ["code/src/main.py", "code/README.md", "code/.gitignore", "logs/app.log", "logs/errors.log"]
    {
        assert!(names.contains(&want.to_string()), "{want} missing from {names:?}");
    }
    for bad in [
        "secret",
        "private_notes",
        ".tmp",
        "__pycache__",
        ".git/",
        "venv",
        "target",
        "code/data",
        "code/logs",
        "app.log.2026",
    ] {
        assert!(!names.iter().any(|n| n.contains(bad)), "{bad} stored: {names:?}");
    }
    let m = zip_manifest(&r.join("data/backups/full.zip"));
    assert_eq!(
        m["includes"],
        serde_json::json!({"users": true, "config": true, "logs": true, "code": true})
    );
    // --no-users --no-config.
    assert_code(
        &run(
            r,
            &[
                "backup",
                "create",
                "--name",
                "logs_only",
                "--no-users",
                "--no-config",
                "--include-logs",
            ],
        ),
        0,
    );
    let mut names = zip_names(&r.join("data/backups/logs_only.zip"));
    names.retain(|n| n != "logs/sidecar.log"); // the sidecar's own log is a log too
    assert_eq!(names, ["logs/app.log", "logs/errors.log", "manifest.json"]);
    assert_code(&run(r, &["backup", "verify", "logs_only.zip"]), 0);
}

#[cfg(unix)]
#[test]
fn links_inside_users_are_stored_outside_ones_skipped() {
    let root = make_root();
    let r = root.path();
    let u1 = r.join("data/users/u1");
    std::os::unix::fs::symlink("account.json", u1.join("inside.json")).unwrap();
    std::os::unix::fs::symlink("../u2/account.json", u1.join("other_user.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", u1.join("abs")).unwrap();
    std::os::unix::fs::symlink("../../../.env", u1.join("up")).unwrap();
    // Over 4 MiB: the parallel path must carry links too.
    write(&u1.join("big.bin"), vec![7u8; 5_000_000]);
    let out = run(r, &["backup", "create", "--name", "links"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains("u1/abs") && err.contains("u1/up"), "{err}");
    let names = zip_names(&r.join("data/backups/links.zip"));
    assert!(names.contains(&"users/u1/inside.json".to_string()));
    assert!(names.contains(&"users/u1/other_user.json".to_string()));
    assert!(!names.iter().any(|n| n.ends_with("/abs") || n.ends_with("/up")));
    // A restore would replace the links the safety backup cannot hold: refused, no change.
    fs::remove_file(u1.join("inside.json")).unwrap();
    let before = snapshot(r);
    let out = run(r, &["backup", "restore", "links"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("safety backup would leave out"), "{}", stderr(&out));
    assert_same(&before, &snapshot(r));
    // Without them: restored as links.
    fs::remove_file(u1.join("abs")).unwrap();
    fs::remove_file(u1.join("up")).unwrap();
    assert_code(&run(r, &["backup", "restore", "links"]), 0);
    assert_eq!(fs::read_link(u1.join("inside.json")).unwrap(), Path::new("account.json"));
}

#[test]
fn dry_run_create_changes_nothing() {
    let root = make_root();
    let r = root.path();
    let before = snapshot(r);
    let out = run(r, &["--dry-run", "backup", "create"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("would create"), "{}", stdout(&out));
    assert_same(&before, &snapshot(r));
}

#[test]
fn list_shows_kind_validity_and_includes() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["--now", "2026-03-01T01:00:00Z", "backup", "weekly"]), 0);
    assert_code(&run(r, &["--now", "2026-03-02T01:00:00Z", "backup", "create"]), 0);
    write(&r.join("data/backups/broken.zip"), "not a zip");
    let out = run(r, &["--json", "backup", "list"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let arr = listed(&v);
    assert_eq!(arr.len(), 3);
    let weekly = arr.iter().find(|b| b["kind"] == "weekly").unwrap();
    assert_eq!(weekly["name"], "weekly_backup_20260301_010000");
    assert_eq!(weekly["valid"], true);
    assert_eq!(weekly["includes"]["users"], true);
    assert!(weekly["size"].as_u64().unwrap() > 0);
    let broken = arr.iter().find(|b| b["name"] == "broken").unwrap();
    assert_eq!(broken["valid"], false);
    assert_eq!(broken["kind"], "manual");
    let table = stdout(&run(r, &["backup", "list"]));
    assert!(table.contains("weekly_backup_20260301_010000") && table.contains("NO"), "{table}");
}

#[test]
fn weekly_runs_only_when_the_newest_weekly_is_seven_days_old() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["--now", "2026-03-01T01:00:00Z", "backup", "weekly"]), 0);
    // A manual backup does not count as the weekly one.
    assert_code(&run(r, &["--now", "2026-03-07T01:00:00Z", "backup", "create"]), 0);
    let out = run(r, &["--now", "2026-03-08T00:59:59Z", "backup", "weekly"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    assert_code(&run(r, &["--now", "2026-03-08T01:00:00Z", "backup", "weekly"]), 0);
    let weekly: Vec<String> =
        names(&r.join("data/backups")).into_iter().filter(|n| n.starts_with("weekly_")).collect();
    assert_eq!(weekly, ["weekly_backup_20260301_010000.zip", "weekly_backup_20260308_010000.zip"]);
    let m = zip_manifest(&r.join("data/backups/weekly_backup_20260308_010000.zip"));
    assert_eq!(
        m["includes"],
        serde_json::json!({"users": true, "config": true, "logs": false, "code": false})
    );
}

#[test]
fn prune_applies_age_and_per_kind_count_and_keeps_the_newest_valid() {
    let root = make_root();
    let r = root.path();
    // Make small backups quickly: users only, the tiny config.
    fs::remove_dir_all(r.join("data/users/u2")).unwrap();
    fs::remove_dir_all(r.join("data/users/u3")).unwrap();
    for day in 1..=12 {
        let now = format!("2026-03-{day:02}T12:00:00Z");
        assert_code(
            &run(r, &["--now", &now, "backup", "create", "--name", &format!("m{day:02}")]),
            0,
        );
    }
    assert_code(&run(r, &["--now", "2026-03-01T12:00:00Z", "backup", "weekly"]), 0);
    // create prunes after itself: at most 10 manual backups.
    let manual: Vec<String> =
        names(&r.join("data/backups")).into_iter().filter(|n| n.starts_with('m')).collect();
    assert_eq!(manual.len(), 10, "{manual:?}");
    assert_eq!(manual[0], "m03.zip");

    // Dry run at a later date: lists, changes nothing.
    let before = snapshot(r);
    let out = run(r, &["--now", "2026-04-05T12:00:00Z", "--dry-run", "--json", "backup", "prune"]);
    assert_code(&out, 0);
    let steps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed(&steps).iter().all(|s| s["result"] == "would delete"));
    assert_same(&before, &snapshot(r));

    // 2026-04-05: everything up to 03-06 is 30+ days old; the weekly one too.
    let out = run(r, &["--now", "2026-04-05T12:00:00Z", "backup", "prune"]);
    assert_code(&out, 0);
    let left = names(&r.join("data/backups"));
    assert_eq!(left, ["m07.zip", "m08.zip", "m09.zip", "m10.zip", "m11.zip", "m12.zip"]);

    // Far in the future everything is too old, but the newest *valid* one stays: corrupt m12.
    write(&r.join("data/backups/m12.zip"), "garbage");
    let out = run(r, &["--now", "2027-01-01T00:00:00Z", "--max-count", "1", "backup", "prune"]);
    assert_code(&out, 2); // --max-count belongs to prune, after the subcommand
    let out = run(r, &["--now", "2027-01-01T00:00:00Z", "backup", "prune", "--max-count", "1"]);
    assert_code(&out, 0);
    // m12 has no manifest any more: not a backup of ours, so neither kept nor deleted.
    assert_eq!(names(&r.join("data/backups")), ["m11.zip", "m12.zip"]);
    // regression: a foreign zip in data/backups was pruned by its mtime like a backup.
    write(&r.join("data/backups/family_photos.zip"), "not a backup");
    let out = run(r, &["--now", "2028-01-01T00:00:00Z", "backup", "prune"]);
    assert_code(&out, 0);
    assert!(r.join("data/backups/family_photos.zip").is_file());
}

#[test]
fn prune_removes_leftover_temps() {
    let root = make_root();
    let r = root.path();
    // A temp whose writer (pid 999999999) is gone.
    write(&r.join("data/backups/.tmp-999999999-mhm_backup_x.zip"), "partial");
    let out = run(r, &["backup", "prune"]);
    assert_code(&out, 0);
    if cfg!(target_os = "linux") {
        assert!(!r.join("data/backups/.tmp-999999999-mhm_backup_x.zip").exists());
    }
}

/// Every kind of broken backup: verify says 1 naming the problem, restore refuses with 1,
/// nothing on disk changes.
#[test]
fn corrupt_and_hostile_backups_are_refused_and_nothing_changes() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["--now", NOW, "backup", "create", "--name", "good"]), 0);
    let good = fs::read(r.join("data/backups/good.zip")).unwrap();
    let dir = r.join("data/backups");

    // A flipped byte inside the compressed data of users/u1/blob.bin.
    let (start, len) = {
        let mut z = zip::ZipArchive::new(fs::File::open(dir.join("good.zip")).unwrap()).unwrap();
        let e = z.by_name("users/u1/blob.bin").unwrap();
        (e.data_start() as usize, e.compressed_size() as usize)
    };
    let mut flipped = good.clone();
    flipped[start + len / 2] ^= 0x55;
    fs::write(dir.join("flipped.zip"), flipped).unwrap();
    fs::write(dir.join("truncated.zip"), &good[..good.len() * 2 / 3]).unwrap();
    fs::write(dir.join("notzip.zip"), b"PK but not really a zip file").unwrap();
    let user_file: (&str, &[u8]) = ("users/u1/account.json", b"{}");
    raw_zip(&dir.join("nomanifest.zip"), &[user_file], &[]);
    raw_zip(&dir.join("badmanifest.zip"), &[user_file, ("manifest.json", b"{not json")], &[]);
    let no_created = {
        let mut m: serde_json::Value =
            serde_json::from_slice(&manifest_for(&[user_file], 1)).unwrap();
        m.as_object_mut().unwrap().remove("created_at");
        serde_json::to_vec(&m).unwrap()
    };
    raw_zip(&dir.join("nocreated.zip"), &[user_file, ("manifest.json", &no_created)], &[]);
    let slip: (&str, &[u8]) = ("users/../../evil.txt", b"evil");
    raw_zip(
        &dir.join("slip.zip"),
        &[user_file, slip, ("manifest.json", &manifest_for(&[user_file, slip], 1))],
        &[],
    );
    let abs: (&str, &[u8]) = ("/tmp/evil.txt", b"evil");
    raw_zip(
        &dir.join("absolute.zip"),
        &[user_file, abs, ("manifest.json", &manifest_for(&[user_file, abs], 1))],
        &[],
    );
    let link_target = "../../../../etc/passwd";
    let link_entry = serde_json::json!({"path": "users/u1/link", "size": link_target.len(),
        "sha256": sha256_hex(link_target.as_bytes()), "link": link_target});
    let mut m: serde_json::Value = serde_json::from_slice(&manifest_for(&[user_file], 1)).unwrap();
    m["files"].as_array_mut().unwrap().push(link_entry);
    m["system_info"]["file_count"] = 2.into();
    m["system_info"]["total_bytes"] = (2 + link_target.len()).into();
    raw_zip(
        &dir.join("link.zip"),
        &[user_file, ("manifest.json", &serde_json::to_vec(&m).unwrap())],
        &[("users/u1/link", link_target)],
    );
    let digest_lie = {
        let mut m: serde_json::Value =
            serde_json::from_slice(&manifest_for(&[user_file], 1)).unwrap();
        m["files"][0]["sha256"] = sha256_hex(b"other").into();
        serde_json::to_vec(&m).unwrap()
    };
    raw_zip(&dir.join("digest.zip"), &[user_file, ("manifest.json", &digest_lie)], &[]);
    // The hand-built good one passes, so the failures below are about what was broken.
    raw_zip(
        &dir.join("handgood.zip"),
        &[user_file, ("manifest.json", &manifest_for(&[user_file], 1))],
        &[],
    );
    assert_code(&run(r, &["backup", "verify", "handgood"]), 0);

    let cases = [
        ("flipped", "users/u1/blob.bin"),
        ("truncated", "zip"),
        ("notzip", "zip"),
        ("nomanifest", "manifest.json: missing"),
        ("badmanifest", "manifest.json: malformed"),
        ("nocreated", "created_at"),
        ("slip", ".."),
        ("absolute", "absolute path"),
        ("link", "link pointing outside"),
        ("digest", "SHA-256"),
        ("missing_file", "no backup"),
    ];
    for (name, says) in cases {
        let before = snapshot(r);
        let out = run(r, &["backup", "verify", name]);
        assert_code(&out, 1);
        assert!(stdout(&out).contains(says), "{name}: {}", stdout(&out));
        let out = run(r, &["backup", "restore", name]);
        assert_code(&out, 1);
        assert!(!fs::read_dir(&dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("pre_restore")));
        assert_same(&before, &snapshot(r));
    }
    assert!(!r.join("evil.txt").exists() && !Path::new("/tmp/evil.txt").exists());
}

#[test]
fn restore_round_trip_brings_back_every_byte() {
    let root = make_root();
    let r = root.path();
    // Over 4 MiB, so the entries are compressed on several threads and merged.
    let big: Vec<u8> = (0..5_000_000u32).map(|n| (n ^ (n >> 5)).wrapping_mul(31) as u8).collect();
    write(&r.join("data/users/u3/big.bin"), big);
    // And enough files for several chunks of 512.
    for i in 0..1100 {
        write(&r.join(format!("data/users/u2/notes/n{i:04}.json")), format!("{{\"n\": {i}}}"));
    }
    let original = snapshot(&r.join("data/users"));
    let env_before = fs::read(r.join(".env")).unwrap();
    assert_code(&run(r, &["--now", NOW, "backup", "create", "--name", "base"]), 0);
    // Damage: change, delete, add.
    write(&r.join("data/users/u1/account.json"), r#"{"changed": true}"#);
    fs::remove_dir_all(r.join("data/users/u2")).unwrap();
    write(&r.join("data/users/u4/account.json"), "{}");
    write(&r.join(".env"), "APP_MODE=broken\n");
    let damaged = snapshot(&r.join("data/users"));

    // Dry run first: nothing changes.
    let before = snapshot(r);
    let out = run(r, &["--dry-run", "backup", "restore", "base"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("would restore"), "{text}");
    assert!(text.contains("changed users/u1/account.json"), "{text}");
    assert!(text.contains("added users/u2/account.json"), "{text}");
    assert!(text.contains("removed users/u4/account.json"), "{text}");
    assert!(!text.contains("users/u3/"), "{text}");
    assert_same(&before, &snapshot(r));

    let out = run(r, &["--now", "2026-03-21T08:00:00Z", "backup", "restore", "base"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("system ok"), "{}", stdout(&out));
    assert_same(&original, &snapshot(&r.join("data/users")));
    // Users only by default: .env stays as it is.
    assert_eq!(fs::read(r.join(".env")).unwrap(), b"APP_MODE=broken\n");
    // The safety backup holds the damaged state.
    let safety = backup_named(r, "pre_restore_safety_20260321_080000");
    let names = zip_names(&safety);
    assert!(names.contains(&"users/u4/account.json".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("users/u2/")));
    assert!(damaged.keys().any(|k| k.starts_with("u4")));
    // --config puts the config files back where they came from.
    assert_code(
        &run(r, &["--now", "2026-03-21T08:00:00Z", "backup", "restore", "base", "--config"]),
        0,
    );
    assert_eq!(fs::read(r.join(".env")).unwrap(), env_before);
    // A second safety backup in the same second gets its own name.
    assert!(r.join("data/backups/pre_restore_safety_20260321_080000_1.zip").is_file());
    // No staging or old folders are left.
    assert!(names_in_data(r).iter().all(|n| !n.starts_with(".restore")));
}

fn names_in_data(r: &Path) -> Vec<String> {
    names(&r.join("data"))
}

#[test]
fn restore_one_user_touches_no_other() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/users/u1/account.json"), "{\"u1\": 2}");
    write(&r.join("data/users/u2/account.json"), "{\"u2\": 2}");
    assert_code(&run(r, &["backup", "restore", "base", "--user", "u1"]), 0);
    assert_eq!(
        fs::read_to_string(r.join("data/users/u1/account.json")).unwrap(),
        r#"{"id": "u1", "n": 0}"#
    );
    assert_eq!(fs::read_to_string(r.join("data/users/u2/account.json")).unwrap(), "{\"u2\": 2}");
    // A user the backup lacks is a usage mistake (exit 2), and the users it holds are named.
    let out = run(r, &["backup", "restore", "base", "--user", "nobody"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("nobody") && err.contains("the users it holds: u1"), "{err}");
    assert_eq!(err.matches("data/backups/base.zip").count(), 1, "the path once: {err}");
}

#[test]
fn a_restore_failing_half_way_leaves_the_data_as_it_was() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/users/u1/account.json"), r#"{"newer": true}"#);
    fs::remove_dir_all(r.join("data/users/u3")).unwrap();
    write(&r.join(".env"), "APP_MODE=newer\n");
    fs::remove_file(r.join("requirements.txt")).unwrap();
    use mhm_sidecar::{restore, Ctx, FailPoint, Faults};
    for point in [FailPoint::Extract, FailPoint::Swap, FailPoint::Commit, FailPoint::Safety] {
        let mut before = snapshot(r);
        before.retain(|p, _| !p.to_string_lossy().contains("pre_restore_safety"));
        // The fault is a parameter of the library: the binary has no way to ask for one.
        let ctx = Ctx::new(r, chrono::Utc::now()).unwrap().with_faults(Faults(vec![point]));
        let scope = restore::Scope { users: true, config: true, user: None };
        let err = restore::restore(&ctx, &r.join("data/backups/base.zip"), &scope, false)
            .expect_err("the injected failure stops the restore");
        assert!(format!("{err:#}").contains("injected failure"), "{point:?}: {err:#}");
        // Everything but the safety backup is exactly as before.
        let mut after = snapshot(r);
        after.retain(|p, _| !p.to_string_lossy().contains("pre_restore_safety"));
        assert_same(&before, &after);
        assert!(
            !r.join("requirements.txt").exists(),
            "{point:?}: a file absent before must stay absent"
        );
    }
}

#[test]
fn two_runs_at_once_one_exits_3() {
    let root = make_root();
    let r = root.path();
    // The first run is this test, holding the lock through the library's own call (as a
    // run of the binary does) for as long as it likes: no race with the second's start.
    let ctx = mhm_sidecar::Ctx::new(r, chrono::Utc::now()).unwrap();
    let held = mhm_sidecar::lock::acquire(&ctx).unwrap();
    let want = std::process::id().to_string();
    assert_eq!(fs::read_to_string(r.join("data/.sidecar.lock")).unwrap().trim(), want);
    let second = run(r, &["backup", "create", "--name", "second"]);
    assert_code(&second, 3);
    assert!(stderr(&second).contains(&format!("pid {want}")), "{}", stderr(&second));
    assert!(!r.join("data/backups/second.zip").exists());
    // Released, the next run goes ahead.
    drop(held);
    assert_code(&run(r, &["backup", "create", "--name", "second"]), 0);
    assert!(r.join("data/backups/second.zip").is_file());
}

#[test]
fn prune_settings_come_from_dotenv_and_verify_speaks_json() {
    let root = make_root();
    let r = root.path();
    fs::remove_dir_all(r.join("data/users/u2")).unwrap();
    fs::remove_dir_all(r.join("data/users/u3")).unwrap();
    for day in 1..=3 {
        let now = format!("2026-03-{day:02}T12:00:00Z");
        assert_code(&run(r, &["--now", &now, "backup", "create", "--name", &format!("m{day}")]), 0);
    }
    write(&r.join(".env"), "BACKUP_RETENTION_DAYS=2\nBACKUP_MAX_COUNT='10'\n");
    let out = run(r, &["--now", "2026-03-04T13:00:00Z", "--json", "backup", "prune"]);
    assert_code(&out, 0);
    let steps: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gone: Vec<&str> = listed(&steps).iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(gone, ["m2", "m1"]);
    assert_eq!(listed(&steps)[0]["why"], "older than 2 days");
    assert_eq!(common::names(&r.join("data/backups")), ["m3.zip"]);
    let out = run(r, &["--json", "backup", "verify", "m3"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert!(v["problems"].as_array().unwrap().is_empty());
    let out = run(r, &["--json", "backup", "verify", "nope"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
}

#[test]
fn previous_data_of_a_finished_restore_is_removed_never_rolled_back() {
    // regression: the old data was deleted in place after the commit; `COMMITTED` could go
    // first, and a removal cut short then looked like an interrupted restore, which the next
    // run "rolled back" over the restored data with a half-deleted old tree.
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/users/u1/account.json"), "changed");
    assert_code(&run(r, &["backup", "restore", "base"]), 0);
    let leftovers: Vec<String> =
        names(&r.join("data")).into_iter().filter(|n| n.starts_with(".restore")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let restored = fs::read(r.join("data/users/u1/account.json")).unwrap();
    assert_ne!(restored, b"changed");
    // A removal cut short leaves `.restore-done-*`: the next locked run deletes it and
    // touches nothing else.
    write(&r.join("data/.restore-done-77/users/u1/account.json"), "old, half deleted");
    let out = run(r, &["backup", "prune"]);
    assert_code(&out, 0);
    assert!(!r.join("data/.restore-done-77").exists());
    assert_eq!(fs::read(r.join("data/users/u1/account.json")).unwrap(), restored);
    assert!(r.join("data/users/u2/account.json").is_file());
}

#[test]
fn a_restore_is_refused_while_an_earlier_one_left_its_previous_data() {
    // regression: a restore could reuse a `.restore-old-<pid>` that a failed rollback left
    // (same pid, as in containers) and delete the data it held on commit.
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/.restore-old-4242/users/u9/account.json"), "precious");
    // A dry run takes no lock, so no recovery runs first: the guard alone answers.
    let before = snapshot(r);
    let out = run(r, &["--dry-run", "backup", "restore", "base"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains(".restore-old-4242"), "{}", stderr(&out));
    assert_same(&before, &snapshot(r));
}

#[cfg(unix)]
#[test]
fn entries_under_a_stored_link_are_refused_even_when_the_link_looks_inside() {
    // regression (found in review): `up -> ../u1` plus `esc -> up/up/../../…` read as text
    // stays inside users/u1 but on disk leads anywhere; a file entry under `esc` was then
    // written outside the root.
    use std::io::Write as _;
    use zip::write::SimpleFileOptions;
    let root = make_root();
    let r = root.path();
    let victim = tempfile::tempdir().unwrap();
    let victim_rel = victim.path().to_string_lossy().trim_start_matches('/').to_string();
    // Ten of each: deeper than the staging folder, fewer than the kernel's 40-link limit.
    let esc_target = format!("{}{}{victim_rel}", "up/".repeat(10), "../".repeat(10));
    let user_file: (&str, &[u8]) = ("users/u1/account.json", b"{}");
    let payload: (&str, &[u8]) = ("users/u1/esc/target.txt", b"PWNED");
    let links = [("users/u1/up", "../u1".to_string()), ("users/u1/esc", esc_target)];
    let mut files: Vec<serde_json::Value> = [user_file, payload]
        .iter()
        .map(|(n, b)| serde_json::json!({"path": n, "size": b.len(), "sha256": sha256_hex(b)}))
        .collect();
    for (n, t) in &links {
        files.push(serde_json::json!({"path": n, "size": t.len(), "sha256": sha256_hex(t.as_bytes()), "link": t}));
    }
    let total: usize = 2 + 5 + links.iter().map(|(_, t)| t.len()).sum::<usize>();
    let manifest = serde_json::json!({
        "backup_name": "crafted", "created_at": "2026-03-01T00:00:00+00:00",
        "includes": {"users": true, "config": false, "logs": false, "code": false},
        "system_info": {"total_users": 1, "file_count": 4, "total_bytes": total},
        "tool_version": "test", "files": files,
    });
    let path = r.join("data/backups/crafted.zip");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    for (n, t) in &links {
        z.add_symlink(*n, t.as_str(), SimpleFileOptions::default()).unwrap();
    }
    for (n, b) in
        [user_file, payload, ("manifest.json", &serde_json::to_vec(&manifest).unwrap()[..])]
    {
        z.start_file(n, SimpleFileOptions::default()).unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap();
    let before = snapshot(r);
    let out = run(r, &["backup", "restore", "crafted"]);
    assert_code(&out, 1);
    assert!(!victim.path().join("target.txt").exists(), "wrote outside the root");
    // Only the safety backup made before extraction is new; the users are as they were.
    let after = snapshot(r);
    for (k, v) in &before {
        if k.starts_with("data/users") {
            assert_eq!(after.get(k), Some(v), "{}", k.display());
        }
    }
}

// regression: a link in the project tree was skipped without a word
#[cfg(unix)]
#[test]
fn a_link_in_the_project_is_not_stored_and_is_named() {
    let root = make_root();
    let r = root.path();
    write(&r.join("src/main.py"), "print('hi')\n");
    std::os::unix::fs::symlink("/etc/hostname", r.join("src/host")).unwrap();
    let out = run(r, &["--now", NOW, "backup", "create", "--name", "c", "--include-code"]);
    let err = stderr(&out);
    assert!(err.contains("src/host") && err.contains("symbolic link"), "{err}");
    let names = zip_names(&r.join("data/backups/c.zip"));
    assert!(names.contains(&"code/src/main.py".to_string()));
    assert!(!names.iter().any(|n| n.contains("host")), "{names:?}");
}

#[test]
fn an_interrupted_restore_of_a_user_named_like_a_marker_puts_back_that_user() {
    // A user folder may be named anything, `.absent` included: the rollback must tell a
    // kept folder from the marker of one that was absent, by where it is, not by its name.
    let root = make_root();
    let r = root.path();
    write(&r.join("data/users/u9.absent/account.json"), r#"{"id": "u9.absent", "n": 0}"#);
    write(&r.join("data/users/u9/account.json"), r#"{"id": "u9"}"#);
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/users/u9.absent/account.json"), r#"{"id": "u9.absent", "n": 1}"#);
    use mhm_sidecar::{restore, Ctx, FailPoint, Faults};
    let mut before = snapshot(r);
    before.retain(|p, _| !p.to_string_lossy().contains("pre_restore_safety"));
    let ctx = Ctx::new(r, chrono::Utc::now()).unwrap().with_faults(Faults(vec![FailPoint::Commit]));
    let scope = restore::Scope { users: true, config: false, user: Some("u9.absent".into()) };
    let err = restore::restore(&ctx, &r.join("data/backups/base.zip"), &scope, false)
        .expect_err("the injected failure stops the restore");
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");
    let mut after = snapshot(r);
    after.retain(|p, _| !p.to_string_lossy().contains("pre_restore_safety"));
    assert_same(&before, &after);
}

// Unix: Windows refuses control characters in file names.
#[cfg(unix)]
#[test]
fn restore_dry_run_escapes_control_characters_in_names() {
    // A name with a newline could forge an output line, one with ESC could drive the
    // terminal: shown escaped, as `backup verify` and `list` show them.
    let root = make_root();
    let r = root.path();
    let hostile = "x\n  added users/forged\u{1b}[2J";
    write(&r.join("data/users/u1").join(hostile), "one");
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    write(&r.join("data/users/u1").join(hostile), "two");
    let out = run(r, &["backup", "restore", "base", "--user", "u1", "--dry-run"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(!text.lines().any(|l| l.trim_start().starts_with("added users/forged")), "{text}");
    assert!(text.contains(r"x\n  added users/forged\u{1b}[2J"), "{text}");
}

#[test]
fn a_file_gone_during_a_backup_is_skipped_and_named() {
    // The service removes and replaces its files while a backup runs: a file listed and
    // gone by its turn is left out and named; the rest is backed up and verifies. The
    // removal happens between the listing and the writing, under the test's control; in
    // each form (zip written on one thread and on several, folder, snapshot).
    use mhm_sidecar::{
        backup::{self, create, manifest::Includes},
        snapshot, Ctx,
    };
    for (format, big) in [
        (create::Format::Zip, false),
        (create::Format::Zip, true),
        (create::Format::Directory, false),
    ] {
        let root = make_root();
        let r = root.path();
        if big {
            // Past the size from which the zip is compressed on every core.
            let blob: Vec<u8> =
                (0..6_000_000u32).map(|n| (n.wrapping_mul(2654435761) >> 7) as u8).collect();
            write(&r.join("data/users/u2/big.bin"), blob);
        }
        let ctx = Ctx::new(r, chrono::Utc::now()).unwrap();
        let options = create::Options {
            includes: Includes { users: true, config: true, logs: false, code: false },
            format,
        };
        let (sources, _) = create::collect(&ctx, &options).unwrap();
        fs::remove_file(r.join("data/users/u1/account.json")).unwrap();
        let (path, manifest, gone) =
            create::write(&ctx, &r.join("data/backups"), "b", &options, sources).unwrap();
        assert_eq!(gone.len(), 1, "{format:?}: {gone:?}");
        assert_eq!(gone[0].path.as_deref(), Some("data/users/u1/account.json"));
        assert!(gone[0].what.contains("gone since it was listed"), "{:?}", gone[0]);
        assert!(
            backup::verify::backup(&path).ok(),
            "{format:?}: {:?}",
            backup::verify::backup(&path)
        );
        assert!(manifest.system_info.file_count > 0);
    }
    // A snapshot with the data, through the command's own path.
    let root = make_root();
    let r = root.path();
    let ctx = Ctx::new(r, chrono::Utc::now()).unwrap();
    let dir = r.join("snapshots");
    let options = snapshot::Options { include_user_data: true, no_compress: false };
    let (sources, _) = snapshot::collect(&ctx, &dir, &options).unwrap();
    fs::remove_file(r.join("data/users/u1/account.json")).unwrap();
    let (path, _, gone) = snapshot::write(&ctx, &dir, "s", &options, &sources).unwrap();
    assert_eq!(gone, [r.join("data/users/u1/account.json")]);
    assert!(snapshot::verify::snapshot(&path).ok());
}

/// Issue 22: `backup verify` reads whole zips; it reports its progress (a bar on a
/// terminal): every entry's compressed bytes, once, never more than the file holds.
#[test]
fn verify_reports_its_progress_over_the_zips_bytes() {
    use std::sync::atomic::{AtomicU64, Ordering};
    struct Count(AtomicU64);
    impl mhm_sidecar::Bar for Count {
        fn inc(&self, n: u64) {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
        fn finish(&self) {}
    }
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "b"]), 0);
    let zip = r.join("data/backups/b.zip");
    let count = Count(AtomicU64::new(0));
    assert!(mhm_sidecar::backup::verify::backup_with(&zip, &count).ok());
    let done = count.0.load(Ordering::Relaxed);
    let len = fs::metadata(&zip).unwrap().len();
    assert!(done > len / 2 && done < len, "{done} of {len}");
}
