//! Issue 22: JSON is a contract. Every command's `--json` is one object, checked here
//! against its schema file in `sidecar/schemas/` (a run that failed before it had a
//! result: `error.schema.json`), and every schema file is checked by a command.

use crate::common;

use std::{collections::BTreeSet, fs, path::Path};

use common::*;
use serde_json::Value;

/// The checker for the part of JSON Schema the files use: `type` (one or a list),
/// `const`, `enum`, `required`, `properties`, `items`.
fn check(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let type_ok = |t: &str| match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    };
    match &schema["type"] {
        Value::String(t) if !type_ok(t) => errors.push(format!("{at}: not {t}: {v}")),
        Value::Array(ts) if !ts.iter().any(|t| t.as_str().is_some_and(type_ok)) => {
            errors.push(format!("{at}: none of {ts:?}: {v}"))
        }
        _ => {}
    }
    if let Some(c) = schema.get("const") {
        if c != v {
            errors.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(Value::Array(options)) = schema.get("enum") {
        if !options.contains(v) {
            errors.push(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let (Some(obj), Some(Value::Array(req))) = (v.as_object(), schema.get("required")) {
        for r in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(r) {
                errors.push(format!("{at}: no {r:?}"));
            }
        }
    }
    if let (Some(obj), Some(Value::Object(props))) = (v.as_object(), schema.get("properties")) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                check(s, x, &format!("{at}.{k}"), errors);
            }
        }
    }
    if let (Some(arr), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in arr.iter().enumerate() {
            check(items, x, &format!("{at}[{i}]"), errors);
        }
    }
}

fn schemas() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Runs `args` with `--json` and checks its output against `schema` (a failed run's
/// against `error`); returns the object.
#[track_caller]
fn checked(root: &Path, schema: &str, args: &[&str], used: &mut BTreeSet<String>) -> Value {
    checked_env(root, schema, args, &[], used)
}

#[track_caller]
fn checked_env(
    root: &Path,
    schema: &str,
    args: &[&str],
    env: &[(&str, &str)],
    used: &mut BTreeSet<String>,
) -> Value {
    let mut cmd = bin();
    cmd.arg("--root").arg(root).arg("--json").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.launch_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{args:?}: not one JSON object ({e}):\n{}\n{}", stdout(&out), stderr(&out))
    });
    let name = if v.get("error").is_some() { "error" } else { schema };
    used.insert(name.to_string());
    let text = fs::read_to_string(schemas().join(format!("{name}.schema.json"))).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    let mut errors = Vec::new();
    check(&schema, &v, "$", &mut errors);
    assert!(errors.is_empty(), "{args:?} against {name}: {errors:#?}\n{v:#}");
    assert_eq!(v["ok"], code(&out) == 0, "{args:?}: ok is the exit code's");
    v
}

#[test]
fn every_commands_json_matches_its_schema() {
    let root = make_root();
    let r = root.path();
    let t = tempfile::tempdir().unwrap();
    let mut used = BTreeSet::new();
    let u = &mut used;
    let key = t.path().join("key.txt");
    let dry = ["remote", "keygen", key.to_str().unwrap(), "--dry-run"];
    checked(r, "remote-keygen", &dry, u);
    let keygen = checked(r, "remote-keygen", &["remote", "keygen", key.to_str().unwrap()], u);
    let store = t.path().join("store");
    fs::create_dir_all(&store).unwrap();
    let env = fs::read_to_string(r.join(".env")).unwrap();
    write(
        &r.join(".env"),
        format!(
            "{env}MHM_REMOTE_URL=file://{}\nMHM_REMOTE_RECIPIENT={}\nMHM_REMOTE_IDENTITY_FILE={}\n",
            store.display(),
            keygen["public_key"].as_str().unwrap(),
            key.display()
        ),
    );
    checked(r, "maintain", &["maintain"], u);
    checked(r, "maintain", &["maintain", "--dry-run"], u);
    checked(r, "status", &["status"], u);
    let args = ["backup", "create", "--name", "b0", "--dry-run"];
    checked(r, "backup-create-dry-run", &args, u);
    checked(r, "backup-create", &["backup", "create", "--name", "b1"], u);
    checked(r, "backup-weekly", &["backup", "weekly"], u);
    checked(r, "backup-list", &["backup", "list"], u);
    checked(r, "backup-verify", &["backup", "verify", "b1"], u);
    checked(r, "backup-prune", &["backup", "prune", "--dry-run"], u);
    checked(r, "backup-prune", &["backup", "prune"], u);
    checked(r, "backup-restore", &["backup", "restore", "b1", "--user", "u1"], u);
    checked(r, "backup-restore", &["backup", "restore", "b1", "--dry-run"], u);
    checked(r, "logs-list", &["logs", "list"], u);
    checked(r, "logs-archive", &["logs", "archive", "--dry-run"], u);
    checked(r, "logs-archive", &["logs", "archive"], u);
    fs::create_dir_all(r.join("logs/backups")).unwrap();
    write(&r.join("logs/backups/app.log.2026-01-02"), "old line\n");
    checked(r, "logs-restore", &["logs", "restore", "app.log.2026-01-02"], u);
    checked(r, "system-validate", &["system", "validate"], u);
    checked(r, "messages-archive", &["messages", "archive", "--dry-run"], u);
    checked(r, "messages-archive", &["messages", "archive"], u);
    let f = t.path().join("f.txt");
    write(&f, "v1\n");
    checked(r, "tools-rotate", &["tools", "rotate", f.to_str().unwrap(), "--dry-run"], u);
    checked(r, "tools-rotate", &["tools", "rotate", f.to_str().unwrap()], u);
    let data = t.path().join("r.json");
    write(&data, "{\"a\": 1}");
    let args = ["tools", "save-result", "--domain", "d", "--data", data.to_str().unwrap(), "tool1"];
    checked(r, "tools-save-result", &args, u);
    let snaps = t.path().join("snaps");
    let s = snaps.to_str().unwrap();
    let args = ["snapshot", "create", "--archive-dir", s, "--dry-run"];
    checked(r, "snapshot-create-dry-run", &args, u);
    let made = checked(r, "snapshot-create", &["snapshot", "create", "--archive-dir", s], u);
    checked(r, "snapshot-list", &["snapshot", "list", "--archive-dir", s], u);
    checked(r, "snapshot-verify", &["snapshot", "verify", made["created"].as_str().unwrap()], u);
    checked(r, "remote-push", &["remote", "push", "--dry-run"], u);
    checked(r, "remote-push", &["remote", "push"], u);
    checked(r, "remote-list", &["remote", "list"], u);
    checked(r, "remote-verify", &["remote", "verify", "b1"], u);
    checked(r, "remote-prune", &["remote", "prune"], u);
    fs::remove_file(r.join("data/backups/b1.zip")).unwrap();
    checked(r, "remote-pull", &["remote", "pull", "b1"], u);
    let fresh = t.path().join("fresh");
    let url = format!("file://{}", store.display());
    let args = ["remote", "restore", "b1", "--url", &url, "--identity", key.to_str().unwrap()];
    checked(&fresh, "remote-restore", &args, u);
    let sched = [("MHM_SCHEDULER", "cron")];
    checked_env(r, "schedule-install", &["schedule", "install", "--dry-run"], &sched, u);
    let cfg = t.path().join("cfg");
    let sys = [("MHM_SCHEDULER", "systemd"), ("XDG_CONFIG_HOME", cfg.to_str().unwrap())];
    checked_env(r, "schedule-show", &["schedule", "show"], &sys, u);
    checked_env(r, "schedule-remove", &["schedule", "remove", "--dry-run"], &sys, u);
    let demo = t.path().join("demo");
    checked(r, "demo-dry-run", &["demo", demo.to_str().unwrap(), "--dry-run"], u);
    assert!(!demo.exists(), "demo --dry-run built {}", demo.display());
    checked(r, "demo", &["demo", demo.to_str().unwrap()], u);
    // Failures are one object too.
    checked(r, "error", &["logs", "cat", "app"], u);
    checked(r, "error", &["backup", "restore", "nosuch"], u);
    // Usage mistakes clap finds, before any command runs.
    checked(r, "error", &["stauts"], u);
    checked(r, "error", &["backup", "verify"], u);
    // Every schema file is checked by a command above.
    let files: BTreeSet<String> = fs::read_dir(schemas())
        .unwrap()
        .map(|e| {
            e.unwrap().file_name().to_string_lossy().trim_end_matches(".schema.json").to_string()
        })
        .collect();
    assert_eq!(files, used);
}
