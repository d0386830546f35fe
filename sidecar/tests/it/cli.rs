//! The CLI skeleton: global flags, settings layering, exit codes, the lock, the log.

use crate::common;

use std::{fs, io::Write};

use common::*;

#[test]
fn help_and_version_exit_0() {
    let out = bin().arg("--help").launch_output().unwrap();
    assert_code(&out, 0);
    assert!(stdout(&out).contains("backup"));
    assert_code(&bin().arg("--version").launch_output().unwrap(), 0);
}

#[test]
fn unknown_command_exits_2() {
    let root = make_root();
    assert_code(&run(root.path(), &["frobnicate"]), 2);
}

#[test]
fn global_flags_before_or_after_and_root_from_env() {
    let root = make_root();
    let after = bin()
        .args(["system", "validate", "--json", "--root"])
        .arg(root.path())
        .launch_output()
        .unwrap();
    assert_code(&after, 0);
    let v: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(v["users_listed"], 3);
    let from_env = bin()
        .env("MHM_ROOT", root.path())
        .args(["--json", "system", "validate"])
        .launch_output()
        .unwrap();
    assert_code(&from_env, 0);
    // From the current directory.
    let from_cwd =
        bin().current_dir(root.path()).args(["system", "validate"]).launch_output().unwrap();
    assert_code(&from_cwd, 0);
}

#[test]
fn bad_now_exits_2_naming_it() {
    let root = make_root();
    let out = run(root.path(), &["--now", "yesterday", "system", "validate"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--now"), "{}", stderr(&out));
    let out = bin()
        .env("MHM_NOW", "2026-13-01T00:00:00Z")
        .arg("--root")
        .arg(root.path())
        .args(["system", "validate"])
        .launch_output()
        .unwrap();
    assert_code(&out, 2);
}

#[test]
fn missing_root_exits_2() {
    let out =
        bin().args(["--root", "/nonexistent/mhm", "system", "validate"]).launch_output().unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("/nonexistent/mhm") && err.contains("taken from --root"), "{err}");
    // Where it came from is named for MHM_ROOT too.
    let out = bin().env("MHM_ROOT", "/nonexistent/mhm").arg("status").launch_output().unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains("taken from MHM_ROOT"), "{}", stderr(&out));
}

// regression: `maintain` in an empty folder exited 0 and made an empty weekly backup there
#[test]
fn a_folder_that_is_not_an_mhm_root_is_refused_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // From the current directory (a cron line without MHM_ROOT).
    let out = bin().current_dir(d).arg("maintain").launch_output().unwrap();
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("not an MHM root") && err.contains("current directory"), "{err}");
    // From MHM_ROOT, and from --root.
    let out = bin().env("MHM_ROOT", d).args(["backup", "weekly"]).launch_output().unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains("MHM_ROOT"), "{}", stderr(&out));
    let out = run(d, &["status"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--root"), "{}", stderr(&out));
    assert_eq!(fs::read_dir(d).unwrap().count(), 0, "nothing was created");
    // Any one of data/, logs/, .env makes it a root (an unhealthy one: nothing ran yet).
    write(&d.join(".env"), "");
    assert_code(&run(d, &["status"]), 1);
}

// regression: a .env saved by Notepad (UTF-8 BOM, CRLF) stopped every command with exit 2
#[test]
fn a_dotenv_with_a_byte_order_mark_and_crlf_is_read() {
    let root = make_root();
    write(&root.path().join(".env"), "\u{feff}LOG_BACKUP_COUNT=3\r\nAPP_MODE=x\r\n");
    assert_code(&run(root.path(), &["system", "validate"]), 0);
}

#[test]
fn bad_dotenv_line_exits_2_naming_the_file_and_line() {
    let root = make_root();
    write(&root.path().join(".env"), "A=1\nthis is not a setting\n");
    let out = run(root.path(), &["system", "validate"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(".env:2"), "{err}");
}

#[test]
fn bad_setting_exits_2_naming_setting_and_source() {
    let root = make_root();
    write(&root.path().join(".env"), "LOG_BACKUP_COUNT=seven\n");
    let out = run(root.path(), &["logs", "list"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("LOG_BACKUP_COUNT") && err.contains("seven") && err.contains(".env"),
        "{err}"
    );
    // The environment beats .env.
    let out = bin()
        .env("LOG_BACKUP_COUNT", "3")
        .arg("--root")
        .arg(root.path())
        .args(["logs", "list"])
        .launch_output()
        .unwrap();
    assert_code(&out, 0);
}

#[test]
fn bad_backup_setting_exits_2() {
    let root = make_root();
    let out = bin()
        .env("BACKUP_MAX_COUNT", "ten")
        .arg("--root")
        .arg(root.path())
        .args(["backup", "prune"])
        .launch_output()
        .unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains("BACKUP_MAX_COUNT"), "{}", stderr(&out));
    // A flag beats the bad environment value.
    let out = bin()
        .env("BACKUP_MAX_COUNT", "ten")
        .arg("--root")
        .arg(root.path())
        .args(["backup", "prune", "--max-count", "3"])
        .launch_output()
        .unwrap();
    assert_code(&out, 0);
}

#[test]
fn a_held_lock_exits_3_naming_the_pid() {
    let root = make_root();
    let lock_path = root.path().join("data/.sidecar.lock");
    let mut file =
        fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).unwrap();
    file.try_lock().unwrap();
    writeln!(file, "4242").unwrap();
    let before = snapshot(root.path());
    let out = run(root.path(), &["logs", "archive"]);
    assert_code(&out, 3);
    assert!(stderr(&out).contains("pid 4242"), "{}", stderr(&out));
    assert_same(&before, &snapshot(root.path()));
    // Read-only commands do not need the lock.
    assert_code(&run(root.path(), &["logs", "list"]), 0);
    drop(file);
    assert_code(&run(root.path(), &["logs", "archive"]), 0);
}

#[test]
fn actions_are_logged_to_sidecar_log() {
    let root = make_root();
    write(&root.path().join("logs/backups/app.log.2026-01-01"), "old\n");
    assert_code(&run(root.path(), &["--now", "2026-01-20T03:00:00Z", "logs", "archive"]), 0);
    let log = fs::read_to_string(root.path().join("logs/sidecar.log")).unwrap();
    assert!(log.contains("logs archive: gzip logs/backups/app.log.2026-01-01"), "{log}");
}

#[test]
fn broken_pipe_is_not_an_error() {
    let root = make_root();
    let big = "a log line that repeats\n".repeat(200_000);
    write(&root.path().join("logs/app.log"), &big);
    let mut child = bin()
        .arg("--root")
        .arg(root.path())
        .args(["logs", "cat", "app"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .launch()
        .unwrap();
    // Read a little, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = [0u8; 100];
    std::io::Read::read_exact(&mut stdout, &mut buf).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("error"), "{}", stderr(&out));
}

/// Issue 21 (9, 14): a bad `.env` line is named by its line and key, never its value (every
/// command reads `.env`, and cron keeps stderr); a size setting past its bound is an error
/// naming the bound, never an abort.
#[test]
fn dotenv_errors_hide_values_and_sizes_are_bounded() {
    let root = make_root();
    let r = root.path();
    // A key the sidecar does not read: named as a warning (python-dotenv skips the line),
    // the exit code is the command's own.
    write(&r.join(".env"), "APP_MODE=x\nDB_PASSWORD=\"hunter2secret\n");
    let out = run(r, &["system", "validate"]);
    let err = stderr(&out);
    assert_ne!(code(&out), 2, "{err}");
    assert!(err.contains("warning: .env:2") && err.contains("DB_PASSWORD"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A key it reads: a bad setting, exit 2, named the same way.
    write(&r.join(".env"), "APP_MODE=x\nLOG_BACKUP_DIR=\"hunter2secret\n");
    let out = run(r, &["system", "validate"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(".env:2") && err.contains("LOG_BACKUP_DIR"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // A secret pasted without its key (a bare word would be a bare KEY, as python-dotenv
    // reads it; this one is not a name).
    write(&r.join(".env"), "hunter2 secret\n");
    let err = stderr(&run(r, &["system", "validate"]));
    assert!(err.contains(".env:1") && !err.contains("hunter2"), "{err}");
    write(&r.join(".env"), "LOG_BUFFER_BYTES=100000000000000\n");
    let out = run(r, &["backup", "list"]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("LOG_BUFFER_BYTES") && stderr(&out).contains("67108864"),
        "{}",
        stderr(&out)
    );
    let out = run(r, &["status"]);
    assert_code(&out, 1); // unhealthy, named, no abort
    assert!(stdout(&out).contains("LOG_BUFFER_BYTES"), "{}", stdout(&out));
}

/// Issue 22: `status | head -1` and friends panicked ("failed printing to stdout: Broken
/// pipe", exit 101), and `--json` into a closed pipe exited 1. A closed pipe now ends the
/// output quietly and the command exits with the code it would have had.
#[cfg(unix)]
#[test]
fn a_closed_pipe_is_not_a_panic_and_keeps_the_exit_code() {
    let root = make_root();
    let r = root.path();
    let with_stdout_closed = |args: &[&str]| {
        // A pipe whose read end is closed before the command writes.
        let mut child = bin()
            .arg("--root")
            .arg(r)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .launch()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    // Every command, text and JSON, in the order that gives each something to do.
    let t = tempfile::tempdir().unwrap();
    let key = t.path().join("key.txt");
    let k = key.to_str().unwrap().to_string();
    let snaps = t.path().join("snaps");
    let sn = snaps.to_str().unwrap().to_string();
    let demo = t.path().join("demo");
    let dm = demo.to_str().unwrap().to_string();
    let cases: Vec<(Vec<&str>, i32)> = vec![
        (vec!["status"], 1), // unhealthy here: nothing ran yet
        (vec!["--json", "status"], 1),
        (vec!["system", "validate"], 0),
        (vec!["--json", "system", "validate"], 0),
        (vec!["logs", "list"], 0),
        (vec!["logs", "cat", "app"], 0),
        (vec!["maintain", "--dry-run"], 0),
        (vec!["maintain"], 0),
        (vec!["backup", "create", "--name", "p1"], 0),
        (vec!["--json", "backup", "create", "--name", "p2"], 0),
        (vec!["backup", "list"], 0),
        (vec!["--json", "backup", "list"], 0),
        (vec!["backup", "verify", "p1"], 0),
        (vec!["backup", "weekly"], 0),
        (vec!["backup", "prune", "--dry-run"], 0),
        (vec!["backup", "restore", "p1", "--dry-run"], 0),
        (vec!["logs", "archive", "--dry-run"], 0),
        (vec!["messages", "archive", "--dry-run"], 0),
        (vec!["snapshot", "create", "--archive-dir", &sn], 0),
        (vec!["snapshot", "list", "--archive-dir", &sn], 0),
        (vec!["remote", "keygen", &k], 0),
        (vec!["completions", "bash"], 0),
        (vec!["man"], 0),
        (vec!["--help"], 0),
        (vec!["demo", &dm], 0),
    ];
    for (args, want) in &cases {
        let args = &args[..];
        let want = *want;
        let (code, err) = with_stdout_closed(args);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(code, Some(want), "{args:?}: {err}");
    }
}

/// A closed pipe keeps the exit code the command would have had: `logs cat` of a log with a
/// truncated copy exits 1 whether its reader reads to the end or goes away before the
/// first byte (the copies left unread are still checked, into nothing).
#[cfg(unix)]
#[test]
fn a_closed_pipe_keeps_the_problems_logs_cat_finds() {
    let root = make_root();
    let r = root.path();
    let text: String = (0..100_000).map(|i| format!("line {i} of an old day\n")).collect();
    let whole = gz(text.as_bytes());
    write(&r.join("logs/archive/app.log.2026-01-05.gz"), &whole[..whole.len() / 2]);
    let cat = |close: bool| {
        let mut child = bin()
            .arg("--root")
            .arg(r)
            .args(["logs", "cat", "app"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .launch()
            .unwrap();
        if close {
            drop(child.stdout.take());
        }
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for close in [false, true] {
        let (code, err) = cat(close);
        assert_eq!(code, Some(1), "stdout closed: {close}: {err}");
        assert!(err.contains("app.log.2026-01-05.gz"), "stdout closed: {close}: {err}");
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    }
}

/// Issue 21 (second round): a wrapped token line in `.env` is a key python-dotenv reads;
/// it stops nothing and is never printed.
#[test]
fn a_wrapped_token_line_in_dotenv_stops_nothing_and_is_never_shown() {
    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "APP_MODE=test\nDISCORD_TOKEN=abc\nMTA5.hunter2/SecretTokenRest+==\n");
    for args in [&["maintain"][..], &["status"]] {
        let out = run(r, args);
        assert_code(&out, 0);
        assert!(!stdout(&out).contains("hunter2") && !stderr(&out).contains("hunter2"), "{args:?}");
    }
}

/// Issue 22: a typo gets the nearest command or flag, and exit 2.
#[test]
fn typos_are_answered_with_the_nearest_command_or_flag() {
    let root = make_root();
    let r = root.path();
    for (args, hint) in [
        (&["stauts"][..], "'status'"),
        (&["backup", "create", "--include-log"], "'--include-logs'"),
        (&["backup", "create", "--dry-rn"], "'--dry-run'"),
        (&["shedule", "show"], "'schedule'"),
    ] {
        let out = run(r, args);
        assert_code(&out, 2);
        assert!(
            stderr(&out).contains("similar") && stderr(&out).contains(hint),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

/// Issue 22: `snapshot create` and `snapshot verify` count the same files.
#[test]
fn snapshot_create_and_verify_count_alike() {
    let root = make_root();
    let r = root.path();
    let snaps = tempfile::tempdir().unwrap();
    let out = run(r, &["snapshot", "create", "--archive-dir", snaps.path().to_str().unwrap()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let made: usize = text.split(" (").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let zip = fs::read_dir(snaps.path()).unwrap().next().unwrap().unwrap().path();
    let out = run(r, &["snapshot", "verify", zip.to_str().unwrap()]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains(&format!("valid ({made} files and the manifest)")),
        "{text}\n{}",
        stdout(&out)
    );
}

/// The `(kind, what)` of each reason, and the warnings, of `status --json` on `root`.
fn status_json(root: &std::path::Path) -> (i32, Vec<(String, String)>, Vec<String>) {
    let out = run(root, &["--now", "2026-03-20T02:30:00Z", "--json", "status"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = |x: &serde_json::Value| x.as_str().unwrap().to_string();
    let reasons = v["reasons"].as_array().unwrap();
    let warnings = v["warnings"].as_array().unwrap();
    (
        code(&out),
        reasons.iter().map(|r| (text(&r["kind"]), text(&r["what"]))).collect(),
        warnings.iter().map(text).collect(),
    )
}

// regression: a line `SECRET_TOKEN="unterminated hunter2` beside other settings made every
// command print only `.env:9: SECRET_TOKEN: unclosed " quote in the value` and exit 2, and
// maintain ran no job; python-dotenv warns and skips such a line.
#[test]
fn a_bad_dotenv_line_is_named_with_every_bad_value_and_stops_only_its_key() {
    let root = make_root();
    let r = root.path();
    let lines = "APP_MODE=test\nA=1\nB=2\nC=3\nD=4\nE=5\nF=6\nG=7\n";
    // A key the sidecar does not read: a warning; the bad value beside it is named too.
    write(
        &r.join(".env"),
        format!("{lines}SECRET_TOKEN=\"unterminated hunter2\nBACKUP_MAX_COUNT=ten\n"),
    );
    let (c, reasons, warnings) = status_json(r);
    assert_eq!(c, 1);
    let settings: Vec<&String> =
        reasons.iter().filter(|(k, _)| k == "setting").map(|(_, w)| w).collect();
    assert!(settings.len() == 1 && settings[0].contains("BACKUP_MAX_COUNT"), "{settings:?}");
    assert!(
        warnings.iter().any(|w| w == ".env:9: SECRET_TOKEN: unclosed \" quote in the value"),
        "{warnings:?}"
    );
    let out = run(r, &["backup", "list"]);
    assert_code(&out, 0);
    let err = stderr(&out);
    assert!(err.contains(".env:9: SECRET_TOKEN") && err.contains("BACKUP_MAX_COUNT"), "{err}");
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "maintain"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains(".env:9: SECRET_TOKEN"), "{}", stderr(&out));
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ran: Vec<&str> = listed(&jobs)
        .iter()
        .filter(|j| j["ran"] == true)
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["logs_archive", "messages_archive"], "{jobs}");
    // Without the bad value, the line alone changes no exit code.
    write(&r.join(".env"), format!("{lines}SECRET_TOKEN=\"unterminated hunter2\n"));
    let out = run(r, &["backup", "list"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains(".env:9: SECRET_TOKEN"), "{}", stderr(&out));

    // A key the sidecar reads: a bad value of that key, named with the others; the jobs
    // that depend on it do not run, the others do; exit 2.
    let root = make_root();
    let r = root.path();
    write(
        &r.join(".env"),
        format!("{lines}LOG_BACKUP_COUNT='7\nBACKUP_FORMAT=tar\nLOG_MAX_BYTES=1024\n"),
    );
    let (c, reasons, _) = status_json(r);
    assert_eq!(c, 1);
    let settings: Vec<&String> =
        reasons.iter().filter(|(k, _)| k == "setting").map(|(_, w)| w).collect();
    assert_eq!(settings.len(), 2, "{settings:?}");
    assert!(settings[0].starts_with(".env:9: LOG_BACKUP_COUNT: unclosed"), "{settings:?}");
    assert!(settings[1].contains("BACKUP_FORMAT"), "{settings:?}");
    let out = run(r, &["logs", "list"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(".env:9: LOG_BACKUP_COUNT") && err.contains("BACKUP_FORMAT"), "{err}");
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "maintain"]);
    assert_code(&out, 2);
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = |n: &str| listed(&jobs).iter().find(|j| j["name"] == n).unwrap().clone();
    assert_eq!(job("logs_archive")["detail"], "not run: bad setting(s) LOG_BACKUP_COUNT");
    assert_eq!(job("weekly_backup")["ran"], false);
    assert_eq!(job("messages_archive")["ran"], true, "{jobs}");
    // No message shows a value.
    for args in [&["status"][..], &["maintain"], &["backup", "list"]] {
        let out = run(r, args);
        assert!(!stderr(&out).contains("'7") && !stdout(&out).contains("'7"), "{args:?}");
    }
}
