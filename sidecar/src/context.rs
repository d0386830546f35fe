//! What every command needs: the root, the clock, the settings, the output mode.

use std::{
    collections::HashMap,
    io::{self, IsTerminal, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use chrono::{DateTime, FixedOffset, Local, Utc};
use mhm_log::{clock::Zone, Settings};

use crate::{cli::Global, envfile, errors::usage};

/// The run's context.
pub struct Ctx {
    /// The MHM root.
    pub root: PathBuf,
    /// The run's time (`--now`, else the system clock).
    pub now: DateTime<Utc>,
    /// `--json`.
    pub json: bool,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `<root>/.env`, parsed.
    dotenv: HashMap<String, String>,
    /// The LOG_* settings, with `root` set.
    pub log_settings: Settings,
}

impl Ctx {
    /// Builds the context from the global flags: bad values are usage errors (exit 2).
    pub fn new(global: &Global) -> Result<Self> {
        let root = match &global.root {
            Some(root) => root.clone(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        if !root.is_dir() {
            return Err(usage(format!("the MHM root {} is not a folder", root.display())));
        }
        // Absolute, so that link targets and `--dir` resolve against one base.
        let root = std::path::absolute(&root)
            .map(|r| crate::backup::paths::normalize(&r))
            .with_context(|| format!("resolving the MHM root {}", root.display()))?;
        let now = match &global.now {
            Some(s) => DateTime::parse_from_rfc3339(s.trim())
                .map_err(|e| {
                    usage(format!(
                        "invalid value {s:?} for --now/MHM_NOW: expected RFC 3339, e.g. 2026-11-26T02:00:00Z ({e})"
                    ))
                })?
                .with_timezone(&Utc),
            None => Utc::now(),
        };
        let dotenv = envfile::load(&root.join(".env"))?;
        let mut ctx = Self {
            root,
            now,
            json: global.json,
            dry_run: global.dry_run,
            dotenv,
            log_settings: Settings::default(),
        };
        let settings = Settings::from_lookup(|name| ctx.setting(name)).map_err(|e| {
            let from = ctx.setting_source(&e.name);
            usage(format!("{e} (from {from})"))
        })?;
        ctx.log_settings = settings.root(&ctx.root);
        Ok(ctx)
    }

    /// A setting: the environment first, then `<root>/.env`.
    pub fn setting(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().or_else(|| self.dotenv.get(name).cloned())
    }

    /// Where a setting's value comes from, for error messages.
    pub fn setting_source(&self, name: &str) -> String {
        if std::env::var_os(name).is_some() {
            "the environment".to_string()
        } else {
            self.root.join(".env").display().to_string()
        }
    }

    /// A whole-number setting: the flag, else the environment, else `.env`, else `default`.
    pub fn count_setting(&self, flag: Option<u64>, name: &str, default: u64) -> Result<u64> {
        if let Some(v) = flag {
            return Ok(v);
        }
        match self.setting(name) {
            Some(v) => envfile::parse_count(name, &v, &self.setting_source(name)),
            None => Ok(default),
        }
    }

    /// The run's time in nanoseconds since the epoch.
    pub fn now_nanos(&self) -> i64 {
        self.now.timestamp_nanos_opt().unwrap_or(i64::MAX)
    }

    /// The run's time in the local zone (names and `created_at` use it).
    pub fn now_local(&self) -> DateTime<FixedOffset> {
        self.now.with_timezone(&Local).fixed_offset()
    }

    /// The zone days are counted in (LOG_ROTATE_AT).
    pub fn zone(&self) -> Zone {
        self.log_settings.get_rotate_at().zone()
    }

    /// `<root>/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `<root>/data/backups`.
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("data").join("backups")
    }

    /// `<root>/logs`.
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// A path relative to the root when it is inside it, for messages.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.root).unwrap_or(path).display().to_string()
    }

    /// Whether to draw progress bars: stderr is a terminal and output is not JSON.
    pub fn progress_enabled(&self) -> bool {
        !self.json && io::stderr().is_terminal()
    }

    /// Prints `value` as pretty JSON on stdout.
    pub fn print_json(&self, value: &impl serde::Serialize) -> Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value).context("writing JSON to stdout")?;
        writeln!(out).context("writing to stdout")?;
        Ok(())
    }
}

/// A progress bar on stderr, or nothing when stderr is not a terminal or `--json` is on.
pub fn progress_bar(ctx: &Ctx, total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !ctx.progress_enabled() {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    Some(bar)
}
