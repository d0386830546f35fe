//! What a run reports: the whole run ([`Report`]) and each user's part ([`UserReport`]).

use serde::Serialize;

use crate::Problem;

/// What a run did (or, with `--dry-run`, would do).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// One entry per user looked at.
    pub users: Vec<UserReport>,
    /// Every problem, each naming the file and what is wrong (the run fails).
    pub problems: Vec<Problem>,
    /// Files left as they are because their shape is not one the service writes today
    /// (named, as the service itself does; the run does not fail).
    pub warnings: Vec<Problem>,
}

impl Report {
    /// No problem found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One user's part of the run.
#[derive(Debug, Default, Serialize)]
pub struct UserReport {
    /// The user id (folder name).
    pub user: String,
    /// Messages in the active file before the run.
    pub active_before: usize,
    /// Messages dropped from the active file because an archive already holds them
    /// (an earlier run stopped between its two writes).
    pub already_archived: usize,
    /// Messages moved to a new archive file by this run.
    pub archived: usize,
    /// The new archive file, relative to the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub archive_file: Option<String>,
    /// Messages left in the active file.
    pub active_after: usize,
    /// Messages whose timestamp does not parse (kept active).
    pub unparsed: usize,
    /// Archive files deleted by retention, relative to the root.
    pub deleted_archives: Vec<String>,
    /// Whether the files were changed (false in a dry run).
    pub changed: bool,
    /// Whether the active file was written by another process during the run (after it was
    /// read), and so left as that process left it; the messages also in the new archive
    /// file are dropped from it by the next run (`already_archived`).
    pub written_meanwhile: bool,
}
