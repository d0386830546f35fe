//! `system validate`.

use crate::common;

use common::*;

#[test]
fn a_sound_root_is_valid() {
    let root = make_root();
    let out = run(root.path(), &["system", "validate"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("3 users listed"), "{}", stdout(&out));
}

#[test]
fn every_problem_is_listed_with_its_file() {
    let root = make_root();
    let r = root.path();
    write(&r.join("data/users/u2/preferences.json"), "{not json");
    std::fs::remove_dir_all(r.join("data/users/u3")).unwrap();
    let before = snapshot(r);
    let out = run(r, &["--json", "system", "validate"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // Problems are objects {path, kind, what} (issue 22); their line is "path: what".
    let list = v["problems"].as_array().unwrap();
    assert_eq!(list[0]["kind"], "missing", "{v}");
    assert_eq!(list[1]["kind"], "invalid", "{v}");
    let problems: Vec<String> = list
        .iter()
        .map(|p| format!("{}: {}", p["path"].as_str().unwrap(), p["what"].as_str().unwrap()))
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    // Root-relative with `/` on every platform.
    assert_eq!(
        problems[0], "data/user_index.json: user u3 is listed but data/users/u3 is missing",
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("data/users/u2/preferences.json: not valid JSON"),
        "{problems:?}"
    );
    assert_same(&before, &snapshot(r));
}

#[test]
fn index_must_be_an_object() {
    let root = make_root();
    write(&root.path().join("data/user_index.json"), "[1, 2]");
    let out = run(root.path(), &["system", "validate"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("expected a JSON object"), "{}", stdout(&out));
    std::fs::remove_file(root.path().join("data/user_index.json")).unwrap();
    let out = run(root.path(), &["system", "validate"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("user_index.json: missing"), "{}", stdout(&out));
}
