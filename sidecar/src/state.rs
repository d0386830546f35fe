//! `data/.sidecar_state.json`: when each `maintain` job last ran and whether it worked.
//! Written atomically (temp, sync, rename), and only when a job ran.

use std::{
    collections::BTreeMap,
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::{files, Ctx};

/// The state file's path under the data folder.
pub(crate) fn path(data_dir: &Path) -> PathBuf {
    data_dir.join(".sidecar_state.json")
}

/// The last run of one job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct JobRun {
    /// When it ran.
    pub last_run: DateTime<FixedOffset>,
    /// Whether it worked.
    pub ok: bool,
    /// What it did, or why it failed.
    #[serde(default)]
    pub detail: String,
}

/// Every job's last run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct State {
    /// By job name.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobRun>,
    /// The last `maintain` run that had work failed: the next that works is a recovery
    /// (`MHM_NOTIFY_COMMAND` is told).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failing: bool,
    /// When the newest whole copy in the off-site store was made, as of the last push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_newest: Option<DateTime<FixedOffset>>,
}

/// The most a state file may hold: one run per job, some hundreds of bytes each.
const MAX_BYTES: u64 = 1 << 20;

/// A link (or anything but a regular file) where the state file belongs: refused, never
/// followed, never moved aside. `maintain` stops on it rather than treat every job as
/// never run.
#[derive(Debug)]
pub(crate) struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a link or not a regular file where the state file belongs; refused, never \
             followed (remove it: `maintain` then runs every job once)",
            self.0
        )
    }
}

impl std::error::Error for Refused {}

/// Reads the state; a missing file is an empty state, a malformed one an error naming it,
/// a link at its path a [`Refused`] error.
pub(crate) fn load(ctx: &Ctx) -> Result<State> {
    let path = path(&ctx.data_dir());
    let refused = || anyhow::Error::new(Refused(ctx.show(&path)));
    match fs::symlink_metadata(&path) {
        Ok(meta) if !meta.file_type().is_file() => return Err(refused()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", ctx.show(&path))),
    }
    let reading = || format!("reading {}", ctx.show(&path));
    // O_NOFOLLOW: a link put there since the check above is refused too.
    let file = match files::open_no_follow(fs::OpenOptions::new().read(true), &path, false) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return Err(refused()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e).with_context(reading),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1).read_to_end(&mut bytes).with_context(reading)?;
    if bytes.len() as u64 > MAX_BYTES {
        anyhow::bail!(
            "{} is not a valid state file: over {MAX_BYTES} bytes (fix or delete it)",
            ctx.show(&path)
        );
    }
    serde_json::from_slice(&bytes).with_context(|| {
        format!("{} is not a valid state file (fix or delete it)", ctx.show(&path))
    })
}

/// Moves a state file that does not parse out of the way, to
/// `.sidecar_state.json.corrupt[.N]` beside it (never overwriting an earlier one).
pub(crate) fn set_aside(ctx: &Ctx) -> Result<PathBuf> {
    let from = path(&ctx.data_dir());
    let to = files::unique_path(&ctx.data_dir().join(".sidecar_state.json.corrupt"));
    fs::rename(&from, &to)
        .with_context(|| format!("moving {} to {}", ctx.show(&from), ctx.show(&to)))?;
    files::sync_dir(&to);
    Ok(to)
}

/// Writes the state atomically.
pub(crate) fn save(ctx: &Ctx, state: &State) -> Result<()> {
    let path = path(&ctx.data_dir());
    let mut out = files::Atomic::create(&path)
        .with_context(|| format!("creating a file beside {}", ctx.show(&path)))?;
    serde_json::to_writer_pretty(out.file(), state).context("encoding the state")?;
    out.file().write_all(b"\n").with_context(|| format!("writing {}", ctx.show(out.temp())))?;
    out.commit_replace().with_context(|| format!("writing {}", ctx.show(&path)))
}
