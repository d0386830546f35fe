//! `demo`: builds a root, runs maintain and status on it; never clobbers a foreign folder.

use std::{fs, process::Command};

use crate::common::Launch;

fn sidecar() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mhm-sidecar"))
}

#[test]
fn demo_builds_a_root_and_maintains_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let out = sidecar()
        .args(["demo", "--now", "2026-11-26T12:00:00Z"])
        .arg(&dir)
        .launch_output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    // The logs were rotated by the library and archived by maintain.
    let gz = fs::read_dir(dir.join("logs/archive"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".gz"))
        .count();
    assert!(gz >= 7, "{gz} compressed copies");
    assert!(fs::read_dir(dir.join("logs/backups")).unwrap().count() > 0);
    // The weekly backup was made and is valid.
    let backups: Vec<String> = fs::read_dir(dir.join("data/backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        backups.iter().any(|n| n.starts_with("weekly_backup_20261126_") && n.ends_with(".zip")),
        "{backups:?}"
    );
    let verify = sidecar()
        .arg("--root")
        .arg(&dir)
        .args(["backup", "verify", backups.iter().find(|n| n.starts_with("weekly")).unwrap()])
        .launch_output()
        .unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
    // The backup the service made its own way is there beside it, listed as the service's.
    let list = sidecar()
        .arg("--root")
        .arg(&dir)
        .args(["--json", "backup", "list"])
        .launch_output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert!(
        crate::common::listed(&list).iter().any(|b| b["made_by"] == "mhm" && b["kind"] == "weekly"),
        "{list}"
    );
    assert!(stdout.contains("maintain") && stdout.contains("newest weekly"), "{stdout}");

    // A second run replaces its own folder ...
    fs::write(dir.join("data/extra.txt"), "left over").unwrap();
    let again = sidecar()
        .args(["demo", "--now", "2026-11-26T12:00:00Z"])
        .arg(&dir)
        .launch_output()
        .unwrap();
    assert!(again.status.success());
    assert!(!dir.join("data/extra.txt").exists());
    // ... but never a folder it did not make.
    let mine = tmp.path().join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("precious.txt"), "keep").unwrap();
    let refused = sidecar().arg("demo").arg(&mine).launch_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("was not made by"));
    assert_eq!(fs::read_to_string(mine.join("precious.txt")).unwrap(), "keep");

    // --dry-run says what it would do and changes nothing: not the earlier demo ...
    fs::write(dir.join("data/extra.txt"), "left over").unwrap();
    let dry = sidecar().args(["demo", "--dry-run"]).arg(&dir).launch_output().unwrap();
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let said = String::from_utf8_lossy(&dry.stdout);
    assert!(said.contains("would build") && said.contains("replacing the earlier demo"), "{said}");
    assert_eq!(fs::read_to_string(dir.join("data/extra.txt")).unwrap(), "left over");
    // ... nor a new folder, and it refuses what a real run refuses.
    let new = tmp.path().join("new");
    let dry = sidecar().args(["demo", "--dry-run"]).arg(&new).launch_output().unwrap();
    assert!(dry.status.success() && !new.exists());
    let refused = sidecar().args(["demo", "--dry-run"]).arg(&mine).launch_output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
}
