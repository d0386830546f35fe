//! Telling a person that the unattended job is failing (SPEC.md section 7, "Alerts").
//!
//! - `MHM_NOTIFY_URL`: pings in the Healthchecks convention, which healthchecks.io, a
//!   self-hosted Healthchecks and compatible monitors (Uptime Kuma's push monitors, cronitor)
//!   accept: `<url>/start` when a `maintain` run with due work begins, `<url>` when it
//!   worked, `<url>/fail` with the summary as the body when it did not. A monitor that
//!   hears nothing for longer than its period alerts too, so a machine that stopped running
//!   `maintain` at all is noticed.
//! - `MHM_NOTIFY_COMMAND`: run by the shell (`sh -c`, `cmd /C` on Windows) with the summary
//!   on stdin and `MHM_NOTIFY_EVENT` set to `fail` or `recovered`, when `maintain` fails
//!   and when it first works again after failing (a mail command, a chat webhook with
//!   `curl`).
//!
//! A ping or command that fails is logged, never fails the job, and never names the URL
//! (it holds the check's secret token). The summary holds the jobs' outcomes, which never
//! hold a secret (the remote ones are scrubbed where they are made).

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use crate::Ctx;

/// The ping URL's setting.
pub(crate) const URL: &str = "MHM_NOTIFY_URL";
/// The command's setting.
pub(crate) const COMMAND: &str = "MHM_NOTIFY_COMMAND";
/// How long a ping or the command may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Which ping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ping {
    /// A run with due work begins.
    Start,
    /// It worked.
    Success,
    /// It failed.
    Fail,
}

fn url(ctx: &Ctx) -> Option<String> {
    ctx.setting(URL).map(|u| u.trim().trim_end_matches('/').to_string()).filter(|u| !u.is_empty())
}

/// Sends `ping` (with `body`) to `MHM_NOTIFY_URL`, if set. Failures are logged, never
/// returned.
pub(crate) fn ping(ctx: &Ctx, ping: Ping, body: &str) {
    let Some(base) = url(ctx) else { return };
    let target = match ping {
        Ping::Start => format!("{base}/start"),
        Ping::Success => base,
        Ping::Fail => format!("{base}/fail"),
    };
    if let Err(e) = send(&target, body) {
        tracing::warn!(target: "mhm::sidecar", "notify: the {ping:?} ping to {URL} failed: {e}");
    }
}

fn send(target: &str, body: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the HTTP client: {e}"))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("starting the HTTP client: {}", e.without_url()))?;
        let response = client
            .post(target)
            .header("content-type", "text/plain; charset=utf-8")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the monitor answered {}", response.status()))
        }
    })
}

/// Runs `MHM_NOTIFY_COMMAND`, if set, with `summary` on stdin and `MHM_NOTIFY_EVENT` set to
/// `event`. Failures are logged, never returned.
pub(crate) fn command(ctx: &Ctx, event: &str, summary: &str) {
    let Some(cmd) = ctx.setting(COMMAND).filter(|c| !c.trim().is_empty()) else { return };
    let mut child = if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(&cmd);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c").arg(&cmd);
        c
    };
    let spawned = child
        .current_dir(&ctx.root)
        .env("MHM_NOTIFY_EVENT", event)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "mhm::sidecar", "notify: {COMMAND} could not start: {e}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(summary.as_bytes());
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                tracing::warn!(target: "mhm::sidecar", "notify: {COMMAND} ended with {status}");
                return;
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(target: "mhm::sidecar", "notify: {COMMAND} took over {} s and was stopped", TIMEOUT.as_secs());
                return;
            }
            Err(e) => {
                tracing::warn!(target: "mhm::sidecar", "notify: waiting for {COMMAND}: {e}");
                return;
            }
        }
    }
}
