//! The sidecar logs its own actions through `mhm-log` to `<root>/logs/sidecar.log`.

use mhm_log::{LogFiles, LogFilesGuard};
use mhm_sidecar::Ctx;
use tracing_subscriber::prelude::*;

/// Starts logging to `<root>/logs/sidecar.log`. When that fails (read-only folder, the log
/// held by another process) a warning goes to stderr and the run goes on without it.
pub fn init(ctx: &Ctx) -> Option<LogFilesGuard> {
    let logs_dir = ctx.logs_dir();
    let built = LogFiles::builder(&logs_dir)
        .settings(ctx.log_settings.clone())
        .default_file("sidecar.log")
        .build();
    match built {
        Ok((layer, guard)) => {
            // Only the sidecar's own words: the libraries under `remote` (object_store,
            // reqwest) log requests, which belong in no one's log.
            let ours = tracing_subscriber::filter::filter_fn(|m| m.target().starts_with("mhm"));
            let layer = layer.with_filter(ours);
            if tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .is_err()
            {
                return None;
            }
            Some(guard)
        }
        Err(e) => {
            eprintln!("warning: not logging to {}: {e}", ctx.show(&logs_dir.join("sidecar.log")));
            None
        }
    }
}
