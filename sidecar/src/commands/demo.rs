//! `demo [DIR]`: builds a demo root (`mhm_sidecar::demo`), then runs the real binary on
//! it as a scheduler would: `logs list`, `maintain`, `status`.

use std::{io::Write as _, path::Path, process::Command};

use anyhow::{Context as _, Result};
use mhm_sidecar::demo;

use super::Run;
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Run, dir: &Path) -> Result<ExitCode> {
    let now = ctx.now;
    println!("building a demo MHM root in {} (as of {})", dir.display(), now.to_rfc3339());
    let built = demo::build(dir, now)?;
    let root = &built.root;
    println!("  {} users, {} sent messages over two years", built.users, built.messages);
    println!(
        "  {} log events over {} days through mhm-log (rotated as they were written)",
        built.events, built.log_days
    );
    let exe = std::env::current_exe().context("finding the mhm-sidecar binary")?;
    let mut worst = ExitCode::Success;
    for args in [&["logs", "list"][..], &["maintain"], &["status"]] {
        println!(
            "\n$ mhm-sidecar --root {} --now {} {}",
            root.display(),
            now.to_rfc3339(),
            args.join(" ")
        );
        std::io::stdout().flush().context("writing to stdout")?;
        let status = Command::new(&exe)
            .arg("--root")
            .arg(root)
            .arg("--now")
            .arg(now.to_rfc3339())
            .args(args)
            .status()
            .with_context(|| format!("running mhm-sidecar {}", args.join(" ")))?;
        if !status.success() {
            worst = ExitCode::Failure;
        }
    }
    println!(
        "\nthe demo root is {}: try `mhm-sidecar --root {0} logs cat discord | tail`",
        root.display()
    );
    Ok(worst)
}
