//! `schedule install | show | remove`: `maintain` in the platform's scheduler, hourly, as
//! the user who runs the command (SPEC section 7).
//!
//! | where | what is written | how it is loaded |
//! |---|---|---|
//! | systemd runs (a user manager answers) | `~/.config/systemd/user/<id>.service` + `.timer` | `systemctl --user daemon-reload`, `enable --now` |
//! | elsewhere on unix | one crontab line, marked with the root | `crontab -` |
//! | Windows | a Task Scheduler task (XML: hourly, run whether the user is logged on or not) | `schtasks /Create /XML` |
//!
//! One entry per root: its name carries a digest of the root's path (`<id>`), so two
//! roots on one machine get two entries, and installing again replaces the entry. The job
//! writes nothing to an unrotated file: the sidecar logs its actions to `logs/sidecar.log`
//! (which rotates), stdout is dropped, and failures reach a person through `status` and
//! the alerts (`MHM_NOTIFY_URL`, `MHM_NOTIFY_COMMAND`).
//!
//! The scheduler's tools are found on `PATH` (tests put stand-ins there);
//! `MHM_SCHEDULER=systemd|cron|windows` overrides the choice.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The platform scheduler an entry goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A systemd user timer and service.
    Systemd,
    /// A crontab line.
    Cron,
    /// A Windows Task Scheduler task.
    Windows,
}

/// What an entry is made of: files to write (path, content) or a crontab line.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The scheduler.
    pub kind: Kind,
    /// The entry's name (unit, task or crontab marker).
    pub name: String,
    /// The command it runs, as one line.
    pub command: String,
    /// Files it consists of (systemd units, the task's XML), with their content.
    pub files: Vec<EntryFile>,
    /// The crontab line (cron only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron_line: Option<String>,
    /// The commands that load it, as a person would type them.
    pub load: Vec<String>,
}

/// One file of an entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryFile {
    /// Where it goes.
    pub path: PathBuf,
    /// What it holds.
    pub content: String,
}

/// The scheduler to use here: `MHM_SCHEDULER` when set, else Windows on Windows, systemd
/// where a user manager answers, cron elsewhere.
pub fn detect() -> Result<Kind> {
    if let Ok(v) = std::env::var("MHM_SCHEDULER") {
        return match v.trim().to_ascii_lowercase().as_str() {
            "systemd" => Ok(Kind::Systemd),
            "cron" | "crontab" => Ok(Kind::Cron),
            "windows" | "schtasks" => Ok(Kind::Windows),
            _ => Err(crate::error::usage(format!(
                "MHM_SCHEDULER: {v:?} is not a scheduler: use systemd, cron or windows"
            ))),
        };
    }
    if cfg!(windows) {
        return Ok(Kind::Windows);
    }
    // The state is on stdout; its exit code is 1 for "degraded" and "offline" alike.
    let systemd = Command::new("systemctl")
        .args(["--user", "is-system-running"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| a_manager_runs(&String::from_utf8_lossy(&out.stdout)));
    Ok(if systemd { Kind::Systemd } else { Kind::Cron })
}

/// Whether `systemctl --user is-system-running`'s answer is that of a user manager that
/// runs (or is starting, or runs with a failed unit). "offline" is what it prints when no
/// manager answers (a container, a machine booted without systemd), and "unknown" when it
/// cannot tell: both mean cron.
fn a_manager_runs(state: &str) -> bool {
    matches!(
        state.trim(),
        "running" | "degraded" | "starting" | "initializing" | "maintenance" | "stopping"
    )
}

/// The entry's name for `root`: `mhm-sidecar-maintain-<first 8 hex of SHA-256(root)>`.
pub fn name_for(root: &Path) -> String {
    let digest = Sha256::digest(root.to_string_lossy().as_bytes());
    format!("mhm-sidecar-maintain-{}", &crate::files::hex(&digest)[..8])
}

/// The entry that runs `exe --root <root> maintain` hourly with `kind`.
pub fn entry(kind: Kind, exe: &Path, root: &Path) -> Result<Entry> {
    entry_in(kind, exe, root, systemd_dir)
}

/// [`entry`], with the systemd user folder found by `systemd_dir` (asked only for a
/// systemd entry; `~/.config/systemd/user` in the product).
fn entry_in(
    kind: Kind,
    exe: &Path,
    root: &Path,
    systemd_dir: impl FnOnce() -> Result<PathBuf>,
) -> Result<Entry> {
    let name = name_for(root);
    let exe_s = checked_path("the program's path", exe, kind)?;
    let root_s = checked_path("the root's path", root, kind)?;
    Ok(match kind {
        Kind::Systemd => {
            let dir = systemd_dir()?;
            let command = format!("{} --root {} maintain", sh_quote(exe_s), sh_quote(root_s));
            let service = format!(
                "[Unit]\n\
                 Description=MHM maintenance for {root_d} (mhm-sidecar maintain)\n\
                 \n\
                 [Service]\n\
                 Type=oneshot\n\
                 ExecStart={exec}\n\
                 # Its actions go to logs/sidecar.log (rotated); failures reach a person\n\
                 # through `mhm-sidecar status` and MHM_NOTIFY_URL / MHM_NOTIFY_COMMAND.\n\
                 StandardOutput=null\n\
                 Nice=10\n\
                 IOSchedulingClass=idle\n",
                exec = systemd_quote_args(&[exe_s, "--root", root_s, "maintain"]),
                root_d = root_s.replace('%', "%%"),
            );
            let timer = format!(
                "[Unit]\n\
                 Description=Hourly MHM maintenance for {root_d}\n\
                 \n\
                 [Timer]\n\
                 OnCalendar=hourly\n\
                 # A run missed while the machine was off happens at the next boot.\n\
                 Persistent=true\n\
                 Unit={name}.service\n\
                 \n\
                 [Install]\n\
                 WantedBy=timers.target\n",
                root_d = root_s.replace('%', "%%"),
            );
            Entry {
                kind,
                command,
                files: vec![
                    EntryFile { path: dir.join(format!("{name}.service")), content: service },
                    EntryFile { path: dir.join(format!("{name}.timer")), content: timer },
                ],
                cron_line: None,
                load: vec![
                    "systemctl --user daemon-reload".into(),
                    format!("systemctl --user enable --now {name}.timer"),
                ],
                name,
            }
        }
        Kind::Cron => {
            let command = format!("{} --root {} maintain", sh_quote(exe_s), sh_quote(root_s));
            // `%` ends a crontab command; stdout dropped (the log is logs/sidecar.log),
            // stderr left to cron, which mails it where mail is set up.
            let line = format!("0 * * * * {} >/dev/null # {name}", command.replace('%', "\\%"));
            Entry {
                kind,
                command,
                files: Vec::new(),
                cron_line: Some(line),
                load: vec!["crontab -".into()],
                name,
            }
        }
        Kind::Windows => {
            let task = format!("\\MHM\\{name}");
            let command = format!("\"{exe_s}\" --root \"{root_s}\" maintain");
            let user = windows_user();
            let xml = format!(
                r#"<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>Hourly MHM maintenance for {root} (mhm-sidecar maintain)</Description>
  </RegistrationInfo>
  <Triggers>
    <TimeTrigger>
      <StartBoundary>2026-01-01T00:00:00</StartBoundary>
      <Repetition>
        <Interval>PT1H</Interval>
        <StopAtDurationEnd>false</StopAtDurationEnd>
      </Repetition>
      <Enabled>true</Enabled>
    </TimeTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <UserId>{user}</UserId>
      <LogonType>S4U</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <StartWhenAvailable>true</StartWhenAvailable>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT12H</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{exe}</Command>
      <Arguments>--root "{root}" maintain</Arguments>
    </Exec>
  </Actions>
</Task>
"#,
                root = xml_escape(root_s),
                exe = xml_escape(exe_s),
                user = xml_escape(&user),
            );
            let xml_path = std::env::temp_dir().join(format!("{name}.xml"));
            Entry {
                kind,
                command,
                files: vec![EntryFile { path: xml_path.clone(), content: xml }],
                cron_line: None,
                load: vec![format!(
                    "schtasks /Create /TN \"{task}\" /XML \"{}\" /F",
                    xml_path.display()
                )],
                name: task,
            }
        }
    })
}

/// `path` as text a scheduler's entry can hold: UTF-8, no control character (a newline
/// would end the crontab line, or the unit's line, and start one of the path's making),
/// and for cron no `\%` (cron's `%` ends the command; a backslash before it cannot be
/// told from cron's own escape).
fn checked_path<'a>(what: &str, path: &'a Path, kind: Kind) -> Result<&'a str> {
    let s = path.to_str().ok_or_else(|| {
        crate::error::usage(format!(
            "{what} {} is not UTF-8: no scheduler entry can name it",
            path.display()
        ))
    })?;
    if s.chars().any(char::is_control) {
        return Err(crate::error::usage(format!(
            "{what} {:?} holds a control character (a newline?): no scheduler entry can name \
             it safely; move it to a plain path",
            s
        )));
    }
    if kind == Kind::Cron && s.contains("\\%") {
        return Err(crate::error::usage(format!(
            "{what} {s:?} holds `\\%`, which a crontab line cannot name: move it to a plain path"
        )));
    }
    Ok(s)
}

/// Installs `entry` (replacing an earlier one of the same name).
pub fn install(entry: &Entry) -> Result<()> {
    match entry.kind {
        Kind::Systemd => {
            for f in &entry.files {
                write_file(&f.path, f.content.as_bytes())?;
            }
            run("systemctl", &["--user", "daemon-reload"], None)?;
            let timer = format!("{}.timer", entry.name);
            run("systemctl", &["--user", "enable", "--now", &timer], None)
        }
        Kind::Cron => {
            let mut lines = crontab_lines(&entry.name)?;
            lines.push(entry.cron_line.clone().unwrap_or_default());
            set_crontab(&lines)
        }
        Kind::Windows => {
            let f = entry.files.first().context("the task's XML")?;
            // Task Scheduler reads the XML as UTF-16 (as it declares).
            let mut bytes = vec![0xFF, 0xFE];
            for u in f.content.encode_utf16() {
                bytes.extend_from_slice(&u.to_le_bytes());
            }
            write_file(&f.path, &bytes)?;
            let xml = f.path.to_string_lossy().into_owned();
            let done = run("schtasks", &["/Create", "/TN", &entry.name, "/XML", &xml, "/F"], None);
            let _ = std::fs::remove_file(&f.path);
            done
        }
    }
}

/// What is installed for the entry's name, as the scheduler has it (`None`: nothing).
pub fn show(entry: &Entry) -> Result<Option<String>> {
    match entry.kind {
        Kind::Systemd => {
            let mut text = String::new();
            for f in &entry.files {
                match std::fs::read_to_string(&f.path) {
                    Ok(t) => text.push_str(&format!("# {}\n{t}\n", f.path.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => {
                        return Err(e).with_context(|| format!("reading {}", f.path.display()))
                    }
                }
            }
            Ok(Some(text))
        }
        Kind::Cron => {
            let all = read_crontab()?;
            let ours: Vec<&str> = all.lines().filter(|l| is_ours(l, &entry.name)).collect();
            Ok((!ours.is_empty()).then(|| ours.join("\n") + "\n"))
        }
        Kind::Windows => {
            let out = Command::new("schtasks")
                .args(["/Query", "/TN", &entry.name, "/XML"])
                .stdin(Stdio::null())
                .output()
                .context("running schtasks")?;
            Ok(out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
        }
    }
}

/// Removes the entry; `false` when there was none.
pub fn remove(entry: &Entry) -> Result<bool> {
    match entry.kind {
        Kind::Systemd => {
            if !entry.files.iter().any(|f| f.path.exists()) {
                return Ok(false);
            }
            let timer = format!("{}.timer", entry.name);
            // Disabling a timer the manager no longer knows is no failure of ours.
            let _ = run("systemctl", &["--user", "disable", "--now", &timer], None);
            for f in &entry.files {
                match std::fs::remove_file(&f.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("removing {}", f.path.display()))
                    }
                }
            }
            run("systemctl", &["--user", "daemon-reload"], None)?;
            Ok(true)
        }
        Kind::Cron => {
            let all = read_crontab()?;
            if !all.lines().any(|l| is_ours(l, &entry.name)) {
                return Ok(false);
            }
            set_crontab(&crontab_lines(&entry.name)?)?;
            Ok(true)
        }
        Kind::Windows => {
            if show(entry)?.is_none() {
                return Ok(false);
            }
            run("schtasks", &["/Delete", "/TN", &entry.name, "/F"], None)?;
            Ok(true)
        }
    }
}

/// `~/.config/systemd/user` (or under `XDG_CONFIG_HOME`).
fn systemd_dir() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(config.join("systemd/user"))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut out = crate::files::Atomic::create(path)
        .with_context(|| format!("writing {}", path.display()))?;
    out.file().write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    out.commit_replace().with_context(|| format!("writing {}", path.display()))
}

/// Runs `program args`, feeding `input`; an error names the command and what it said.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program} (is it installed and on PATH?)"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).with_context(|| format!("writing to {program}"))?;
    }
    let out = child.wait_with_output().with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The current crontab; empty when the user has none.
fn read_crontab() -> Result<String> {
    let out = Command::new("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .context("running crontab -l (is cron installed?)")?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    if err.contains("no crontab") {
        return Ok(String::new());
    }
    bail!("crontab -l failed ({}): {}", out.status, err.trim())
}

/// The crontab's lines without ours (for `name`).
fn crontab_lines(name: &str) -> Result<Vec<String>> {
    Ok(read_crontab()?.lines().filter(|l| !is_ours(l, name)).map(str::to_string).collect())
}

fn set_crontab(lines: &[String]) -> Result<()> {
    let mut text = lines.join("\n");
    text.push('\n');
    run("crontab", &["-"], Some(&text))
}

fn is_ours(line: &str, name: &str) -> bool {
    line.trim_end().ends_with(&format!("# {name}"))
}

/// `s` quoted for a POSIX shell (single quotes) when it needs quoting.
fn sh_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+:=,".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Arguments quoted for `ExecStart=` (double quotes, `\` and `"` escaped, `%` doubled,
/// `$` doubled so no variable is expanded).
fn systemd_quote_args(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            let q =
                a.replace('\\', r"\\").replace('"', "\\\"").replace('%', "%%").replace('$', "$$");
            format!("\"{q}\"")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `DOMAIN\user` of the account running this (Windows); the task runs as it.
fn windows_user() -> String {
    let user = std::env::var("USERNAME").unwrap_or_default();
    match std::env::var("USERDOMAIN") {
        Ok(d) if !d.is_empty() => format!("{d}\\{user}"),
        _ => user,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_manager_that_answers_is_systemd() {
        for running in ["running\n", "degraded\n", "starting\n", "initializing\n"] {
            assert!(super::a_manager_runs(running), "{running:?}");
        }
        for not in ["offline\n", "unknown\n", "", "Failed to connect to bus\n"] {
            assert!(!super::a_manager_runs(not), "{not:?}");
        }
    }

    use super::*;

    #[test]
    fn quoting_keeps_odd_paths_one_argument() {
        assert_eq!(sh_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(sh_quote("/a b/it's"), r"'/a b/it'\''s'");
        assert_eq!(systemd_quote_args(&["/a b", "50%$HOME"]), r#""/a b" "50%%$$HOME""#);
        assert_eq!(xml_escape(r#"C:\a&b"<>"#), "C:\\a&amp;b&quot;&lt;&gt;");
    }

    // regression (issue 22 attack): a newline in the root's path put a line of its own
    // making in the crontab (run every minute) and in the unit.
    #[test]
    fn a_path_no_entry_can_name_safely_is_refused() {
        let exe = Path::new("/usr/bin/mhm-sidecar");
        for kind in [Kind::Cron, Kind::Systemd, Kind::Windows] {
            let bad = Path::new("/srv/inj\n* * * * * touch /tmp/PWNED #");
            let err = entry(kind, exe, bad).unwrap_err();
            assert!(err.downcast_ref::<crate::UsageError>().is_some(), "{err:#}");
            assert!(format!("{err:#}").contains("control character"), "{err:#}");
        }
        assert!(entry(Kind::Cron, exe, Path::new("/srv/a\\%b")).is_err());
        let ok = entry(Kind::Cron, exe, Path::new("/srv/50% off")).unwrap();
        let line = ok.cron_line.unwrap();
        assert!(!line.contains('\n') && line.contains("50\\% off"), "{line}");
        // The unit's folder comes from HOME, which a Windows run (Wine in CI) has not.
        let dir = || Ok(PathBuf::from("/home/u/.config/systemd/user"));
        let unit = entry_in(Kind::Systemd, exe, Path::new("/srv/50% off"), dir).unwrap();
        assert_eq!(
            unit.files[0].path,
            Path::new("/home/u/.config/systemd/user").join(format!("{}.service", unit.name))
        );
        assert!(unit.files[0].content.contains("Description=MHM maintenance for /srv/50%% off"));
    }

    #[test]
    fn one_name_per_root() {
        let a = name_for(Path::new("/srv/mhm"));
        assert_eq!(a, name_for(Path::new("/srv/mhm")));
        assert_ne!(a, name_for(Path::new("/srv/mhm2")));
        assert!(a.starts_with("mhm-sidecar-maintain-") && a.len() == 29, "{a}");
    }
}
