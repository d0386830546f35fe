//! How a [`RollingFile`] is made: [`Builder::build`] opens a log, or hands out the live
//! writer this process already has on its path (the registry).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Weak},
};

use super::{builder::Builder, sync::Mutex, Inner, Owner, RollingFile};
use crate::error::InitError;

/// The live writers of this process by absolute path, weakly (the last handle dropped
/// closes its file), each with the pid that opened it: after a `fork` the child's `build`
/// ignores the parent's writers (their threads are not in the child) and opens its own.
/// Taken only by `build`, so a fork never finds it held by a thread closing a file.
type Registry = HashMap<PathBuf, (u32, Weak<Owner>)>;
static LIVE: Mutex<Option<Registry>> = Mutex::new(None);

impl RollingFile {
    /// A [`Builder`].
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A rotating file with the default settings and the system clock.
    pub fn new(path: impl AsRef<Path>) -> Result<Self, InitError> {
        Builder::new().build(path)
    }
}

impl Builder {
    /// Opens (or creates) the log at `path`, resuming an existing file and its age, and
    /// starts its background thread.
    ///
    /// A log this process already has open (the same absolute path, `.` and `..` taken
    /// out, links not followed) is shared: `build` returns a handle on the live writer.
    /// Its clock stays the first build's, and no setting is dropped: the settings are
    /// merged, the file rotating when any build's trigger says so (the smallest size
    /// limit; midnight if any asks) and keeping the most any asks for (counts, age,
    /// compression); the rest stays the first build's. Each disagreement is printed once
    /// on stderr, naming both values (see [`build_with_notes`](Self::build_with_notes) to
    /// get them instead), and counted in [`Stats::settings_merged`](super::Stats). Other
    /// processes may write the same log at the same time, coordinated (README, "Several
    /// processes").
    pub fn build(self, path: impl AsRef<Path>) -> Result<RollingFile, InitError> {
        let (file, notes) = self.build_with_notes(path)?;
        for note in notes {
            eprintln!("mhm-log: {note}");
        }
        Ok(file)
    }

    /// As [`build`](Self::build), but the disagreements with the settings of a writer
    /// already open on the path are returned (one sentence each, each given once per
    /// writer) rather than printed: for a caller with its own way of warning (the Python
    /// package's `warnings.warn`).
    pub fn build_with_notes(
        self,
        path: impl AsRef<Path>,
    ) -> Result<(RollingFile, Vec<String>), InitError> {
        let (settings, clock) = self.into_parts();
        let key = mhm_fsx::absolute(path.as_ref());
        let pid = std::process::id();
        let mut live = LIVE.lock();
        let live = live.get_or_insert_with(HashMap::new);
        if let Some(owner) =
            live.get(&key).filter(|(p, _)| *p == pid).and_then(|(_, w)| w.upgrade())
        {
            let notes = owner.0.merge(&settings);
            return Ok((RollingFile { inner: Arc::clone(&owner.0), _owner: owner }, notes));
        }
        let inner = Inner::open(path.as_ref(), settings, clock)?;
        let owner = Arc::new(Owner(Arc::clone(&inner)));
        live.retain(|_, (p, w)| *p == pid && w.strong_count() > 0);
        live.insert(key, (pid, Arc::downgrade(&owner)));
        Ok((RollingFile { inner, _owner: owner }, Vec::new()))
    }
}
