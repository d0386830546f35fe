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
            if !e.use_stderr() {
                return ExitCode::Success.into(); // --help, --version
            }
            // A usage mistake with --json still gives one JSON object on stdout.
            let args: Vec<String> = std::env::args().skip(1).collect();
            if args.iter().any(|a| a == "--json") {
                let words: Vec<&str> = args
                    .iter()
                    .map(String::as_str)
                    .filter(|a| !a.starts_with('-'))
                    .take(2)
                    .collect();
                // The message without the usage lines, on one line.
                let text = e.to_string();
                let message = text.split("\n\nUsage").next().unwrap_or("");
                let message = message.trim_start_matches("error: ").split_whitespace();
                let message = message.collect::<Vec<_>>().join(" ");
                let _ = commands::emit_json(&words.join(" "), ExitCode::Usage, Some(&message));
            }
            return ExitCode::Usage.into();
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
