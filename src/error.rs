//! The library's error types: one for start-up, one for settings.
//!
//! After start-up the writer never returns these: failures on the hot path are
//! counted in [`Stats`](crate::Stats) and reported on stderr, never raised.

use std::{error::Error, fmt, io, path::PathBuf};

/// A writer or layer could not be built: what it was doing, on which file, and the
/// `io::Error` underneath.
#[derive(Debug)]
pub struct InitError {
    context: String,
    path: Option<PathBuf>,
    source: Option<io::Error>,
}

impl InitError {
    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: io::Error,
    ) -> Self {
        Self { context: context.into(), path: Some(path.into()), source: Some(source) }
    }

    pub(crate) fn msg(context: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self { context: context.into(), path: Some(path.into()), source: None }
    }

    pub(crate) fn bare(context: impl Into<String>) -> Self {
        Self { context: context.into(), path: None, source: None }
    }

    /// The file or folder the failing step worked on, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// The kind of the underlying I/O error, when there is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        self.source.as_ref().map(io::Error::kind)
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.context)?;
        if let Some(path) = &self.path {
            write!(f, " ({})", path.display())?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl Error for InitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

/// A setting whose value does not parse. Names the setting (the environment variable)
/// and the value, and says what was expected; never silently replaced by a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    /// The environment variable (or setting) that was wrong, e.g. `LOG_MAX_BYTES`.
    pub name: String,
    /// The value found.
    pub value: String,
    /// What a valid value looks like.
    pub expected: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid value {:?} for {}: expected {}", self.value, self.name, self.expected)
    }
}

impl Error for SettingsError {}
