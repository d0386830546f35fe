//! SPEC section 7: paths in messages (errors deep in helpers included) and in
//! `logs/sidecar.log` are written relative to the root with `/` when they lie under it, so
//! a user and a script read `data/users/u1/x.json`, never `/home/me/mhm/data/...` (or
//! `C:\Users\me\mhm\data\...` on Windows). The root itself, named once at start-up, is the
//! exception.

use crate::common;

use std::{fs, path::Path, sync::Arc};

use common::*;
use mhm_sidecar::{
    backup::{self, manifest::Includes, PrunePolicy},
    Bar, Ctx, NoProgress, Progress,
};

/// The root folder's own name: no message may carry it (an absolute path under the root
/// would).
fn root_name(r: &Path) -> String {
    r.file_name().unwrap().to_string_lossy().into_owned()
}

/// Fails when `text` names the root as an absolute path.
#[track_caller]
fn assert_no_root(r: &Path, text: &str) {
    assert!(!text.contains(&root_name(r)), "an absolute path under the root in:\n{text}");
    assert!(!text.contains('\\'), "a backslash in:\n{text}");
}

/// Deletes a file when the backup's progress bar starts: after the files were collected,
/// before they are read, as a user (or the service) deleting it at that moment would.
struct DeleteOnStart(std::sync::Mutex<Option<std::path::PathBuf>>);

impl Progress for DeleteOnStart {
    fn start(&self, what: &str, total: u64) -> Box<dyn Bar> {
        if let Some(p) = self.0.lock().unwrap().take() {
            fs::remove_file(p).unwrap();
        }
        NoProgress.start(what, total)
    }
}

#[test]
fn a_user_file_that_cannot_be_read_while_packing_is_named_relative_to_the_root() {
    let root = make_root();
    let r = root.path();
    let gone = r.join("data/users/u2/preferences.json");
    let now = chrono::Utc::now();
    let ctx = Ctx::new(r, now)
        .unwrap()
        .with_progress(Arc::new(DeleteOnStart(std::sync::Mutex::new(Some(gone)))));
    let includes = Includes { users: true, config: true, logs: false, code: false };
    let policy =
        PrunePolicy { retention: std::time::Duration::from_secs(86_400 * 365), max_count: 99 };
    // Issue 21: a file gone since it was listed is skipped and named (relative to the
    // root); the rest is backed up.
    let made = backup::make(
        &ctx,
        "unreadable",
        includes,
        backup::create::Format::Zip,
        policy,
        &mhm_sidecar::remote::FromSettings,
    )
    .expect("the rest is backed up");
    let named: Vec<String> = made.warnings.iter().map(ToString::to_string).collect();
    assert!(
        named
            .iter()
            .any(|w| w.starts_with("data/users/u2/preferences.json: gone since it was listed")),
        "{named:?}"
    );
    for w in &named {
        assert_no_root(r, w);
    }
    assert!(r.join("data/backups/unreadable.zip").is_file());
}

#[test]
fn a_malformed_state_file_is_named_relative_to_the_root_in_messages_and_the_log() {
    let root = make_root();
    let r = root.path();
    write(&r.join("data/.sidecar_state.json"), "{broken");
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(
            "data/.sidecar_state.json is not a valid state file (fix or delete it): \
             key must be a string at line 1 column 2; kept aside as \
             data/.sidecar_state.json.corrupt, every job treated as never run"
        ),
        "{err}"
    );
    assert_no_root(r, &err);
    assert_no_root(r, &stdout(&out));
    // The log says the same; only its start-up line names the root (on purpose).
    let log = fs::read_to_string(r.join("logs/sidecar.log")).unwrap();
    assert!(log.contains("data/.sidecar_state.json is not a valid state file"), "{log}");
    let others: Vec<&str> = log.lines().filter(|l| !l.contains("(root ")).collect();
    assert!(log.lines().any(|l| l.contains("(root ")), "{log}");
    assert_no_root(r, &others.join("\n"));
}

#[test]
fn a_bad_dotenv_line_names_the_file_relative_to_the_root() {
    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "A=1\nthis is not a setting\n");
    let out = run(r, &["system", "validate"]);
    assert_code(&out, 2);
    assert_eq!(stderr(&out), "error: .env:2: expected KEY=VALUE (a line without '=')\n");
}

#[test]
fn a_bad_setting_in_dotenv_names_dotenv_relative_to_the_root() {
    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "LOG_BACKUP_COUNT=seven\n");
    let out = run(r, &["logs", "list"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.trim_end().ends_with("(from .env)"), "{err}");
    assert_no_root(r, &err);
}

#[test]
fn a_held_lock_names_data_sidecar_lock_relative_to_the_root() {
    let root = make_root();
    let r = root.path();
    let ctx = Ctx::new(r, chrono::Utc::now()).unwrap();
    let held = mhm_sidecar::lock::acquire(&ctx).unwrap();
    let out = run(r, &["logs", "archive"]);
    assert_code(&out, 3);
    assert_eq!(
        stderr(&out),
        format!(
            "error: another mhm-sidecar run (pid {}) holds the lock on data/.sidecar.lock; \
             try again when it is done\n",
            std::process::id()
        )
    );
    drop(held);
}

#[test]
fn json_lists_name_backups_and_snapshots_relative_to_the_root() {
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["--now", "2026-03-02T01:00:00Z", "backup", "create", "--name", "b1"]), 0);
    let out = run(r, &["--json", "backup", "list"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed(&v)[0]["path"], "data/backups/b1.zip", "{v}");
    // What a restore replaces: the live paths.
    let out = run(r, &["--json", "--dry-run", "backup", "restore", "b1"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let live: Vec<&str> = v["restore"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["live"].as_str().unwrap())
        .collect();
    assert_eq!(live, ["data/users"], "{v}");
    // A snapshot folder inside the root: relative; the JSON of create and list alike.
    let snaps = r.join("snaps");
    let snaps = snaps.to_str().unwrap();
    let out = run(r, &["--json", "snapshot", "create", "--archive-dir", snaps]);
    assert_code(&out, 0);
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = created["snapshot_name"].as_str().unwrap().to_string();
    assert_eq!(created["created"], format!("snaps/{name}.zip"), "{created}");
    let out = run(r, &["--json", "snapshot", "list", "--archive-dir", snaps]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed(&v)[0]["path"], format!("snaps/{name}.zip"), "{v}");
}
