//! [`Run`]: the library's context with the command line's own flags, given to every command.

use std::ops::Deref;

use mhm_sidecar::Ctx;

/// The library's context plus what only the command line knows: `--json` and `--dry-run`.
pub struct Run {
    /// The library's context.
    pub ctx: Ctx,
    /// `--json`: results as JSON on stdout.
    pub json: bool,
    /// `--dry-run`: change nothing.
    pub dry_run: bool,
}

impl Deref for Run {
    type Target = Ctx;

    fn deref(&self) -> &Ctx {
        &self.ctx
    }
}
