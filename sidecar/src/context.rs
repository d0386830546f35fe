//! What every operation needs: the root, the run's time, the settings, where progress goes,
//! and (for tests) where to fail.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{bail, Context as _, Result};
use chrono::{DateTime, FixedOffset, Local, Utc};
use mhm_log::Settings;
use mhm_logfiles::time::Zone;

use crate::{envfile, error::usage, paths, report::Progress, NoProgress};

/// One run on one MHM root.
pub struct Ctx {
    /// The MHM root (absolute).
    pub root: PathBuf,
    /// The run's time (the system clock, or a time a test or `--now` chose).
    pub now: DateTime<Utc>,
    /// `<root>/.env`, parsed.
    dotenv: HashMap<String, String>,
    /// The LOG_* settings, with `root` set.
    pub log_settings: Settings,
    /// The sidecar's own settings, each its value or what is wrong with it.
    pub settings: crate::settings::Sidecar,
    /// Where long work reports progress.
    pub progress: Arc<dyn Progress>,
    /// Failures to inject (tests only; none unless set with [`Ctx::with_faults`]).
    pub faults: Faults,
    /// What to run at each fail point (tests only; none unless set with [`Ctx::with_hook`]).
    pub hook: Option<Hook>,
}

/// The settings' values are left out (`.env` holds secrets); the names of those read from
/// `.env` are shown.
impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut dotenv: Vec<&str> = self.dotenv.keys().map(String::as_str).collect();
        dotenv.sort_unstable();
        f.debug_struct("Ctx")
            .field("root", &self.root)
            .field("now", &self.now)
            .field("dotenv", &dotenv)
            .field("log_settings", &self.log_settings)
            .field("settings", &self.settings)
            .field("faults", &self.faults)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// The context for `root` at `now`: reads `<root>/.env` and the LOG_* settings (the
    /// environment first, then `.env`). A LOG_* setting that does not parse is left at its
    /// default here, and a `.env` line that does not parse is skipped (as python-dotenv
    /// skips it): [`crate::settings::Sidecar::bad`] names every bad one, and the commands that
    /// depend on them refuse to run. Only a `.env` that cannot be read at all is an error.
    pub fn new(root: impl AsRef<Path>, now: DateTime<Utc>) -> Result<Self> {
        let root = root.as_ref();
        if !root.is_dir() {
            return Err(usage(format!("the MHM root {} is not a folder", root.display())));
        }
        // Absolute, so that link targets and `--dir` resolve against one base.
        let root = std::path::absolute(root)
            .map(|r| paths::normalize(&r))
            .with_context(|| format!("resolving the MHM root {}", root.display()))?;
        let (dotenv, bad_lines) = envfile::load(&root, &root.join(".env"))?;
        let mut ctx = Self {
            root,
            now,
            dotenv,
            log_settings: Settings::default(),
            settings: crate::settings::Sidecar::default(),
            progress: Arc::new(NoProgress),
            faults: Faults::default(),
            hook: None,
        };
        let sidecar = crate::settings::Sidecar::read(&|name| {
            ctx.setting(name).map(|v| (v, ctx.setting_source(name)))
        })
        .with_dotenv_lines(bad_lines, |name| std::env::var_os(name).is_some());
        let bad: Vec<&str> = sidecar.bad_log().iter().map(|b| b.name.as_str()).collect();
        let settings =
            Settings::from_lookup(
                |name| {
                    if bad.contains(&name) {
                        None
                    } else {
                        ctx.setting(name)
                    }
                },
            )
            .map_err(|e| {
                let from = ctx.setting_source(&e.name);
                usage(format!("{e} (from {from})"))
            })?;
        ctx.log_settings = settings.root(&ctx.root);
        ctx.settings = sidecar;
        Ok(ctx)
    }

    /// The same context, reporting progress to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// The same context, failing at the given points (for tests of crash safety).
    #[must_use]
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The same context, running `hook` at each fail point it passes (for tests that act
    /// while an operation holds a lock, or stop a process at a point to kill it there).
    #[must_use]
    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Some(hook);
        self
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
            self.show(&self.root.join(".env"))
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

    /// `YYYYMMDD_HHMMSS` of the run's local time: the stamp in every name the sidecar makes.
    pub fn stamp(&self) -> String {
        self.now_local().format("%Y%m%d_%H%M%S").to_string()
    }

    /// The zone days are counted in (LOG_ROTATE_AT).
    pub fn zone(&self) -> Zone {
        Zone::from(self.log_settings.get_rotate_at())
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

    /// A path as every output shows it: relative to the root with `/` when it lies under
    /// it, else as the platform writes it ([`paths::show`]).
    pub fn show(&self, path: &Path) -> String {
        paths::show(&self.root, path)
    }

    /// Runs the hook, if any, at `point`; then fails when the faults ask for a failure there.
    pub fn fail_at(&self, point: FailPoint) -> Result<()> {
        if let Some(hook) = &self.hook {
            hook(point);
        }
        if self.faults.0.contains(&point) {
            bail!("injected failure at {point:?}");
        }
        Ok(())
    }
}

/// Where a test may make an operation fail, to show that a failure there loses nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailPoint {
    /// Restore: making the safety backup.
    Safety,
    /// Restore: after every entry is extracted into the staging folder.
    Extract,
    /// Restore: after the first item is swapped in.
    Swap,
    /// Restore: after every item is swapped in, before the commit marker.
    Commit,
    /// Messages: the service's lock on the active file is held, the file not yet read.
    MessagesLocked,
    /// Messages: after the archive file is written, before the active file is replaced.
    AfterArchiveWrite,
    /// Messages: the active file's new content is in its temporary file, synced and read
    /// back; the active file not yet looked at again nor replaced.
    MessagesTempWritten,
    /// Messages: the temporary file is renamed over the active file, the service's lock on
    /// the old one still held.
    MessagesReplaced,
    /// Remote push: after the first part is uploaded, stopping dead as a killed process
    /// would (the upload is neither completed nor aborted).
    RemoteMidUpload,
    /// Remote push: after the object is uploaded and confirmed, before its record.
    RemoteBeforeRecord,
}

/// What a test runs at each [`FailPoint`] an operation passes ([`Ctx::with_hook`]).
pub type Hook = Arc<dyn Fn(FailPoint) + Send + Sync>;

/// The failures to inject: none by default (the product never sets any).
#[derive(Clone, Debug, Default)]
pub struct Faults(pub Vec<FailPoint>);
