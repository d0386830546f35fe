//! What Windows makes different, checked on every platform (a promise a platform cannot
//! break is checked there the platform's own way): the lock holder's pid, data files other
//! processes hold open, long paths, names that differ only in case, Notepad's `.env`.

use crate::common;

use std::{fs, path::Path};

use common::*;

#[test]
fn a_second_run_exits_3_naming_the_holders_pid() {
    // The test process holds the lock, as a running sidecar would; the binary is the
    // second process. On Windows a lock on the whole file made the pid unreadable.
    let root = make_root();
    let r = root.path();
    let ctx = mhm_sidecar::Ctx::new(r, chrono::Utc::now()).unwrap();
    let held = mhm_sidecar::lock::acquire(&ctx).unwrap();
    let out = run(r, &["backup", "create", "--name", "second"]);
    assert_code(&out, 3);
    // The lock file is named relative to the root, with `/`, on every platform (SPEC 7).
    assert_eq!(
        stderr(&out),
        format!(
            "error: another mhm-sidecar run (pid {}) holds the lock on data/.sidecar.lock; \
             try again when it is done\n",
            std::process::id()
        )
    );
    assert!(!r.join("data/backups/second.zip").exists());
    drop(held);
    assert_code(&run(r, &["backup", "create", "--name", "second"]), 0);
}

#[test]
fn a_data_file_open_in_another_process_the_usual_way_is_backed_up() {
    let root = make_root();
    let r = root.path();
    let path = r.join("data/users/u1/open.json");
    write(&path, "{}");
    // Open for writing, as the service holds its files (read and write sharing allowed).
    let _open = fs::OpenOptions::new().append(true).open(&path).unwrap();
    assert_code(&run(r, &["backup", "create", "--name", "open"]), 0);
    let zip = zip::ZipArchive::new(fs::File::open(r.join("data/backups/open.zip")).unwrap());
    assert!(zip.unwrap().file_names().any(|n| n == "users/u1/open.json"));
}

#[cfg(windows)]
#[test]
fn a_data_file_another_process_opened_without_sharing_fails_the_backup_cleanly() {
    use std::os::windows::fs::OpenOptionsExt;
    let root = make_root();
    let r = root.path();
    let path = r.join("data/users/u1/locked.json");
    write(&path, "{}");
    let _held = fs::OpenOptions::new().read(true).write(true).share_mode(0).open(&path).unwrap();
    let out = run(r, &["backup", "create", "--name", "blocked"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("locked.json") && !err.contains("panicked"), "{err}");
    assert!(err.contains("data/backups/blocked.zip"), "{err}");
    // Nothing under the final name, no temporary file left.
    assert_eq!(names(&r.join("data/backups")), Vec::<String>::new());
}

#[test]
fn a_user_file_whose_path_exceeds_260_characters_is_backed_up_verified_and_restored() {
    let root = make_root();
    let r = root.path();
    let mut deep = r.join("data/users/u1");
    for i in 0..6 {
        deep = deep.join(format!("{i}-{}", "folder".repeat(7)));
    }
    let file = deep.join("long_named_preferences_file.json");
    assert!(file.as_os_str().len() > 260, "{}", file.as_os_str().len());
    write(&file, r#"{"deep": true}"#);
    assert_code(&run(r, &["backup", "create", "--name", "long"]), 0);
    assert_code(&run(r, &["backup", "verify", "long"]), 0);
    fs::write(&file, r#"{"deep": false}"#).unwrap();
    assert_code(&run(r, &["backup", "restore", "long", "--user", "u1"]), 0);
    assert_eq!(fs::read_to_string(&file).unwrap(), r#"{"deep": true}"#);
}

/// Whether the file system under `dir` tells `a` from `A`.
fn case_sensitive(dir: &Path) -> bool {
    let probe = dir.join("case_probe");
    fs::write(&probe, "").unwrap();
    let sensitive = !dir.join("CASE_PROBE").exists();
    fs::remove_file(probe).unwrap();
    sensitive
}

#[test]
fn names_that_differ_only_in_case_are_both_restored_or_the_restore_is_refused() {
    let root = make_root();
    let r = root.path();
    let backup = r.join("data/backups/cased.zip");
    let files: &[(&str, &[u8])] =
        &[("users/u1/Notes.json", br#"{"n": 1}"#), ("users/u1/notes.json", br#"{"n": 2}"#)];
    crafted_backup(&backup, files, &[]);
    let before = snapshot(&r.join("data/users"));
    let out = run(r, &["backup", "restore", "cased", "--user", "u1"]);
    let u1 = r.join("data/users/u1");
    if case_sensitive(r) {
        // Linux: two files.
        assert_code(&out, 0);
        assert_eq!(fs::read_to_string(u1.join("Notes.json")).unwrap(), r#"{"n": 1}"#);
        assert_eq!(fs::read_to_string(u1.join("notes.json")).unwrap(), r#"{"n": 2}"#);
    } else {
        // Windows, macOS: one file could hold only one of them; nothing is restored.
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains(r#"entry "users/u1/notes.json" refused"#), "{err}");
        assert!(err.contains("differs only in case"), "{err}");
        assert_same(&before, &snapshot(&r.join("data/users")));
    }
}

#[test]
fn a_dotenv_from_notepad_is_read_key_by_key() {
    // The BOM is not part of the first key, and CR is not part of any value: a bad value
    // behind either is still found and named (exit 2), a good one still read.
    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "\u{feff}LOG_MAX_BYTES=lots\r\nAPP_MODE=x\r\n");
    let out = run(r, &["system", "validate"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("LOG_MAX_BYTES"), "{}", stderr(&out));
    write(&r.join(".env"), "\u{feff}APP_MODE=x\r\nLOG_MAX_BYTES=1024\r\nLOG_BACKUP_COUNT=lots\r\n");
    let out = run(r, &["system", "validate"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("LOG_BACKUP_COUNT"), "{}", stderr(&out));
    write(&r.join(".env"), "\u{feff}LOG_MAX_BYTES=1024\r\nLOG_BACKUP_COUNT=3\r\n");
    assert_code(&run(r, &["system", "validate"]), 0);
}
