//! `mhm-sidecar`: the maintenance binary for an MHM root.

use std::process::ExitCode;

fn main() -> ExitCode {
    println!("mhm-sidecar {}", env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}
