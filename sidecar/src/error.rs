//! The errors a caller tells apart: bad usage or settings (the binary exits 2) and a held
//! lock (3). Everything else is an `anyhow::Error` with context (exit 1).

use std::fmt;

/// Bad usage or a bad setting: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Another run holds the lock: exit code 3.
#[derive(Debug)]
pub struct LockedError {
    /// The lock file, as messages show it (`data/.sidecar.lock`: relative to the root).
    pub path: String,
    /// The holder's pid, when it could be read.
    pub pid: Option<u32>,
}

impl fmt::Display for LockedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pid {
            Some(pid) => write!(
                f,
                "another mhm-sidecar run (pid {pid}) holds the lock on {}; try again when it is done",
                self.path
            ),
            None => write!(
                f,
                "another mhm-sidecar run holds the lock on {} (its pid could not be read); try again when it is done",
                self.path
            ),
        }
    }
}

impl std::error::Error for LockedError {}

/// Shorthand for a usage error as an `anyhow::Error`.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}
