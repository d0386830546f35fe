//! `mhm-sidecar`: the maintenance binary for an MHM root. Thin: parse, run one library
//! call per command (`commands/`), render its report, map the result to an exit code
//! (`exit_codes`). All the work is in the `mhm_sidecar` library.

/// `println!` that never panics on a closed stdout (see `out.rs`); shadows std's in every
/// module below.
macro_rules! println {
    () => { $crate::out::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics on a closed stderr.
macro_rules! eprintln {
    () => { $crate::out::error_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::out::error_line(format_args!($($arg)*)) };
}

mod alloc;
mod cli;
mod commands;
mod exit_codes;
mod out;

#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

use std::io;

use clap::Parser;

use crate::{cli::Cli, exit_codes::ExitCode};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::Usage } else { ExitCode::Success }.into();
        }
    };
    match commands::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            // A closed stdout (`| head`) is not an error (as ripgrep does).
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::Success.into();
            }
            eprintln!("error: {err:#}");
            tracing::error!("{err:#}");
            exit_codes::of_error(&err).into()
        }
    }
}
