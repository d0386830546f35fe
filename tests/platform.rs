//! What file systems make different, for the writer: paths longer than Windows' old
//! 260-character limit, and names that differ only in case (one file on Windows' and
//! macOS's case-insensitive file systems, two on Linux's).

mod common;

use std::{fs, io::Write, path::Path, time::Duration};

use mhm_log::{ManualClock, RollingFile, Settings, WriteMode};

fn tiny(mode: WriteMode) -> Settings {
    Settings::default()
        .max_bytes(1024)
        .min_rotate_bytes(0)
        .min_rotate_age(Duration::ZERO)
        .backup_count(3)
        .archive_count(1000)
        .compress(true)
        .write_mode(mode)
}

/// Every line of a log's history (archive, backups, active file), in file order.
fn all_lines(dir: &Path, log: &str) -> Vec<String> {
    common::history(dir, log)
        .into_iter()
        .flat_map(|(_, text)| text.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

#[test]
fn a_log_deeper_than_260_characters_rotates_overflows_and_compresses() {
    let root = tempfile::tempdir().unwrap();
    let mut dir = root.path().to_path_buf();
    while dir.as_os_str().len() < 300 {
        dir.push("a_folder_name_of_forty_characters_______");
    }
    let logs = dir.join("logs");
    let path = logs.join("app.log");
    assert!(path.as_os_str().len() > 300);
    let clock = ManualClock::new(common::utc(2026, 1, 1, 9, 0, 0));
    let log = RollingFile::builder().settings(tiny(WriteMode::Buffered)).clock(clock).build(&path);
    let log = log.unwrap();
    let lines: Vec<String> =
        (0..400).map(|i| format!("event {i:05} ......................")).collect();
    for line in &lines {
        (&log).write_all(format!("{line}\n").as_bytes()).unwrap();
    }
    log.flush().unwrap();
    log.maintain_now();
    let stats = log.stats();
    assert!(stats.rotations >= 10, "{stats:?}");
    assert_eq!((stats.lost_events, stats.rotation_errors, stats.maintenance_errors), (0, 0, 0));
    assert!(stats.copies_archived > 0, "overflow reached the archive: {stats:?}");
    drop(log);
    assert!(fs::read_dir(logs.join("archive"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".gz")));
    assert_eq!(all_lines(&logs, "app.log"), lines);
}

/// Whether `dir` is on a file system that does not tell names apart by case.
fn case_insensitive(dir: &Path) -> bool {
    fs::write(dir.join("probe"), "").unwrap();
    let yes = dir.join("PROBE").exists();
    fs::remove_file(dir.join("probe")).unwrap();
    yes
}

#[test]
fn names_that_differ_only_in_case_are_one_log_or_two_as_the_file_system_says() {
    // `App.log` and `app.log`: on Windows (and macOS) the same file, so the two writers
    // meet in the same `.app.log.shm` and lock, and coordinate as two processes do: every
    // line once, whole. On Linux, two logs, each whole.
    for mode in [WriteMode::Direct, WriteMode::Buffered, WriteMode::Staged] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(common::utc(2026, 1, 1, 9, 0, 0));
        let build = |name: &str| {
            RollingFile::builder()
                .settings(tiny(mode))
                .clock(clock.clone())
                .build(dir.path().join(name))
                .unwrap()
        };
        let (upper, lower) = (build("App.log"), build("app.log"));
        let (a, b): (Vec<String>, Vec<String>) = (0..300)
            .map(|i| (format!("upper {i:05} ............"), format!("lower {i:05} ............")))
            .unzip();
        std::thread::scope(|s| {
            s.spawn(|| {
                a.iter().for_each(|l| (&upper).write_all(format!("{l}\n").as_bytes()).unwrap())
            });
            s.spawn(|| {
                b.iter().for_each(|l| (&lower).write_all(format!("{l}\n").as_bytes()).unwrap())
            });
        });
        upper.flush().unwrap();
        lower.flush().unwrap();
        upper.maintain_now();
        lower.maintain_now();
        for log in [&upper, &lower] {
            let stats = log.stats();
            assert_eq!((stats.lost_events, stats.write_errors), (0, 0), "{mode:?}: {stats:?}");
        }
        drop((upper, lower));
        let pick = |lines: &[String], prefix: &str| -> Vec<String> {
            lines.iter().filter(|l| l.starts_with(prefix)).cloned().collect()
        };
        let insensitive = case_insensitive(dir.path());
        assert!(insensitive || !cfg!(windows), "Windows folders are case-insensitive");
        if insensitive {
            let names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().to_lowercase())
                .filter(|n| n.ends_with(".log"))
                .collect();
            assert_eq!(names, ["app.log"], "{mode:?}: one active file");
            // Each writer names its copies after its own spelling; their numbers come
            // from the shared last copy, so one order holds across both.
            let mut copies = Vec::new();
            for folder in ["archive", "backups"] {
                for name in ["app.log", "App.log"] {
                    copies.extend(common::copies(&dir.path().join(folder), name));
                }
            }
            copies.sort_by(|x, y| x.0.order(&y.0));
            copies.dedup_by(|x, y| x.1 == y.1);
            let mut lines: Vec<String> = copies
                .iter()
                .flat_map(|(_, p)| {
                    common::read_copy(p).lines().map(str::to_string).collect::<Vec<_>>()
                })
                .collect();
            let active = fs::read_to_string(dir.path().join("app.log")).unwrap();
            lines.extend(active.lines().map(str::to_string));
            assert_eq!(lines.len(), 600, "{mode:?}: every line once");
            assert_eq!(pick(&lines, "upper "), a, "{mode:?}");
            assert_eq!(pick(&lines, "lower "), b, "{mode:?}");
        } else {
            assert_eq!(all_lines(dir.path(), "App.log"), a, "{mode:?}");
            assert_eq!(all_lines(dir.path(), "app.log"), b, "{mode:?}");
        }
    }
}
