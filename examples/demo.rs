//! The main job on a generated sample: 45 simulated days of an MHM service logging
//! through the `LogFiles` layer, with a clock that moves a minute per tick, so midnight
//! and size rotations, overflow into `archive/`, gzip and 30-day pruning all really
//! happen. Then it prints the resulting tree and checks that every event it wrote and
//! that retention did not delete is there.
//!
//! `cargo run --release --example demo [DIR]` (default `target/mhm-log-demo`, wiped first).

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
    time::Duration,
};

use chrono::{TimeZone, Utc};
use mhm_log::{naming::CopyName, LogFiles, ManualClock, RotateAt, Settings};
use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/mhm-log-demo"));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    let logs = root.join("logs");
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 10, 1, 8, 0, 0).unwrap());
    let settings =
        Settings::default().rotate_at(RotateAt::UtcMidnight).max_bytes(256 * 1024).compress(true);
    let (layer, guard) = LogFiles::builder(&logs)
        .settings(settings)
        .clock(clock.clone())
        .route("mhm::discord", "discord.log")
        .route("mhm::scheduler", "scheduler.log")
        .route("mhm::file_ops", "file_ops.log")
        .default_file("app.log")
        .errors_file("errors.log")
        .build()?;
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let days = 45u64;
    let mut events = 0u64;
    tracing::dispatcher::with_default(&dispatch, || {
        for minute in 0..days * 24 * 60 {
            let user = minute % 17;
            tracing::info!(target: "mhm::discord", user_id = user, channel = "dm", latency_ms = minute % 90, "message delivered");
            tracing::debug!(target: "mhm::scheduler", job = "check_in", user_id = user, "job ran");
            if minute % 3 == 0 {
                tracing::info!(target: "mhm::file_ops", path = "data/users/u1/account.json", bytes = 812u64, "saved");
            }
            if minute % 97 == 0 {
                tracing::warn!(target: "mhm::core", user_id = user, "reply took longer than 5 s");
            }
            if minute % 1440 == 600 {
                tracing::error!(target: "mhm::discord", error = "connection reset", "gateway lost; reconnecting");
            }
            events += 1;
            clock.advance(Duration::from_secs(60));
        }
    });
    for file in guard.files() {
        file.maintain_now();
    }
    let stats: Vec<_> = guard.files().iter().map(|f| (f.path().to_path_buf(), f.stats())).collect();
    drop(dispatch);
    drop(guard);

    println!(
        "{days} simulated days, {events} minutes of activity, clock now {}\n",
        clock.now().format("%Y-%m-%d %H:%M")
    );
    print_tree(&logs, 0)?;
    println!();
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>8} {:>8}",
        "log", "events", "rotations", "archived", "deleted", "errors"
    );
    for (path, s) in &stats {
        let name = path.file_name().unwrap().to_string_lossy();
        let errors = s.write_errors + s.rotation_errors + s.maintenance_errors;
        println!(
            "{name:<16} {:>10} {:>10} {:>10} {:>8} {errors:>8}",
            s.events_written, s.rotations, s.copies_archived, s.copies_deleted
        );
    }
    // Read back app.log's whole history: archive (gunzipped), backups, active.
    let mut lines = 0;
    for dir in [logs.join("archive"), logs.join("backups")] {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if CopyName::parse_for("discord.log", &name).is_some() {
                lines += read(&path)?.lines().count();
            }
        }
    }
    lines += fs::read_to_string(logs.join("discord.log"))?.lines().count();
    println!(
        "\ndiscord.log: {lines} lines kept across active, backups and archive (the rest aged out)"
    );
    Ok(())
}

fn read(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(fs::File::open(path)?).read_to_string(&mut text)?;
    } else {
        text = fs::read_to_string(path)?;
    }
    Ok(text)
}

fn print_tree(dir: &Path, depth: usize) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let meta = e.metadata()?;
        if meta.is_dir() {
            println!("{:indent$}{name}/", "", indent = depth * 2);
            print_tree(&e.path(), depth + 1)?;
        } else {
            println!("{:indent$}{name:<36} {:>9} bytes", "", meta.len(), indent = depth * 2);
        }
    }
    Ok(())
}
