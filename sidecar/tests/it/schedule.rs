//! `schedule install | show | remove` (issue 22): against stand-ins for `crontab` and
//! `systemctl` on PATH (the machine's own scheduler is never touched), and the units
//! checked by the real `systemd-analyze verify` where it exists.

use crate::common;

#[cfg(unix)]
use std::fs;
use std::{path::Path, process::Output};

use common::*;

/// A folder with stand-ins: `crontab` keeps its table in `crontab.txt`, `systemctl`
/// appends its arguments to `systemctl.log`.
#[cfg(unix)]
fn stand_ins(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let table = dir.join("crontab.txt");
    let crontab = format!(
        "#!/bin/sh\nif [ \"$1\" = -l ]; then\n  [ -f '{t}' ] || {{ echo 'no crontab for you' >&2; exit 1; }}\n  cat '{t}'\nelse\n  cat > '{t}'\nfi\n",
        t = table.display()
    );
    let systemctl =
        format!("#!/bin/sh\necho \"$@\" >> '{}'\n", dir.join("systemctl.log").display());
    for (name, text) in [("crontab", crontab), ("systemctl", systemctl)] {
        fs::write(bin.join(name), text).unwrap();
        fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn run_sched(root: &Path, tools: &Path, kind: &str, args: &[&str]) -> Output {
    let path = format!("{}:{}", tools.join("bin").display(), std::env::var("PATH").unwrap());
    bin()
        .arg("--root")
        .arg(root)
        .args(args)
        .env("PATH", path)
        .env("MHM_SCHEDULER", kind)
        .env("XDG_CONFIG_HOME", tools.join("config"))
        .launch_output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn cron_install_show_remove_keeps_the_other_lines() {
    let root = make_root();
    let r = root.path();
    let tools = tempfile::tempdir().unwrap();
    let t = tools.path();
    stand_ins(t);
    // No crontab yet: show says so (exit 1) and names the command to run.
    let out = run_sched(r, t, "cron", &["schedule", "show"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("schedule install"), "{}", stderr(&out));
    fs::write(t.join("crontab.txt"), "MAILTO=me\n15 3 * * * backup-photos\n").unwrap();
    // Dry run: printed, nothing written.
    let out = run_sched(r, t, "cron", &["schedule", "install", "--dry-run"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("0 * * * * "), "{}", stdout(&out));
    assert_eq!(
        fs::read_to_string(t.join("crontab.txt")).unwrap(),
        "MAILTO=me\n15 3 * * * backup-photos\n"
    );
    // Installed twice: one line, the others kept.
    for _ in 0..2 {
        assert_code(&run_sched(r, t, "cron", &["schedule", "install"]), 0);
    }
    let table = fs::read_to_string(t.join("crontab.txt")).unwrap();
    let ours: Vec<&str> = table.lines().filter(|l| l.contains("maintain")).collect();
    assert_eq!(ours.len(), 1, "{table}");
    assert!(table.starts_with("MAILTO=me\n15 3 * * * backup-photos\n"), "{table}");
    let root_s = r.canonicalize().unwrap().display().to_string();
    assert!(ours[0].starts_with("0 * * * * ") && ours[0].contains(&root_s), "{table}");
    assert!(ours[0].contains(">/dev/null"), "no output to an unrotated file: {table}");
    // The line runs: through sh, as cron would, it is `maintain` on this root.
    let command = ours[0].trim_start_matches("0 * * * * ").split(" >/dev/null").next().unwrap();
    let ran = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{command} --json"))
        .launch_output()
        .unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    assert!(r.join("data/.sidecar_state.json").is_file());
    let out = run_sched(r, t, "cron", &["schedule", "show"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).trim(), ours[0]);
    // Removed: the other lines stay; removing again is no error.
    assert_code(&run_sched(r, t, "cron", &["schedule", "remove"]), 0);
    assert_eq!(
        fs::read_to_string(t.join("crontab.txt")).unwrap(),
        "MAILTO=me\n15 3 * * * backup-photos\n"
    );
    let out = run_sched(r, t, "cron", &["schedule", "remove"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("nothing to remove"), "{}", stdout(&out));
}

#[cfg(unix)]
#[test]
fn systemd_units_are_written_loaded_and_valid() {
    let root = make_root();
    let r = root.path();
    let tools = tempfile::tempdir().unwrap();
    let t = tools.path();
    stand_ins(t);
    let out = run_sched(r, t, "systemd", &["--json", "schedule", "install"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let name = v["entry"]["name"].as_str().unwrap().to_string();
    let units = t.join("config/systemd/user");
    let service = fs::read_to_string(units.join(format!("{name}.service"))).unwrap();
    let timer = fs::read_to_string(units.join(format!("{name}.timer"))).unwrap();
    assert!(service.contains("ExecStart=") && service.contains("\"maintain\""), "{service}");
    assert!(timer.contains("OnCalendar=hourly") && timer.contains("Persistent=true"), "{timer}");
    let calls = fs::read_to_string(t.join("systemctl.log")).unwrap();
    assert_eq!(calls, format!("--user daemon-reload\n--user enable --now {name}.timer\n"));
    // The real checker, where the machine has it.
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(units.join(format!("{name}.timer")))
        .arg(units.join(format!("{name}.service")))
        .env("XDG_CONFIG_HOME", t.join("config"))
        .env("XDG_RUNTIME_DIR", t)
        .launch_output();
    match verify {
        Ok(o) => assert!(
            o.status.success() && !String::from_utf8_lossy(&o.stderr).contains(&name),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("systemd-analyze is not here: the units were not verified"),
    }
    assert_code(&run_sched(r, t, "systemd", &["schedule", "show"]), 0);
    assert_code(&run_sched(r, t, "systemd", &["schedule", "remove"]), 0);
    assert!(!units.join(format!("{name}.service")).exists());
    let calls = fs::read_to_string(t.join("systemctl.log")).unwrap();
    assert!(
        calls.ends_with(&format!("--user disable --now {name}.timer\n--user daemon-reload\n")),
        "{calls}"
    );
}

#[test]
fn windows_task_dry_run_runs_hourly_whether_logged_on_or_not() {
    let root = make_root();
    let tools = tempfile::tempdir().unwrap();
    let out =
        run_sched(root.path(), tools.path(), "windows", &["schedule", "install", "--dry-run"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "<Interval>PT1H</Interval>",
        "<LogonType>S4U</LogonType>",
        "schtasks /Create",
        "maintain</Arguments>",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    let out = run_sched(root.path(), tools.path(), "nonsense", &["schedule", "show"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("MHM_SCHEDULER"), "{}", stderr(&out));
}
