//! Starting a test's child process, once more when the start itself fails for a reason of the
//! platform's own. Under Wine, `CreateProcess` sometimes fails with ERROR_INTERNAL_ERROR (1359)
//! while the machine is loaded: the child never ran, so nothing a test checks has happened
//! yet, and starting it again is the same test. Every other error is returned at once.
//! Shared by the two crates' integration tests (the sidecar's includes this file by path).

use std::{
    io,
    process::{Child, Command, ExitStatus, Output},
    time::Duration,
};

/// `output`, `spawn` and `status`, retried only while the process could not be started
/// for the platform's own reason (see the module's comment).
pub trait Launch {
    /// As [`Command::output`].
    fn launch_output(&mut self) -> io::Result<Output>;
    /// As [`Command::spawn`].
    fn launch(&mut self) -> io::Result<Child>;
    /// As [`Command::status`].
    fn launch_status(&mut self) -> io::Result<ExitStatus>;
}

impl Launch for Command {
    fn launch_output(&mut self) -> io::Result<Output> {
        again(|| self.output())
    }
    fn launch(&mut self) -> io::Result<Child> {
        again(|| self.spawn())
    }
    fn launch_status(&mut self) -> io::Result<ExitStatus> {
        again(|| self.status())
    }
}

/// Windows' ERROR_INTERNAL_ERROR, which Wine's `CreateProcess` returns when its server is
/// momentarily overwhelmed.
const WINE_INTERNAL_ERROR: i32 = 1359;
const TRIES: u32 = 8;

fn again<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut tries = 1;
    loop {
        match start() {
            Err(e)
                if cfg!(windows)
                    && e.raw_os_error() == Some(WINE_INTERNAL_ERROR)
                    && tries < TRIES =>
            {
                eprintln!("starting a child failed ({e}); starting it again ({tries} of {TRIES})");
                std::thread::sleep(Duration::from_millis(250 * u64::from(tries)));
                tries += 1;
            }
            other => return other,
        }
    }
}
