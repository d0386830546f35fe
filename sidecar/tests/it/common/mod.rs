//! Helpers for the integration tests: a generated MHM root, the real binary, a snapshot of
//! every file to prove "nothing changed".
#![allow(dead_code)]

#[path = "../../../../tests/common/launch.rs"]
mod launch;
pub mod seaweed;
pub use launch::Launch;

use std::{
    collections::BTreeMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mhm-sidecar"));
    cmd.env_remove("MHM_ROOT").env_remove("MHM_NOW").env("TZ", "UTC");
    for (k, _) in std::env::vars() {
        if k.starts_with("LOG_")
            || k.starts_with("BACKUP_")
            || k.starts_with("MHM_REMOTE")
            || k.starts_with("REMOTE_")
            || k.starts_with("AWS_")
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Runs the binary on `root` with `args`.
pub fn run(root: &Path, args: &[&str]) -> Output {
    bin().arg("--root").arg(root).args(args).launch_output().expect("running mhm-sidecar")
}

/// The fire drill: `remote restore` on `root` (a new machine: settings from the
/// environment only) from the folder store `store`, with the private key file `key`.
pub fn fire_drill(root: &Path, store: &Path, key: &Path) -> Output {
    bin()
        .arg("--root")
        .arg(root)
        .args(["remote", "restore"])
        .env("MHM_REMOTE_URL", format!("file://{}", store.display()))
        .env("MHM_REMOTE_IDENTITY_FILE", key)
        .launch_output()
        .expect("running mhm-sidecar")
}

/// Starts the binary on `root` with `args`, its output discarded.
pub fn spawn_quiet(root: &Path, args: &[&str]) -> std::process::Child {
    bin()
        .arg("--root")
        .arg(root)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .launch()
        .expect("starting mhm-sidecar")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn assert_code(out: &Output, expected: i32) {
    assert_eq!(code(out), expected, "stdout:\n{}\nstderr:\n{}", stdout(out), stderr(out));
}

pub fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

pub fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A small MHM root: three users, an index, config files, some logs.
pub fn make_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut index = serde_json::Map::new();
    for (i, id) in ["u1", "u2", "u3"].iter().enumerate() {
        index.insert(id.to_string(), serde_json::json!({"name": format!("user {i}")}));
        let u = root.join("data/users").join(id);
        write(&u.join("account.json"), format!(r#"{{"id": "{id}", "n": {i}}}"#));
        write(&u.join("preferences.json"), r#"{"theme": "dark"}"#);
        write(
            &u.join("messages/sent_messages.json"),
            r#"{"messages": [{"timestamp": "2026-01-01 10:00:00", "text": "hi"}], "metadata": {}}"#,
        );
        // A binary-ish file big enough to compress into several blocks.
        let blob: Vec<u8> =
            (0..200_000u32).map(|n| (n.wrapping_mul(2654435761) >> 13) as u8).collect();
        write(&u.join("blob.bin"), blob);
    }
    index.insert("last_updated".into(), serde_json::json!("2026-11-01"));
    write(&root.join("data/user_index.json"), serde_json::to_vec(&index).unwrap());
    write(&root.join(".env"), "# config\nAPP_MODE=test\n");
    write(&root.join("requirements.txt"), "requests==2\n");
    write(&root.join("logs/app.log"), "active line\n");
    dir
}

/// Every file under `root` with its content, leaving out what every run may touch
/// (the sidecar's own log and the lock file).
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut map = BTreeMap::new();
    walk(root, root, &mut map);
    map
}

fn walk(root: &Path, dir: &Path, map: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries {
        let e = e.unwrap();
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name.trim_start_matches('.').starts_with("sidecar.log") || name == ".sidecar.lock" {
            continue;
        }
        let ft = e.file_type().unwrap();
        let rel = path.strip_prefix(root).unwrap().to_path_buf();
        if ft.is_symlink() {
            map.insert(rel, format!("-> {}", fs::read_link(&path).unwrap().display()).into_bytes());
        } else if ft.is_dir() {
            map.insert(rel, b"<dir>".to_vec());
            walk(root, &path, map);
        } else {
            map.insert(rel, fs::read(&path).unwrap());
        }
    }
}

/// Names of the files in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Asserts two snapshots are equal, naming only the paths that differ.
#[track_caller]
pub fn assert_same(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) {
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("removed {}", k.display())),
            Some(w) if w != v => diffs.push(format!("changed {}", k.display())),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diffs.push(format!("added {}", k.display()));
    }
    assert!(diffs.is_empty(), "files changed: {diffs:#?}");
}

/// The only `*.zip` in `data/backups` whose name starts with `prefix`.
pub fn backup_named(root: &Path, prefix: &str) -> PathBuf {
    let found: Vec<String> = names(&root.join("data/backups"))
        .into_iter()
        .filter(|n| n.starts_with(prefix) && n.ends_with(".zip"))
        .collect();
    assert_eq!(found.len(), 1, "backups starting {prefix}: {found:?}");
    root.join("data/backups").join(&found[0])
}

/// Builds a zip by hand: (name, content) entries, and links as (name, target).
pub fn raw_zip(path: &Path, files: &[(&str, &[u8])], links: &[(&str, &str)]) {
    use zip::write::SimpleFileOptions;
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for (name, bytes) in files {
        z.start_file(*name, SimpleFileOptions::default()).unwrap();
        z.write_all(bytes).unwrap();
    }
    for (name, target) in links {
        z.add_symlink(*name, *target, SimpleFileOptions::default()).unwrap();
    }
    z.finish().unwrap();
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest for hand-built zips whose files are `files`.
pub fn manifest_for(files: &[(&str, &[u8])], users: u64) -> Vec<u8> {
    let list: Vec<serde_json::Value> = files
        .iter()
        .map(|(n, b)| serde_json::json!({"path": n, "size": b.len(), "sha256": sha256_hex(b)}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "backup_name": "hand", "created_at": "2026-03-01T00:00:00+00:00",
        "includes": {"users": true, "config": false, "logs": false, "code": false},
        "system_info": {"total_users": users, "file_count": files.len(),
            "total_bytes": files.iter().map(|(_, b)| b.len()).sum::<usize>()},
        "tool_version": "test", "files": list,
    }))
    .unwrap()
}

/// Copies the tree at `from` to `to` (files and folders; links as links on unix).
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ft = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if ft.is_dir() {
            copy_tree(&e.path(), &dest);
        } else if ft.is_symlink() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A small deterministic generator (xorshift), so a failing run can be repeated.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A backup zip built by hand, with a manifest that lists exactly its `files` and `links`
/// (so verify fails only on what the test plants). Links are stored before the files.
pub fn crafted_backup(path: &Path, files: &[(&str, &[u8])], links: &[(&str, &str)]) {
    use zip::write::SimpleFileOptions;
    let mut list: Vec<serde_json::Value> = files
        .iter()
        .map(|(n, b)| serde_json::json!({"path": n, "size": b.len(), "sha256": sha256_hex(b)}))
        .collect();
    for (n, t) in links {
        list.push(serde_json::json!({"path": n, "size": t.len(),
            "sha256": sha256_hex(t.as_bytes()), "link": t}));
    }
    let names = files.iter().map(|(n, _)| *n).chain(links.iter().map(|(n, _)| *n));
    let users: std::collections::BTreeSet<&str> = names
        .clone()
        .filter_map(|n| n.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    let total: usize = files.iter().map(|(_, b)| b.len()).sum::<usize>()
        + links.iter().map(|(_, t)| t.len()).sum::<usize>();
    let manifest = serde_json::json!({
        "backup_name": "crafted", "created_at": "2026-03-01T00:00:00+00:00",
        "includes": {"users": !users.is_empty(),
            "config": names.clone().any(|n| n.starts_with("config/")),
            "logs": false, "code": false},
        "system_info": {"total_users": users.len(), "file_count": list.len(),
            "total_bytes": total},
        "tool_version": "test", "files": list,
    });
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(fs::File::create(path).unwrap());
    for (n, t) in links {
        z.add_symlink(*n, *t, SimpleFileOptions::default()).unwrap();
    }
    for (n, b) in files {
        z.start_file(*n, SimpleFileOptions::default()).unwrap();
        z.write_all(b).unwrap();
    }
    z.start_file("manifest.json", SimpleFileOptions::default()).unwrap();
    z.write_all(&serde_json::to_vec(&manifest).unwrap()).unwrap();
    z.finish().unwrap();
}

/// The list in a command's JSON object (`backups`, `steps`, `logs`, `jobs`, `snapshots`,
/// `pushed` or `items`: every `--json` is one object, its list under one of these).
#[track_caller]
pub fn listed(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    ["backups", "steps", "logs", "jobs", "snapshots", "pushed", "items"]
        .iter()
        .find_map(|k| v.get(k).and_then(|l| l.as_array()))
        .unwrap_or_else(|| panic!("no list in {v}"))
}

/// The `what` of every `setting` reason in `status --json`'s object `v`.
pub fn setting_reasons(v: &serde_json::Value) -> Vec<String> {
    v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "setting")
        .map(|r| r["what"].as_str().unwrap().to_string())
        .collect()
}

/// The files (relative, with `/`) that differ between two [`snapshot`]s, leaving out the
/// sidecar's own: its log, the log's hidden files and the run lock.
pub fn changed_besides_own(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<String> {
    let mut changed: Vec<String> = after
        .keys()
        .chain(before.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| k.to_string_lossy().replace('\\', "/"))
        .filter(|k| !k.starts_with("logs/sidecar.log") && !k.starts_with("logs/.sidecar.log"))
        .filter(|k| k != "data/.sidecar.lock")
        .collect();
    changed.sort();
    changed.dedup();
    changed
}
