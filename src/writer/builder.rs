//! [`Builder`]: the options of a [`RollingFile`].

use std::{path::Path, sync::Arc};

use super::{Inner, Owner, RollingFile};
use crate::{clock::Clock, error::InitError, policy::Settings};

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
    /// starts its background thread. Fails if another process holds the log.
    pub fn build(self, path: impl AsRef<Path>) -> Result<RollingFile, InitError> {
        Inner::open(path.as_ref(), self.settings, self.clock)
            .map(|inner| RollingFile { _owner: Arc::new(Owner(Arc::clone(&inner))), inner })
    }
}
