//! `maintain` and `status` on the real binary.

use crate::common;

use std::fs;

use common::*;

#[test]
fn maintain_runs_what_is_due_and_a_second_run_changes_nothing() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/backups/app.log.2026-03-01"), "old\n");
    // First run ever at 02:30: both jobs are due.
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "maintain"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed(&v).iter().all(|j| j["ran"] == true), "{v}");
    assert!(r.join("data/backups/weekly_backup_20260320_023000.zip").is_file());
    assert!(r.join("logs/archive/app.log.2026-03-01.gz").is_file());
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(r.join("data/.sidecar_state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["logs_archive"]["ok"], true);
    assert_eq!(state["jobs"]["weekly_backup"]["last_run"], "2026-03-20T02:30:00Z");

    // Again, later the same night: nothing runs, no file changes (the state file included).
    let before = snapshot(r);
    let out = run(r, &["--now", "2026-03-20T05:00:00Z", "maintain"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("not due"), "{}", stdout(&out));
    assert_same(&before, &snapshot(r));
    // A table's times are local, to the second (New York is UTC-4 on that day).
    #[cfg(unix)]
    {
        let out = bin()
            .env("TZ", "America/New_York")
            .arg("--root")
            .arg(r)
            .args(["--now", "2026-03-20T05:00:00Z", "maintain", "--dry-run"])
            .launch_output()
            .unwrap();
        assert!(
            stdout(&out).contains("not due (last run 2026-03-19 22:30:00)"),
            "{}",
            stdout(&out)
        );
    }

    // Next day 01:30: the weekly check is due (it finds a fresh weekly backup and makes
    // none); the 02:00 archival is not due yet.
    let out = run(r, &["--now", "2026-03-21T01:30:00Z", "--json", "maintain"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = |name: &str| listed(&v).iter().find(|j| j["name"] == name).unwrap().clone();
    assert_eq!(job("weekly_backup")["ran"], true);
    assert_eq!(job("logs_archive")["ran"], false);
    assert_eq!(
        names(&r.join("data/backups")).iter().filter(|n| n.starts_with("weekly_")).count(),
        1
    );
    // A week later both run and a new weekly backup appears.
    let out = run(r, &["--now", "2026-03-27T03:00:00Z", "maintain"]);
    assert_code(&out, 0);
    assert!(r.join("data/backups/weekly_backup_20260327_030000.zip").is_file());
}

#[test]
fn maintain_dry_run_and_a_malformed_state_file() {
    let root = make_root();
    let r = root.path();
    let before = snapshot(r);
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--dry-run", "maintain"]);
    assert_code(&out, 0);
    // Each due job says what it would do, as its own --dry-run does.
    let text = stdout(&out);
    assert!(text.contains("would create data/backups/weekly_backup_20260320_023000.zip"), "{text}");
    assert!(text.contains("next due"), "{text}");
    assert_same(&before, &snapshot(r));
    // A corrupt state file: reported (exit 1), kept aside byte for byte, and every job
    // runs as if it never had.
    write(&r.join("data/.sidecar_state.json"), "{broken");
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--dry-run", "maintain"]);
    assert_code(&out, 1);
    assert_eq!(
        fs::read(r.join("data/.sidecar_state.json")).unwrap(),
        b"{broken",
        "a dry run moves nothing"
    );
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains(".sidecar_state.json"), "{}", stderr(&out));
    assert_eq!(fs::read(r.join("data/.sidecar_state.json.corrupt")).unwrap(), b"{broken");
    assert!(r.join("data/backups/weekly_backup_20260320_023000.zip").is_file(), "the jobs ran");
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(r.join("data/.sidecar_state.json")).unwrap()).unwrap();
    assert_eq!(state["jobs"]["logs_archive"]["ok"], true);
    // The next run is clean again.
    let out = run(r, &["--now", "2026-03-20T03:30:00Z", "maintain"]);
    assert_code(&out, 0);
}

#[test]
fn status_reports_backups_logs_jobs_and_warnings() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/backups/app.log.2026-03-19"), "x\n");
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "status"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["healthy"], false);
    let kinds: Vec<&str> =
        v["reasons"].as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["overdue", "overdue"], "no weekly backup; log archival never ran: {v}");
    assert_eq!(v["backups"]["count"], 0);
    assert!(v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("no weekly backup")));
    let app = v["logs"].as_array().unwrap().iter().find(|l| l["name"] == "app.log").unwrap();
    assert_eq!(app["backups"], 1);
    assert_code(&run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]), 0);
    let out = run(r, &["--now", "2026-03-21T02:30:00Z", "--json", "status"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["healthy"].as_bool(), v["reasons"].as_array().map(Vec::len)),
        (Some(true), Some(0)),
        "{v}"
    );
    assert_eq!(v["backups"]["count"], 1);
    assert_eq!(v["backups"]["newest_weekly"]["name"], "weekly_backup_20260320_023000");
    assert_eq!(v["backups"]["newest_weekly"]["age_days"], 1);
    assert_eq!(v["jobs"]["logs_archive"]["ok"], true);
    assert!(
        !v["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains("weekly")),
        "{v}"
    );
    // Nine days on, the weekly warning is back, and the root is unhealthy (overdue).
    let out = run(r, &["--now", "2026-03-29T03:00:00Z", "status"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("no weekly backup in 8 days"), "{}", stdout(&out));
    assert!(stdout(&out).contains("UNHEALTHY"), "{}", stdout(&out));
}

/// Issue 20: with `BACKUP_MAX_COUNT=ten` in `.env`, `status` said healthy while every
/// `maintain` exited 2, and only the first bad value was ever named.
#[test]
fn bad_settings_are_all_named_status_is_unhealthy_and_maintain_runs_the_rest() {
    let root = make_root();
    let r = root.path();
    write(&r.join("logs/backups/app.log.2026-03-01"), "x\n");
    assert_code(&run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]), 0);
    assert_code(&run(r, &["--now", "2026-03-20T02:31:00Z", "status"]), 0);
    let env = fs::read_to_string(r.join(".env")).unwrap();
    write(&r.join(".env"), format!("{env}BACKUP_MAX_COUNT=ten\nLOG_MAX_BYTES=5MB\n"));
    // status: unhealthy, both named.
    let out = run(r, &["--now", "2026-03-21T02:31:00Z", "--json", "status"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = setting_reasons(&v);
    assert_eq!(settings.len(), 2, "{v}");
    assert!(settings.iter().any(|s| s.contains("BACKUP_MAX_COUNT")), "{settings:?}");
    assert!(settings.iter().any(|s| s.contains("LOG_MAX_BYTES")), "{settings:?}");
    // maintain: the jobs that use them do not run; the messages job does; exit 2, both named.
    let out = run(r, &["--now", "2026-04-25T02:30:00Z", "--json", "maintain"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("BACKUP_MAX_COUNT") && err.contains("LOG_MAX_BYTES"), "{err}");
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job = |n: &str| listed(&jobs).iter().find(|j| j["name"] == n).unwrap().clone();
    assert_eq!(
        (job("weekly_backup")["ran"].as_bool(), job("weekly_backup")["ok"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(job("logs_archive")["ran"], false);
    assert_eq!(
        (job("messages_archive")["ran"].as_bool(), job("messages_archive")["ok"].as_bool()),
        (Some(true), Some(true)),
        "{jobs}"
    );
    // Fixed: the next run runs what was held back, and all is well.
    write(&r.join(".env"), env);
    let out = run(r, &["--now", "2026-04-25T03:30:00Z", "--json", "maintain"]);
    assert_code(&out, 0);
    let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        listed(&jobs).iter().filter(|j| j["name"] != "messages_archive").all(|j| j["ran"] == true),
        "{jobs}"
    );
    assert_code(&run(r, &["--now", "2026-04-25T03:31:00Z", "status"]), 0);
}

// regression: with `BACKUP_RETENTION_DAYS=-3` the dry run said "would create ... then prune
// ... (older than 30 days)", a default in the bad value's place, while the real run said
// `NOT RUN: bad setting(s) BACKUP_RETENTION_DAYS`.
#[test]
fn a_dry_run_says_what_the_real_run_does_with_a_bad_setting() {
    let root = make_root();
    let r = root.path();
    let env = fs::read_to_string(r.join(".env")).unwrap();
    write(&r.join(".env"), format!("{env}BACKUP_RETENTION_DAYS=-3\n"));
    let before = snapshot(r);
    let dry = run(r, &["--now", "2026-03-20T02:30:00Z", "--dry-run", "--json", "maintain"]);
    assert_code(&dry, 2);
    assert_same(&before, &snapshot(r));
    let real = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "maintain"]);
    assert_code(&real, 2);
    let job = |out: &std::process::Output, name: &str| {
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        listed(&v).iter().find(|j| j["name"] == name).unwrap().clone()
    };
    let (dry_job, real_job) = (job(&dry, "weekly_backup"), job(&real, "weekly_backup"));
    assert_eq!((dry_job["ran"].as_bool(), dry_job["ok"].as_bool()), (Some(false), Some(false)));
    assert_eq!(dry_job["detail"], real_job["detail"], "{dry_job} {real_job}");
    assert_eq!(dry_job["detail"], "not run: bad setting(s) BACKUP_RETENTION_DAYS");
    // The table says NOT RUN, as the real run's does.
    let table = run(r, &["--now", "2026-03-21T02:30:00Z", "--dry-run", "maintain"]);
    let line = stdout(&table).lines().find(|l| l.starts_with("weekly_backup")).unwrap().to_string();
    assert!(line.contains("NOT RUN") && line.contains("BACKUP_RETENTION_DAYS"), "{line}");
    assert!(!stdout(&table).contains("would create"), "{}", stdout(&table));
}

/// The `setting` reasons of `status --json` on `r`.
fn status_setting_reasons(r: &std::path::Path, now: &str) -> Vec<String> {
    let out = run(r, &["--now", now, "--json", "status"]);
    assert_code(&out, 1);
    setting_reasons(&serde_json::from_slice(&out.stdout).unwrap())
}

// regression: with `MHM_REMOTE_URL=ftp://x` or `MHM_REMOTE_RECIPIENT=notakey` in `.env`,
// `status` gave no `setting` reason, `backup list` said nothing, `maintain --dry-run` said
// "would push", and `maintain` reported `remote_push FAILED ... scheme "ftp"` (exit 1).
#[test]
fn bad_off_site_settings_are_named_as_settings_and_stop_only_the_push() {
    let store = tempfile::tempdir().unwrap();
    let good_url = format!("file://{}", store.path().display());
    let cases = [
        ("MHM_REMOTE_URL", "ftp://x".to_string(), String::new()),
        ("MHM_REMOTE_RECIPIENT", "notakey".to_string(), format!("MHM_REMOTE_URL={good_url}\n")),
        ("AWS_ENDPOINT_URL", "localhost:9000".to_string(), format!("MHM_REMOTE_URL={good_url}\n")),
    ];
    for (name, value, beside) in cases {
        let root = make_root();
        let r = root.path();
        let env = fs::read_to_string(r.join(".env")).unwrap();
        write(&r.join(".env"), format!("{env}{beside}{name}={value}\n"));
        let now = "2026-03-20T02:30:00Z";
        let settings = status_setting_reasons(r, now);
        assert!(settings.len() == 1 && settings[0].contains(name), "{name}: {settings:?}");
        // Another command names it too, and goes on (it does not use it).
        let out = run(r, &["--now", now, "backup", "list"]);
        assert_code(&out, 0);
        assert!(stderr(&out).contains(name), "{name}: {}", stderr(&out));
        // maintain: the push is NOT RUN naming it, in the dry run as in the real one; every
        // other job runs; exit 2 as for every bad setting.
        for args in [&["--dry-run", "--json", "maintain"][..], &["--json", "maintain"]] {
            let mut all = vec!["--now", now];
            all.extend_from_slice(args);
            let out = run(r, &all);
            assert_code(&out, 2);
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let jobs = listed(&v);
            let push = jobs.iter().find(|j| j["name"] == "remote_push").expect("remote_push");
            assert_eq!((push["ran"].as_bool(), push["ok"].as_bool()), (Some(false), Some(false)));
            assert_eq!(push["detail"], format!("not run: bad setting(s) {name}"), "{v}");
            if args[0] == "--json" {
                let others = jobs.iter().filter(|j| j["name"] != "remote_push");
                assert!(others.clone().all(|j| j["ran"] == true && j["ok"] == true), "{v}");
            }
        }
        assert!(store.path().read_dir().unwrap().next().is_none(), "nothing pushed");
    }
}

/// Without `MHM_REMOTE_URL` there are no off-site copies: a placeholder recipient left in
/// `.env` (or an `AWS_ENDPOINT_URL` another tool set) is not a bad setting. A `.env` line
/// whose key cannot be read may hold any setting: `maintain` runs no job on defaults in
/// its place (prune above all).
#[test]
fn unused_off_site_settings_stop_nothing_and_a_keyless_bad_line_runs_no_job() {
    let root = make_root();
    let r = root.path();
    write(
        &r.join(".env"),
        "APP_MODE=test\nMHM_REMOTE_RECIPIENT=changeme\nAWS_ENDPOINT_URL=localhost:9000\n",
    );
    let out = run(r, &["backup", "list"]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("MHM_REMOTE_RECIPIENT"), "{}", stderr(&out));
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "maintain"]);
    assert_code(&out, 0);

    let root = make_root();
    let r = root.path();
    write(&r.join(".env"), "APP_MODE=test\nset BACKUP_MAX_COUNT=50\n");
    let before = snapshot(r);
    let out = run(r, &["--now", "2026-03-20T02:30:00Z", "--json", "maintain"]);
    assert_code(&out, 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(listed(&v).iter().all(|j| j["ran"] == false), "{v}");
    assert!(!r.join("data/backups").exists() || names(&r.join("data/backups")).is_empty());
    // The state file records each job as not run for the bad line: it stays due.
    let changed = changed_besides_own(&before, &snapshot(r));
    assert_eq!(changed, ["data/.sidecar_state.json"], "{changed:?}");
}
