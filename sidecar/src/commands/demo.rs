//! `demo [DIR]`: builds a demo root (`mhm_sidecar::demo`), then runs the real binary on
//! it as a scheduler would: `logs list`, `maintain`, `status`.

use std::{io::Write as _, path::Path, process::Command};

use anyhow::{Context as _, Result};
use mhm_sidecar::demo;

use super::run::Run;
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Run, dir: &Path) -> Result<ExitCode> {
    // With --json the story goes to stderr and stdout holds the one JSON object.
    macro_rules! say {
        ($($arg:tt)*) => {
            if ctx.json { eprintln!($($arg)*) } else { println!($($arg)*) }
        };
    }
    // To the second: a time a person can copy.
    let now = ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    if ctx.dry_run {
        let replaces = demo::check(dir)?;
        say!(
            "would build a demo MHM root in {} (as of {now}){}, then run `logs list`, \
             `maintain` and `status` on it; nothing changed (--dry-run)",
            dir.display(),
            if replaces { ", replacing the earlier demo there" } else { "" }
        );
        if ctx.json {
            super::json::print_json(&serde_json::json!({
                "root": dir.display().to_string(),
                "now": now,
                "dry_run": true,
                "replaces_earlier_demo": replaces,
            }))?;
        }
        return Ok(ExitCode::Success);
    }
    say!("building a demo MHM root in {} (as of {now})", dir.display());
    let built = demo::build(dir, ctx.now)?;
    let root = &built.root;
    say!("  {} users, {} sent messages over two years", built.users, built.messages);
    say!(
        "  {} log events over {} days through mhm-log (rotated as they were written)",
        built.events,
        built.log_days
    );
    let exe = std::env::current_exe().context("finding the mhm-sidecar binary")?;
    let mut worst = ExitCode::Success;
    for args in [&["logs", "list"][..], &["maintain"], &["status"]] {
        say!("\n$ mhm-sidecar --root {} --now {now} {}", root.display(), args.join(" "));
        std::io::stdout().flush().context("writing to stdout")?;
        let mut cmd = Command::new(&exe);
        cmd.arg("--root").arg(root).arg("--now").arg(&now).args(args);
        if ctx.json {
            // The runs' own tables go to stderr with the story.
            cmd.stdout(std::io::stderr());
        }
        let status =
            cmd.status().with_context(|| format!("running mhm-sidecar {}", args.join(" ")))?;
        if !status.success() {
            worst = ExitCode::Failure;
        }
    }
    say!(
        "\nthe demo root is {}: try `mhm-sidecar --root {0} logs cat discord | tail`",
        root.display()
    );
    if ctx.json {
        super::json::print_json(&serde_json::json!({
            "root": root.display().to_string(),
            "now": now,
            "users": built.users,
            "messages": built.messages,
            "events": built.events,
            "log_days": built.log_days,
        }))?;
    }
    Ok(worst)
}
