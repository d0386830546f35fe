//! What the binary prints, without ever panicking (SPEC.md section 7: a closed pipe, as in
//! `status | head -1`, ends a command quietly with the exit code it would have had).
//!
//! `println!` and `eprintln!` are shadowed crate-wide (in `main.rs`) by macros that come
//! here: the first write that fails (the reader went away) stops all further output to
//! that stream, and the command runs on to its own exit code, as `git` and `ripgrep` do.

use std::{
    fmt,
    io::{self, Write},
    sync::atomic::{AtomicBool, Ordering},
};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// One line to stdout, unless it was closed.
pub fn line(args: fmt::Arguments<'_>) {
    if !STDOUT_CLOSED.load(Ordering::Relaxed) && writeln!(io::stdout().lock(), "{args}").is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line to stderr, unless it was closed.
pub fn error_line(args: fmt::Arguments<'_>) {
    if !STDERR_CLOSED.load(Ordering::Relaxed) && writeln!(io::stderr().lock(), "{args}").is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether `err` is stdout having been closed: then nothing more is written, and it is not
/// an error of the command's.
pub fn closed(err: &io::Error) -> bool {
    let closed = err.kind() == io::ErrorKind::BrokenPipe;
    if closed {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
    closed
}
