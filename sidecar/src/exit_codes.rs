//! The process exit codes, in one place (SPEC section 7).

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// Done: everything asked for happened, no problem found.
    Success,
    /// Failed, or problems were found (an invalid backup, a corrupt copy, ...).
    Failure,
    /// Bad usage or a bad setting: nothing was done.
    Usage,
    /// Another run holds the lock on `data/.sidecar.lock`: nothing was done.
    Locked,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 2,
            ExitCode::Locked => 3,
        }
    }

    /// `Success` when `ok`, else `Failure`.
    pub fn from_ok(ok: bool) -> Self {
        if ok {
            ExitCode::Success
        } else {
            ExitCode::Failure
        }
    }

    /// The worse of two outcomes (a later failure is not hidden by an earlier success).
    #[must_use]
    pub fn and(self, other: Self) -> Self {
        if other.code() > self.code() {
            other
        } else {
            self
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// The exit code of a run that ended in `err`: 3 when locked, 2 for bad usage or settings,
/// else 1.
pub fn of_error(err: &anyhow::Error) -> ExitCode {
    if err.downcast_ref::<mhm_sidecar::LockedError>().is_some() {
        ExitCode::Locked
    } else if err.downcast_ref::<mhm_sidecar::UsageError>().is_some() {
        ExitCode::Usage
    } else {
        ExitCode::Failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_numbers() {
        assert_eq!(ExitCode::Success.code(), 0);
        assert_eq!(ExitCode::Failure.code(), 1);
        assert_eq!(ExitCode::Usage.code(), 2);
        assert_eq!(ExitCode::Locked.code(), 3);
    }

    #[test]
    fn from_ok_and_combining() {
        assert_eq!(ExitCode::from_ok(true), ExitCode::Success);
        assert_eq!(ExitCode::from_ok(false), ExitCode::Failure);
        assert_eq!(ExitCode::Success.and(ExitCode::Failure), ExitCode::Failure);
        assert_eq!(ExitCode::Failure.and(ExitCode::Success), ExitCode::Failure);
    }
}
