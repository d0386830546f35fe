//! `snapshot create | list | verify` on the real binary: the file selection on a generated
//! tree (names that merely contain "test" kept), the manifest, verification catching a
//! flipped byte or a missing file.

use crate::common;

use std::{
    collections::BTreeSet,
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use common::*;
use serde_json::Value;

const NOW: &str = "2026-03-20T10:30:00Z";

/// A project tree with everything a snapshot must leave out, and look-alikes it must keep.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for (path, body) in [
        ("README.md", "# MHM\n"),
        ("docs/guide.md", "how to\n"),
        ("src/app.py", "print('hi')\n"),
        ("src/latest.py", "latest = 1\n"),
        ("tests/test_app.py", "def test(): pass\n"),
        ("tests/logs/kept.txt", "a nested logs folder is not the root's logs/\n"),
        ("contest/entry.py", "x = 1\n"),
        ("test_utils.py", "y = 2\n"),
        ("requirements.txt", "requests\n"),
        (".gitignore", "*.secret\nbuild_output/\n/local_only.txt\n"),
        ("notes.secret", "hidden by .gitignore"),
        ("build_output/artifact.bin", "ignored folder"),
        ("local_only.txt", "ignored at the top"),
        ("sub/local_only.txt", "anchored rule: kept here"),
        (".git/config", "[core]"),
        ("target/debug/app", "binary"),
        ("venv/lib/site.py", "venv"),
        (".venv/lib/site.py", "venv"),
        ("myenv/pyvenv.cfg", "home = /usr"),
        ("myenv/lib/site.py", "a venv by its pyvenv.cfg"),
        ("__pycache__/a.pyc", "cache"),
        ("src/__pycache__/b.pyc", "cache"),
        (".pytest_cache/v", "cache"),
        ("node_modules/x/index.js", "js"),
        ("logs/app.log", "active log"),
        ("logs/backups/app.log.2026-03-19", "rotated"),
        ("data/users/u1/account.json", "{\"id\": \"u1\"}"),
        ("data/users/u1/messages/sent_messages.json", "{\"messages\": []}"),
        ("data/user_index.json", "{\"u1\": {}}"),
        ("data/backups/mhm_backup_20260101_000000.zip", "not really a zip"),
    ] {
        write(&r.join(path), body);
    }
    dir
}

const CODE: &[&str] = &[
    "code/.gitignore",
    "code/README.md",
    "code/contest/entry.py",
    "code/docs/guide.md",
    "code/requirements.txt",
    "code/src/app.py",
    "code/src/latest.py",
    "code/sub/local_only.txt",
    "code/test_utils.py",
    "code/tests/logs/kept.txt",
    "code/tests/test_app.py",
];

fn zip_names(path: &Path) -> BTreeSet<String> {
    let z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    z.file_names().map(str::to_owned).collect()
}

fn zip_manifest(path: &Path) -> Value {
    let mut z = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    z.by_name("snapshot_manifest.json").unwrap().read_to_string(&mut s).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn create(root: &Path, archive: &Path, extra: &[&str]) -> std::process::Output {
    let mut args =
        vec!["--now", NOW, "snapshot", "create", "--archive-dir", archive.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(root, &args)
}

#[test]
fn create_selects_code_by_gitignore_and_the_fixed_exclusions() {
    let root = project();
    let r = root.path();
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path().join("snapshots");
    let out = create(r, &archive, &[]);
    assert_code(&out, 0);
    let zip = archive.join("mhm_snapshot_20260320_103000.zip");
    assert_eq!(names(&archive), ["mhm_snapshot_20260320_103000.zip"]);
    let mut want = set(CODE);
    want.insert("snapshot_manifest.json".into());
    assert_eq!(zip_names(&zip), want);

    let m = zip_manifest(&zip);
    assert_eq!(m["snapshot_name"], "mhm_snapshot_20260320_103000");
    assert_eq!(m["created_at"], "2026-03-20T10:30:00+00:00");
    assert_eq!(m["includes"], serde_json::json!({"code": true, "user_data": false}));
    assert!(m["tool_version"].as_str().unwrap().starts_with("mhm-sidecar "));
    let files = m["files"].as_array().unwrap();
    assert_eq!(m["file_count"], CODE.len());
    assert_eq!(files.len(), CODE.len());
    let mut total = 0;
    for f in files {
        let rel = f["path"].as_str().unwrap().strip_prefix("code/").unwrap();
        let bytes = fs::read(r.join(rel)).unwrap();
        assert_eq!(f["size"], bytes.len(), "{rel}");
        assert_eq!(f["sha256"], sha256_hex(&bytes), "{rel}");
        total += bytes.len();
    }
    assert_eq!(m["total_bytes"], total);

    // list and verify.
    let out = run(r, &["--json", "snapshot", "list", "--archive-dir", archive.to_str().unwrap()]);
    assert_code(&out, 0);
    let list: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed(&list).len(), 1);
    assert_eq!(listed(&list)[0]["name"], "mhm_snapshot_20260320_103000");
    assert_eq!(listed(&list)[0]["kind"], "zip");
    assert_eq!(listed(&list)[0]["file_count"], CODE.len());
    let out = run(r, &["snapshot", "verify", zip.to_str().unwrap()]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("valid"), "{}", stdout(&out));

    // Same second: a new name, never an overwrite.
    assert_code(&create(r, &archive, &[]), 0);
    assert_eq!(
        names(&archive),
        ["mhm_snapshot_20260320_103000.zip", "mhm_snapshot_20260320_103000_1.zip"]
    );
}

#[test]
fn user_data_without_backups_and_a_folder_form() {
    let root = project();
    let r = root.path();
    // The archive folder inside the project: earlier snapshots are never stored again.
    let archive = r.join("snapshots");
    let out = create(r, &archive, &["--include-user-data", "--no-compress"]);
    assert_code(&out, 0);
    let folder = archive.join("mhm_snapshot_20260320_103000");
    assert!(folder.is_dir());
    let mut want = set(CODE);
    for d in [
        "data/user_index.json",
        "data/users/u1/account.json",
        "data/users/u1/messages/sent_messages.json",
    ] {
        want.insert(d.into());
    }
    let m: Value =
        serde_json::from_slice(&fs::read(folder.join("snapshot_manifest.json")).unwrap()).unwrap();
    let listed: BTreeSet<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, want);
    assert_eq!(m["includes"], serde_json::json!({"code": true, "user_data": true}));
    for p in &want {
        let on_disk = folder.join(p);
        let source = match p.strip_prefix("code/") {
            Some(rel) => r.join(rel),
            None => r.join(p),
        };
        assert_eq!(fs::read(&on_disk).unwrap(), fs::read(&source).unwrap(), "{p}");
    }
    assert_code(&run(r, &["snapshot", "verify", folder.to_str().unwrap()]), 0);

    // A zip next to it: the first snapshot (inside the project) is not in it.
    assert_code(&create(r, &archive, &["--include-user-data"]), 0);
    let zip = archive.join("mhm_snapshot_20260320_103000_1.zip");
    let names = zip_names(&zip);
    assert!(!names.iter().any(|n| n.contains("snapshots/") || n.contains("backups")), "{names:?}");
    assert!(names.contains("data/users/u1/account.json"));
    assert!(!names.contains("data/.sidecar.lock"), "{names:?}");
    let out = run(r, &["snapshot", "list", "--archive-dir", archive.to_str().unwrap()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("folder") && text.contains("code,data"), "{text}");
}

#[test]
fn dry_run_changes_nothing() {
    let root = project();
    let r = root.path();
    let archive = r.join("snapshots");
    let before = snapshot(r);
    let out = create(r, &archive, &["--dry-run"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("would create"), "{}", stdout(&out));
    assert!(stdout(&out).contains("code/src/latest.py"), "{}", stdout(&out));
    assert!(!archive.exists());
    assert_same(&before, &snapshot(r));
}

/// Copies the zip at `from` to `to`, passing each entry through `edit` (None drops it).
fn rewrite_zip(from: &Path, to: &Path, edit: impl Fn(&str, Vec<u8>) -> Option<Vec<u8>>) {
    use std::io::Write;
    let mut src = zip::ZipArchive::new(fs::File::open(from).unwrap()).unwrap();
    let mut dst = zip::ZipWriter::new(fs::File::create(to).unwrap());
    for i in 0..src.len() {
        let mut e = src.by_index(i).unwrap();
        let name = e.name().to_string();
        let mut bytes = Vec::new();
        e.read_to_end(&mut bytes).unwrap();
        if let Some(bytes) = edit(&name, bytes) {
            dst.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
            dst.write_all(&bytes).unwrap();
        }
    }
    dst.finish().unwrap();
}

fn verify(root: &Path, path: &Path) -> (i32, String) {
    let out = run(root, &["snapshot", "verify", path.to_str().unwrap()]);
    (code(&out), stdout(&out))
}

#[test]
fn verify_catches_changed_bytes_missing_and_extra_files() {
    let root = project();
    let r = root.path();
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path().to_path_buf();
    assert_code(&create(r, &archive, &[]), 0);
    let zip = archive.join("mhm_snapshot_20260320_103000.zip");
    assert_eq!(verify(r, &zip).0, 0);

    // A flipped byte inside a stored entry's compressed data: CRC or digest fails.
    let flipped = archive.join("flipped.zip");
    fs::copy(&zip, &flipped).unwrap();
    let offset = {
        let mut z = zip::ZipArchive::new(fs::File::open(&flipped).unwrap()).unwrap();
        let e = z.by_name("code/README.md").unwrap();
        e.data_start() as usize
    };
    let mut bytes = fs::read(&flipped).unwrap();
    bytes[offset + 1] ^= 0x55;
    fs::write(&flipped, bytes).unwrap();
    let (c, text) = verify(r, &flipped);
    assert_eq!(c, 1, "{text}");
    assert!(text.contains("code/README.md"), "{text}");

    // Content changed consistently in the zip (CRC fine), but not the manifest.
    let edited = archive.join("edited.zip");
    rewrite_zip(&zip, &edited, |n, b| {
        Some(if n == "code/src/app.py" { b"print('evil')\n".to_vec() } else { b })
    });
    let (c, text) = verify(r, &edited);
    assert_eq!(c, 1);
    assert!(
        text.contains("code/src/app.py: size") || text.contains("code/src/app.py: SHA-256"),
        "{text}"
    );

    // A missing file, an extra file, no manifest.
    let missing = archive.join("missing.zip");
    rewrite_zip(&zip, &missing, |n, b| (n != "code/docs/guide.md").then_some(b));
    let (c, text) = verify(r, &missing);
    assert_eq!(c, 1);
    assert!(text.contains("code/docs/guide.md: listed in the manifest but missing"), "{text}");
    let no_manifest = archive.join("no_manifest.zip");
    rewrite_zip(&zip, &no_manifest, |n, b| (n != "snapshot_manifest.json").then_some(b));
    let (c, text) = verify(r, &no_manifest);
    assert_eq!(c, 1);
    assert!(text.contains("snapshot_manifest.json: missing"), "{text}");

    // Not a zip at all; not there at all.
    let junk = archive.join("junk.zip");
    fs::write(&junk, b"junk").unwrap();
    assert_eq!(verify(r, &junk).0, 1);
    assert_eq!(verify(r, &archive.join("nope.zip")).0, 1);
}

#[test]
fn verify_a_folder_snapshot() {
    let root = project();
    let r = root.path();
    let out_dir = tempfile::tempdir().unwrap();
    let archive: PathBuf = out_dir.path().to_path_buf();
    assert_code(&create(r, &archive, &["--no-compress", "--include-user-data"]), 0);
    let folder = archive.join("mhm_snapshot_20260320_103000");
    assert_eq!(verify(r, &folder).0, 0);

    let file = folder.join("code/src/app.py");
    let mut bytes = fs::read(&file).unwrap();
    bytes[0] ^= 1;
    fs::write(&file, &bytes).unwrap();
    let (c, text) = verify(r, &folder);
    assert_eq!(c, 1);
    assert!(text.contains("code/src/app.py: SHA-256 differs"), "{text}");
    bytes[0] ^= 1;
    fs::write(&file, &bytes).unwrap();
    assert_eq!(verify(r, &folder).0, 0);

    fs::remove_file(folder.join("data/users/u1/account.json")).unwrap();
    write(&folder.join("code/extra.txt"), "x");
    let (c, text) = verify(r, &folder);
    assert_eq!(c, 1);
    assert!(
        text.contains("data/users/u1/account.json: listed in the manifest but missing"),
        "{text}"
    );
    assert!(text.contains("code/extra.txt: in the snapshot but not in the manifest"), "{text}");
}

#[test]
fn bad_archive_dir() {
    let root = project();
    let r = root.path();
    let before = snapshot(r);
    let out = create(r, &r.join("README.md"), &[]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("README.md: not a folder"), "{}", stderr(&out));
    let out = run(r, &["snapshot", "list", "--archive-dir", r.join("nope").to_str().unwrap()]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    assert_same(&before, &snapshot(r));
}

#[test]
fn leftovers_of_a_crashed_create_are_removed_live_ones_kept() {
    let root = project();
    let r = root.path();
    let out_dir = tempfile::tempdir().unwrap();
    let archive = out_dir.path();
    // pid 4194304 + 1 is above Linux's pid limit: that writer is surely gone.
    let dead_folder = archive.join(".tmp-4194305-mhm_snapshot_20260101_000000");
    let dead_zip = archive.join(".tmp-4194305-mhm_snapshot_20260101_000000.zip");
    let live = archive.join(format!(".tmp-{}-mhm_snapshot_20260101_000000", std::process::id()));
    write(&dead_folder.join("code/a.txt"), "partial");
    write(&dead_zip, "partial");
    write(&live.join("code/a.txt"), "being written");
    let out = create(r, archive, &[]);
    assert_code(&out, 0);
    if cfg!(target_os = "linux") {
        assert!(!dead_folder.exists() && !dead_zip.exists(), "{}", stderr(&out));
    }
    assert!(live.join("code/a.txt").is_file());
    assert!(archive.join("mhm_snapshot_20260320_103000.zip").is_file());
}

#[test]
fn snapshots_kept_in_the_project_root_are_not_nested() {
    let root = project();
    let r = root.path();
    write(&r.join("notes/mhm_snapshot_plan.md"), "a document whose name looks like one, elsewhere");
    assert_code(&create(r, r, &["--no-compress"]), 0);
    assert_code(&create(r, r, &[]), 0);
    let zip = r.join("mhm_snapshot_20260320_103000_1.zip");
    let mut want = set(CODE);
    want.insert("code/notes/mhm_snapshot_plan.md".into());
    want.insert("snapshot_manifest.json".into());
    assert_eq!(zip_names(&zip), want);
    assert_code(&run(r, &["snapshot", "verify", zip.to_str().unwrap()]), 0);
}
