//! Every setting the sidecar reads, checked at once (SPEC.md section 7): every bad value
//! is named, never only the first; `status` reports them as reasons it is unhealthy,
//! `maintain` runs each job that does not depend on one, and every other command refuses
//! to start, naming them all.

use std::fmt;

use crate::{backup::create::Format, Ctx};

/// The writer's settings (SPEC.md section 1), read for `logs archive` and the sidecar's own
/// log.
pub const LOG_SETTINGS: [&str; 14] = [
    "LOG_MAX_BYTES",
    "LOG_BACKUP_COUNT",
    "LOG_ARCHIVE_COUNT",
    "LOG_ARCHIVE_MAX_AGE_DAYS",
    "LOG_COMPRESS_BACKUPS",
    "LOG_BACKUP_DIR",
    "LOG_ARCHIVE_DIR",
    "LOG_MIN_ROTATE_BYTES",
    "LOG_MIN_ROTATE_AGE_SECS",
    "LOG_ROTATE_AT",
    "DISABLE_LOG_ROTATION",
    "LOG_WRITE_MODE",
    "LOG_BUFFER_BYTES",
    "LOG_FLUSH_INTERVAL_MS",
];

/// Whole-number settings of the sidecar's own.
pub const COUNT_SETTINGS: [&str; 7] = [
    "BACKUP_RETENTION_DAYS",
    "BACKUP_MAX_COUNT",
    "MESSAGE_ARCHIVE_RETENTION_DAYS",
    "REMOTE_RETENTION_DAYS",
    "REMOTE_MAX_COUNT",
    "REMOTE_MAX_AGE_DAYS",
    "MIN_FREE_DISK_MB",
];

/// One setting whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BadSetting {
    /// Its name.
    pub name: String,
    /// What is wrong, naming the setting and where the value came from (never the value of
    /// a secret).
    pub what: String,
}

impl fmt::Display for BadSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

/// Every bad setting, in a stable order.
pub fn check(ctx: &Ctx) -> Vec<BadSetting> {
    let mut bad = Vec::new();
    for name in LOG_SETTINGS {
        if let Some(value) = ctx.setting(name) {
            let alone = mhm_log::Settings::from_lookup(|k| (k == name).then(|| value.clone()));
            if let Err(e) = alone {
                let from = ctx.setting_source(name);
                bad.push(BadSetting { name: name.to_string(), what: format!("{e} (from {from})") });
            }
        }
    }
    for name in COUNT_SETTINGS {
        if let Err(e) = ctx.count_setting(None, name, 0) {
            bad.push(BadSetting { name: name.to_string(), what: format!("{e:#}") });
        }
    }
    if let Err(e) = Format::from_settings(ctx, None) {
        bad.push(BadSetting { name: "BACKUP_FORMAT".to_string(), what: format!("{e:#}") });
    }
    bad
}

/// The bad settings among `names` (prefixes end with `_`: `AWS_` is every AWS setting).
pub fn among<'a>(bad: &'a [BadSetting], names: &[&str]) -> Vec<&'a BadSetting> {
    bad.iter()
        .filter(|b| {
            names
                .iter()
                .any(|n| if n.ends_with('_') { b.name.starts_with(n) } else { b.name == *n })
        })
        .collect()
}
