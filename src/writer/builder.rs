//! [`Builder`]: the options of a [`RollingFile`](super::RollingFile). What it builds,
//! and the registry of live writers, are `registry.rs`'s (which uses this file and
//! `mod.rs`; neither uses it back).

use crate::{clock::Clock, policy::Settings};

/// Builds a [`RollingFile`](super::RollingFile).
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

    /// The options, taken apart (for `registry.rs`, which opens the file).
    pub(super) fn into_parts(self) -> (Settings, Clock) {
        (self.settings, self.clock)
    }
}
