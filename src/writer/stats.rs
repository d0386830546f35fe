//! [`Stats`]: what a writer has counted. Every part of the writer adds to it, under the
//! state lock; the counters of flushes written outside that lock and of the background
//! thread are added in when it is read (`RollingFile::stats`).

/// What a writer has done since it was built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events (write calls) that reached the file or its buffer.
    pub events_written: u64,
    /// Bytes of those events.
    pub bytes_written: u64,
    /// Rotations done.
    pub rotations: u64,
    /// Rotations that failed (rename refused, new file could not be opened); retried later.
    pub rotation_errors: u64,
    /// Writes to the file that failed (full disk, I/O error).
    pub write_errors: u64,
    /// Events that could not be written because of those failures.
    pub lost_events: u64,
    /// Copies moved (or compressed) into `archive/` by the background thread.
    pub copies_archived: u64,
    /// Copies deleted by pruning.
    pub copies_deleted: u64,
    /// Background maintenance steps that failed; retried a minute later.
    pub maintenance_errors: u64,
    /// Times the active file was found deleted or moved away by someone else, and a new
    /// one started at its path (at a rotation, or at the background thread's check once
    /// a second).
    pub reopens: u64,
    /// Rotations by another writer of the same log (another process) that this one
    /// followed to the new active file.
    pub followed: u64,
    /// Handles built on this path with settings that disagreed with the ones in force
    /// (each disagreement is also reported once on stderr, or returned by
    /// [`Builder::build_with_notes`](super::Builder::build_with_notes)): see
    /// [`Builder::build`](super::Builder::build) for the rule.
    pub settings_merged: u64,
    /// The last failure, as text.
    pub last_error: Option<String>,
}
