//! `demo [DIR]`: a realistic MHM root built from scratch (the binary then runs `maintain`
//! and `status` on it, as a scheduler would).
//!
//! The root has several users with two years of sent messages, config files, a little
//! code, and 30 days of logs written through `mhm-log`'s `LogFiles` layer with a clock
//! that moves a minute per tick, so midnight rotations, overflow and pruning really
//! happened before `maintain` archives and backs up.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Local, Utc};
use mhm_log::{LogFiles, ManualClock, Settings};
use serde_json::json;
use tracing_subscriber::prelude::*;

use crate::error::usage;

/// Marks a folder as made by `demo`, so a second run may replace it.
const MARKER: &str = ".mhm-demo";
const USERS: [&str; 4] = ["u1001", "u1002", "u1003", "u1004"];
const LOG_DAYS: i64 = 30;
const MESSAGE_DAYS: i64 = 730;

/// What [`build`] made.
#[derive(Debug)]
pub struct Built {
    /// The demo root (absolute).
    pub root: PathBuf,
    /// Users made.
    pub users: usize,
    /// Sent messages written, over two years.
    pub messages: usize,
    /// Log events written through `mhm-log`.
    pub events: u64,
    /// Days of logs.
    pub log_days: i64,
}

/// Builds a demo root in `dir` as of `now`: a new or empty folder, or one an earlier demo
/// made (anything else is a usage error, and nothing is touched).
pub fn build(dir: &Path, now: DateTime<Utc>) -> Result<Built> {
    let root = prepare(dir)?;
    write_config(&root)?;
    let messages = write_users(&root, now)?;
    let events = write_logs(&root, now)?;
    write_service_backup(&root, now)?;
    Ok(Built { root, users: USERS.len(), messages, events, log_days: LOG_DAYS })
}

/// What building in `dir` would do, changing nothing: `Ok(true)` when an earlier demo's
/// folder would be replaced, `Ok(false)` when `dir` is missing or empty; a usage error for
/// any other folder.
pub fn check(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    let empty =
        fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
    if !empty && !dir.join(MARKER).exists() {
        return Err(usage(format!(
            "{} exists and was not made by `mhm-sidecar demo`; give a new or empty folder",
            dir.display()
        )));
    }
    Ok(!empty)
}

/// Creates `dir`, or empties one an earlier demo made; never touches anything else.
fn prepare(dir: &Path) -> Result<PathBuf> {
    if check(dir)? {
        fs::remove_dir_all(dir)
            .with_context(|| format!("removing the earlier demo in {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join(MARKER), "made by mhm-sidecar demo\n")
        .with_context(|| format!("writing {}", dir.display()))?;
    std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))
}

fn write(path: &Path, text: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// A folder backup as the service's own backup manager writes it (nine days old), so the
/// demo shows the sidecar taking over from it: listed, verifiable, and a week overdue.
fn write_service_backup(root: &Path, now: DateTime<Utc>) -> Result<()> {
    let at = (now - chrono::Duration::days(9)).with_timezone(&Local);
    let name = format!("weekly_backup_{}", at.format("%Y-%m-%d_%H-%M-%S"));
    let dir = root.join("data/backups").join(name.as_str());
    let manifest = json!({
        "backup_name": name,
        "format": "directory",
        "created_at": at.format("%Y-%m-%d %H:%M:%S").to_string(),
        "includes": {"users": true, "config": true, "logs": false},
    });
    write(&dir.join("manifest.json"), serde_json::to_vec_pretty(&manifest)?)?;
    for file in ["data/user_index.json", ".env", "requirements.txt"] {
        let from = root.join(file);
        let name = from.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        write(
            &dir.join("config").join(name),
            fs::read(&from).with_context(|| format!("reading {}", from.display()))?,
        )?;
    }
    copy_dir(&root.join("data/users"), &dir.join("users"))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e.with_context(|| format!("reading {}", from.display()))?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            fs::copy(e.path(), to.join(e.file_name()))
                .with_context(|| format!("copying {}", e.path().display()))?;
        }
    }
    Ok(())
}

fn write_config(root: &Path) -> Result<()> {
    write(
        &root.join(".env"),
        "# demo settings\nLOG_MAX_BYTES=262144\nLOG_BACKUP_COUNT=7\nLOG_ARCHIVE_COUNT=7\n",
    )?;
    write(&root.join("requirements.txt"), "discord.py==2.4.0\napscheduler==3.10.4\n")?;
    write(&root.join(".gitignore"), "__pycache__/\n*.pyc\n.venv/\n")?;
    write(&root.join("README.md"), "# MHM (demo)\n")?;
    write(&root.join("core/service.py"), "def main():\n    print('MHM')\n")?;
    write(&root.join("core/__pycache__/service.cpython-311.pyc"), [0u8; 16])?;
    write(&root.join("tests/test_service.py"), "def test_main():\n    pass\n")?;
    Ok(())
}

/// Users with two years of messages, one every three days or so, in today's shapes (schema
/// version 2 `deliveries`, newest first; the lookup index); returns the count.
fn write_users(root: &Path, now: DateTime<Utc>) -> Result<usize> {
    let mut index = serde_json::Map::new();
    index.insert(
        "last_updated".into(),
        json!(now.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string()),
    );
    let mut total = 0;
    for n in 0..USERS.len() {
        let uuid = format!("00000000-0000-4000-8000-00000000{id_n:04}", id_n = 1000 + n);
        index.insert(format!("user{n}"), json!(uuid));
        index.insert(format!("email:user{n}@example.org"), json!(uuid));
        index.insert(format!("discord:{}", 4200 + n), json!(uuid));
        let dir = root.join("data/users").join(&uuid);
        write(
            &dir.join("account.json"),
            serde_json::to_vec_pretty(
                &json!({ "user_id": uuid, "internal_username": format!("user{n}"), "timezone": "UTC" }),
            )?,
        )?;
        write(
            &dir.join("preferences.json"),
            serde_json::to_vec_pretty(&json!({ "check_ins": true, "tasks": n % 2 == 0 }))?,
        )?;
        let deliveries: Vec<_> = (0..MESSAGE_DAYS / 3)
            .rev()
            .map(|k| {
                let at = now - chrono::Duration::days(MESSAGE_DAYS - 3 * k)
                    + chrono::Duration::minutes(37 * n as i64);
                json!({
                    "id": format!("{uuid}-{k:04}"),
                    "message_template_id": format!("motivational-{}", k % 12),
                    "sent_text": format!("Good morning! Check-in #{k}"),
                    "category": "motivational",
                    "channel": "discord",
                    "status": "sent",
                    "source": {"kind": "schedule"},
                    "sent_at": at.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string(),
                    "time_period": "morning",
                    "metadata": {},
                })
            })
            .collect();
        total += deliveries.len();
        let file = json!({
            "schema_version": 2,
            "updated_at": now.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string(),
            "deliveries": deliveries,
        });
        write(&dir.join("messages/sent_messages.json"), serde_json::to_vec_pretty(&file)?)?;
    }
    write(&root.join("data/user_index.json"), serde_json::to_vec_pretty(&index)?)?;
    Ok(total)
}

/// 30 days of a service's logging, a minute per tick, through the real layer.
fn write_logs(root: &Path, now: DateTime<Utc>) -> Result<u64> {
    let start = now - chrono::Duration::days(LOG_DAYS);
    let clock = ManualClock::new(start);
    let settings = Settings::default().max_bytes(256 * 1024).root(root);
    let (layer, guard) = LogFiles::builder(root.join("logs"))
        .settings(settings)
        .clock(clock.clone())
        .route("mhm::discord", "discord.log")
        .route("mhm::scheduler", "scheduler.log")
        .route("mhm::file_ops", "file_ops.log")
        .default_file("app.log")
        .errors_file("errors.log")
        .build()
        .context("opening the demo's logs")?;
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let mut events = 0u64;
    tracing::dispatcher::with_default(&dispatch, || {
        let mut minute = 0u64;
        while clock.now() < now {
            let user = USERS[minute as usize % USERS.len()];
            tracing::info!(target: "mhm::discord", user_id = user, channel = "dm", latency_ms = minute % 90, "message delivered");
            tracing::debug!(target: "mhm::scheduler", job = "check_in", user_id = user, "job ran");
            events += 2;
            if minute.is_multiple_of(3) {
                tracing::info!(target: "mhm::file_ops", path = "data/users/u1001/account.json", bytes = 812u64, "saved");
                events += 1;
            }
            if minute.is_multiple_of(97) {
                tracing::warn!(target: "mhm::core", user_id = user, "reply took longer than 5 s");
                events += 1;
            }
            if minute % 1440 == 600 {
                tracing::error!(target: "mhm::discord", error = "connection reset", "gateway lost; reconnecting");
                events += 1;
            }
            minute += 1;
            clock.advance(Duration::from_secs(60));
        }
    });
    for file in guard.files() {
        file.maintain_now();
    }
    drop(dispatch);
    drop(guard);
    Ok(events)
}
