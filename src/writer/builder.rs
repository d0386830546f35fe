//! [`Builder`]: the options of a [`RollingFile`], and the process's registry of live
//! writers (one per path).

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Weak},
};

use super::sync::Mutex;

use super::{Inner, Owner, RollingFile};
use crate::{clock::Clock, error::InitError, policy::Settings};

/// The live writers of this process by absolute path, weakly (the last handle dropped
/// closes its file), each with the pid that opened it: after a `fork` the child's `build`
/// ignores the parent's writers (their threads are not in the child) and opens its own.
/// Taken only by `build`, so a fork never finds it held by a thread closing a file.
type Registry = HashMap<PathBuf, (u32, Weak<Owner>)>;
static LIVE: Mutex<Option<Registry>> = Mutex::new(None);

/// Builds a [`RollingFile`].
///
/// | option | default |
/// |---|---|
/// | [`settings`](Self::settings) | [`Settings::default()`] |
/// | [`clock`](Self::clock) | the system clock |
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    settings: Settings,
    clock: Clock,
}

impl Builder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// All settings at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: impl Into<Clock>) -> Self {
        self.clock = clock.into();
        self
    }

    /// Opens (or creates) the log at `path`, resuming an existing file and its age, and
    /// starts its background thread.
    ///
    /// A log this process already has open (the same absolute path, `.` and `..` taken
    /// out, links not followed) is shared: `build` returns a handle on the live writer,
    /// whose settings and clock (the first build's) stay; these are ignored. Other
    /// processes may write the same log at the same time, coordinated (README, "Several
    /// processes").
    pub fn build(self, path: impl AsRef<Path>) -> Result<RollingFile, InitError> {
        let key = mhm_fsx::absolute(path.as_ref());
        let pid = std::process::id();
        let mut live = LIVE.lock();
        let live = live.get_or_insert_with(HashMap::new);
        if let Some(owner) =
            live.get(&key).filter(|(p, _)| *p == pid).and_then(|(_, w)| w.upgrade())
        {
            return Ok(RollingFile { inner: Arc::clone(&owner.0), _owner: owner });
        }
        let inner = Inner::open(path.as_ref(), self.settings, self.clock)?;
        let owner = Arc::new(Owner(Arc::clone(&inner)));
        live.retain(|_, (p, w)| *p == pid && w.strong_count() > 0);
        live.insert(key, (pid, Arc::downgrade(&owner)));
        Ok(RollingFile { inner, _owner: owner })
    }
}
