//! `tools rotate | save-result` on the real binary: names, same-second collisions,
//! per-file version counts, files of other stems untouched, bad input.

use crate::common;

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Output, Stdio},
};

use common::*;
use serde_json::{json, Value};

const NOW: &str = "2026-03-20T10:30:00Z";

fn new_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    // The lock lives in data/ and the sidecar's own log in logs/: made up front so that
    // "nothing changed" compares only what a command could wrongly touch.
    fs::create_dir(dir.path().join("logs")).unwrap();
    fs::create_dir(dir.path().join("data")).unwrap();
    dir
}

fn rotate(root: &Path, now: &str, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--now", now, "tools", "rotate", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(root, &args)
}

/// `save-result` with `stdin` piped in.
fn save(root: &Path, now: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = bin()
        .arg("--root")
        .arg(root)
        .args(["--now", now, "tools", "save-result"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .launch()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn rotate_moves_the_file_to_a_numbered_version() {
    let root = new_root();
    let r = root.path();
    let file = r.join("reports/report.json");
    write(&file, "v1");
    let out = rotate(r, NOW, &file, &[]);
    assert_code(&out, 0);
    assert!(!file.exists());
    assert_eq!(names(&r.join("reports/archive")), ["report_2026-03-20_103000_0001.json"]);
    assert_eq!(
        fs::read(r.join("reports/archive/report_2026-03-20_103000_0001.json")).unwrap(),
        b"v1"
    );
    assert!(
        stdout(&out).contains("reports/archive/report_2026-03-20_103000_0001.json"),
        "{}",
        stdout(&out)
    );

    // --archive-dir, and a file without an extension.
    let bare = r.join("reports/NOTES");
    write(&bare, "n");
    let elsewhere = r.join("elsewhere");
    let out = rotate(r, NOW, &bare, &["--archive-dir", elsewhere.to_str().unwrap(), "--json"]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rotated"]["version"], "elsewhere/NOTES_2026-03-20_103000_0001");
    assert_eq!(names(&elsewhere), ["NOTES_2026-03-20_103000_0001"]);
}

#[test]
fn many_rotations_in_one_second_never_overwrite() {
    let root = new_root();
    let r = root.path();
    let file = r.join("out/data.csv");
    for i in 1..=12 {
        write(&file, format!("version {i}"));
        assert_code(&rotate(r, NOW, &file, &["--keep", "20"]), 0);
    }
    let got = names(&r.join("out/archive"));
    assert_eq!(got.len(), 12);
    for i in 1..=12 {
        let name = format!("data_2026-03-20_103000_{i:04}.csv");
        assert_eq!(
            fs::read_to_string(r.join("out/archive").join(&name)).unwrap(),
            format!("version {i}"),
            "{name}"
        );
    }
}

#[test]
fn retention_counts_only_the_files_own_versions() {
    let root = new_root();
    let r = root.path();
    let archive = r.join("out/archive");
    // Not versions of report.json: other stems that start the same, another extension,
    // a malformed number, and a plain file.
    let strangers = [
        "report_v2_2026-01-01_000000_0001.json",
        "report_extra_2026-01-01_000000_0001.json",
        "report_2026-01-01_000000_0001.txt",
        "report_2026-01-01_000000_01.json",
        "report_old.json",
        "reports_2026-01-01_000000_0001.json",
    ];
    for s in strangers {
        write(&archive.join(s), "stranger");
    }
    let file = r.join("out/report.json");
    for (i, now) in [
        "2026-03-20T10:30:00Z",
        "2026-03-20T10:30:01Z",
        "2026-03-21T00:00:00Z",
        "2026-03-22T00:00:00Z",
        "2026-03-22T00:00:00Z",
    ]
    .iter()
    .enumerate()
    {
        write(&file, format!("v{i}"));
        let out = rotate(r, now, &file, &["--keep", "3"]);
        assert_code(&out, 0);
    }
    let mut want: Vec<String> = strangers.iter().map(|s| s.to_string()).collect();
    want.extend([
        "report_2026-03-21_000000_0001.json".to_string(),
        "report_2026-03-22_000000_0001.json".to_string(),
        "report_2026-03-22_000000_0002.json".to_string(),
    ]);
    want.sort();
    assert_eq!(names(&archive), want);
    for s in strangers {
        assert_eq!(fs::read(archive.join(s)).unwrap(), b"stranger", "{s}");
    }
    assert_eq!(fs::read(archive.join("report_2026-03-22_000000_0002.json")).unwrap(), b"v4");

    // A dry run says what would go and changes nothing.
    write(&file, "v5");
    let before = snapshot(r);
    let out = run(
        r,
        &[
            "--now",
            "2026-03-23T00:00:00Z",
            "--dry-run",
            "tools",
            "rotate",
            file.to_str().unwrap(),
            "--keep",
            "2",
        ],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("would store")
            && text.contains("would delete out/archive/report_2026-03-21_000000_0001.json"),
        "{text}"
    );
    assert!(text.contains("would delete out/archive/report_2026-03-22_000000_0001.json"), "{text}");
    assert!(!text.contains("report_2026-03-22_000000_0002.json (beyond"), "{text}");
    assert_same(&before, &snapshot(r));
}

#[test]
fn rotate_bad_input() {
    let root = new_root();
    let r = root.path();
    write(&r.join("out/a.json"), "a");
    let before = snapshot(r);
    let missing = r.join("out/missing.json");
    let out = rotate(r, NOW, &missing, &[]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));
    let out = rotate(r, NOW, &r.join("out"), &[]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("not a regular file"), "{}", stderr(&out));
    let out = rotate(r, NOW, &r.join("out/a.json"), &["--keep", "0"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--keep"), "{}", stderr(&out));
    assert_code(&rotate(r, NOW, &r.join("out/a.json"), &["--keep", "many"]), 2);
    assert_same(&before, &snapshot(r));
}

#[test]
fn save_result_writes_the_document_and_versions_the_previous_one() {
    let root = new_root();
    let r = root.path();
    let current = r.join("development_tools/docs/jsons/lint_results.json");
    let data_file = r.join("input.json");
    write(&data_file, r#"{"issues": 3, "files": ["a.py"]}"#);
    let out =
        save(r, NOW, &["lint", "--domain", "docs", "--data", data_file.to_str().unwrap()], b"");
    assert_code(&out, 0);
    let doc: Value = serde_json::from_slice(&fs::read(&current).unwrap()).unwrap();
    assert_eq!(doc["tool_name"], "lint");
    assert_eq!(doc["domain"], "docs");
    assert_eq!(doc["data"], json!({"issues": 3, "files": ["a.py"]}));
    assert_eq!(doc["last_generated"], "2026-03-20 10:30:00");
    assert_eq!(doc["timestamp"], "2026-03-20T10:30:00+00:00");
    assert!(doc["generated_by"].as_str().unwrap().starts_with("mhm-sidecar "));
    assert_eq!(names(&r.join("development_tools/docs/jsons")), ["lint_results.json"]);

    // From stdin, three more times in one second, keeping 2 old versions.
    let mut previous = fs::read(&current).unwrap();
    let mut kept = Vec::new();
    for i in 0..3 {
        let out = save(
            r,
            NOW,
            &["lint", "--domain", "docs", "--data", "-", "--keep", "2"],
            format!("{{\"run\": {i}}}").as_bytes(),
        );
        assert_code(&out, 0);
        kept.push(previous);
        previous = fs::read(&current).unwrap();
        let doc: Value = serde_json::from_slice(&previous).unwrap();
        assert_eq!(doc["data"], json!({"run": i}));
    }
    let archive = r.join("development_tools/docs/jsons/archive");
    assert_eq!(
        names(&archive),
        ["lint_results_2026-03-20_103000_0002.json", "lint_results_2026-03-20_103000_0003.json"]
    );
    assert_eq!(
        fs::read(archive.join("lint_results_2026-03-20_103000_0002.json")).unwrap(),
        kept[1]
    );
    assert_eq!(
        fs::read(archive.join("lint_results_2026-03-20_103000_0003.json")).unwrap(),
        kept[2]
    );
    assert_eq!(names(&r.join("development_tools/docs/jsons")), ["archive", "lint_results.json"]);
}

#[test]
fn save_result_bad_input_changes_nothing() {
    let root = new_root();
    let r = root.path();
    assert_code(&save(r, NOW, &["lint", "--domain", "docs"], b"[1]"), 0);
    let bad = r.join("bad.json");
    write(&bad, "{\"unclosed\": ");
    let before = snapshot(r);
    let out = save(r, NOW, &["lint", "--domain", "docs", "--data", bad.to_str().unwrap()], b"");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("bad.json: not valid JSON"), "{}", stderr(&out));
    let out = save(r, NOW, &["lint", "--domain", "docs", "--data", "-"], b"not json");
    assert_code(&out, 1);
    assert!(stderr(&out).contains("standard input: not valid JSON"), "{}", stderr(&out));
    let out = save(
        r,
        NOW,
        &["lint", "--domain", "docs", "--data", r.join("nope.json").to_str().unwrap()],
        b"",
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nope.json"), "{}", stderr(&out));
    for (tool, domain) in
        [("lint", "../escape"), ("../lint", "docs"), ("", "docs"), ("lint", ".hidden")]
    {
        let out = save(r, NOW, &[tool, "--domain", domain], b"{}");
        assert_code(&out, 2);
    }
    let out = save(r, NOW, &["--dry-run", "lint", "--domain", "docs"], b"{}");
    assert_code(&out, 0);
    assert!(stdout(&out).contains("would store"), "{}", stdout(&out));
    assert_same(&before, &snapshot(r));
}
