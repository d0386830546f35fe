//! Every setting the sidecar reads, parsed once and checked at once (SPEC.md section 7): every bad value
//! is named, never only the first; `status` reports them as reasons it is unhealthy,
//! `maintain` runs each job that does not depend on one, and every other command refuses
//! to start, naming them all.

use std::fmt;

use anyhow::Result;

use crate::{envfile, error::UsageError};

/// A setting's value and where it came from (the environment, or `.env` as the output
/// shows it); `None` when it is unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

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

/// The sidecar's other settings: `BACKUP_FORMAT`, the off-site ones and the alerts'.
pub const OTHER_SETTINGS: [&str; 11] = [
    "BACKUP_FORMAT",
    "MHM_REMOTE_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "MHM_REMOTE_RECIPIENT",
    "MHM_REMOTE_IDENTITY_FILE",
    "MHM_NOTIFY_URL",
    "MHM_NOTIFY_COMMAND",
];

/// Whether the sidecar reads `name` (a `.env` line of another key that does not parse is
/// only a warning: python-dotenv skips it, and nothing here would use it).
pub fn reads(name: &str) -> bool {
    LOG_SETTINGS.contains(&name) || COUNT_SETTINGS.contains(&name) || OTHER_SETTINGS.contains(&name)
}

/// One setting whose value does not parse.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BadSetting {
    /// Its name; empty for a `.env` line whose key could not be read (it may be any
    /// setting: every command but `status` and `maintain` stops on it).
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

/// A whole-number setting as read when the context was made: its value (the default
/// when it is unset), or what is wrong with it, said when a command asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Count {
    name: &'static str,
    default: u64,
    max: u64,
    value: Result<u64, String>,
}

/// The largest day count a setting takes (`*_DAYS`): 36500, a hundred years.
pub const MAX_DAYS: u64 = 36_500;
/// The largest number of copies a setting keeps (`*_MAX_COUNT`): 100000.
pub const MAX_COUNT: u64 = 100_000;
/// The largest `MIN_FREE_DISK_MB`: 1048576 (1 TiB).
pub const MAX_DISK_MB: u64 = 1 << 20;

impl Count {
    /// `name` from `lookup`, else `default`; a value past `max` is bad.
    fn read(lookup: Lookup<'_>, name: &'static str, default: u64, max: u64) -> Self {
        let value = match lookup(name) {
            Some((v, from)) => {
                envfile::parse_count(name, &v, &from, max).map_err(|e| format!("{e:#}"))
            }
            None => Ok(default),
        };
        Self { name, default, max, value }
    }

    /// The largest value it takes.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The setting's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its value; a bad one is a usage error naming the setting and where it came from.
    pub fn get(&self) -> Result<u64> {
        self.value.clone().map_err(|what| UsageError(what).into())
    }

    /// Its value, or its default when the value is bad (for `status`, which reports the
    /// bad value apart and goes on).
    pub fn get_or_default(&self) -> u64 {
        self.value.clone().unwrap_or(self.default)
    }

    /// `flag` when given (a command-line flag overrides the setting), else [`Count::get`].
    pub fn or_flag(&self, flag: Option<u64>) -> Result<u64> {
        flag.map_or_else(|| self.get(), Ok)
    }
}

/// The format a new backup takes: a zip, or a folder in the service's own shape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `<name>.zip` (the default).
    #[default]
    Zip,
    /// `<name>/`: the service's own directory shape (a `manifest.json` its `BackupManager`
    /// reads, `users/`, `config/`, ... beside it), with this tool's digests in the manifest.
    Directory,
}

impl Format {
    /// `value` as a backup format; `from` names where it came from (`--format`, the
    /// environment, `.env`) in the error.
    pub fn parse(value: &str, from: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "zip" => Ok(Format::Zip),
            "directory" | "dir" | "folder" => Ok(Format::Directory),
            _ => Err(crate::error::usage(format!(
                "BACKUP_FORMAT ({from}): {value:?} is not a backup format: use zip or directory"
            ))),
        }
    }
}

/// The sidecar's own settings (SPEC.md sections 3, 4, 7, 10), each parsed once when the
/// context is made: every bad value is known at once ([`check`] names them all), and each
/// module takes the one it needs from here instead of looking a name up. A bad value stops
/// only what asks for it (SPEC 7: `maintain` runs every job that does not depend on it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sidecar {
    /// `BACKUP_RETENTION_DAYS` (30).
    pub backup_retention_days: Count,
    /// `BACKUP_MAX_COUNT` (10).
    pub backup_max_count: Count,
    /// `MESSAGE_ARCHIVE_RETENTION_DAYS` (90): archive files this old go (0 keeps them).
    pub message_retention_days: Count,
    /// `REMOTE_RETENTION_DAYS` (90).
    pub remote_retention_days: Count,
    /// `REMOTE_MAX_COUNT` (20).
    pub remote_max_count: Count,
    /// `REMOTE_MAX_AGE_DAYS` (8): an older newest off-site copy is unhealthy.
    pub remote_max_age_days: Count,
    /// `MIN_FREE_DISK_MB` (500): below it the root is unhealthy.
    pub min_free_disk_mb: Count,
    /// `BACKUP_FORMAT` (zip), or what is wrong with it.
    backup_format: Result<Format, String>,
    /// The writer's settings (LOG_*) whose value does not parse, each alone.
    bad_log: Vec<BadSetting>,
    /// The off-site settings whose value does not parse (`MHM_REMOTE_URL`,
    /// `AWS_ENDPOINT_URL`, `MHM_REMOTE_RECIPIENT`), checked without the network.
    bad_remote: Vec<BadSetting>,
    /// The `.env` lines that do not parse and hold a setting the sidecar reads (or whose
    /// key could not be read), each as a bad value of its key.
    bad_dotenv: Vec<BadSetting>,
    /// The `.env` lines that do not parse and hold no setting the sidecar reads.
    dotenv_warnings: Vec<String>,
}

impl Default for Sidecar {
    /// Every one at its default.
    fn default() -> Self {
        let count = |name, default, max| Count { name, default, max, value: Ok(default) };
        Self {
            backup_retention_days: count("BACKUP_RETENTION_DAYS", 30, MAX_DAYS),
            backup_max_count: count("BACKUP_MAX_COUNT", 10, MAX_COUNT),
            message_retention_days: count("MESSAGE_ARCHIVE_RETENTION_DAYS", 90, MAX_DAYS),
            remote_retention_days: count("REMOTE_RETENTION_DAYS", 90, MAX_DAYS),
            remote_max_count: count("REMOTE_MAX_COUNT", 20, MAX_COUNT),
            remote_max_age_days: count("REMOTE_MAX_AGE_DAYS", 8, MAX_DAYS),
            min_free_disk_mb: count("MIN_FREE_DISK_MB", 500, MAX_DISK_MB),
            backup_format: Ok(Format::Zip),
            bad_log: Vec::new(),
            bad_remote: Vec::new(),
            bad_dotenv: Vec::new(),
            dotenv_warnings: Vec::new(),
        }
    }
}

impl Sidecar {
    /// Every one of them from `lookup` (the environment, then `.env`), else its default;
    /// and which of the writer's settings are bad.
    pub fn read(lookup: Lookup<'_>) -> Self {
        let backup_format = match lookup("BACKUP_FORMAT") {
            Some((v, from)) => Format::parse(&v, &from).map_err(|e| format!("{e:#}")),
            None => Ok(Format::Zip),
        };
        let bad_log = LOG_SETTINGS
            .into_iter()
            .filter_map(|name| {
                let (value, from) = lookup(name)?;
                let alone = mhm_log::Settings::from_lookup(|k| (k == name).then(|| value.clone()));
                let e = alone.err()?;
                Some(BadSetting { name: name.to_string(), what: format!("{e} (from {from})") })
            })
            .collect();
        let defaults = Self::default();
        let read = |c: &Count| Count::read(lookup, c.name, c.default, c.max);
        Self {
            backup_retention_days: read(&defaults.backup_retention_days),
            backup_max_count: read(&defaults.backup_max_count),
            message_retention_days: read(&defaults.message_retention_days),
            remote_retention_days: read(&defaults.remote_retention_days),
            remote_max_count: read(&defaults.remote_max_count),
            remote_max_age_days: read(&defaults.remote_max_age_days),
            min_free_disk_mb: read(&defaults.min_free_disk_mb),
            backup_format,
            bad_log,
            bad_remote: crate::remote::config::bad_settings(lookup),
            bad_dotenv: Vec::new(),
            dotenv_warnings: Vec::new(),
        }
    }

    /// The same settings, with the `.env` lines that do not parse (skipped, as
    /// python-dotenv skips them): one whose key the sidecar reads is a bad value of that
    /// key (unless `in_environment` says the environment sets it: then the line is not
    /// used), one whose key could not be read is a bad setting of no name, any other a
    /// warning.
    #[must_use]
    pub(crate) fn with_dotenv_lines(
        mut self,
        lines: Vec<envfile::BadLine>,
        in_environment: impl Fn(&str) -> bool,
    ) -> Self {
        for line in lines {
            match line.key {
                Some(key) if reads(&key) && !in_environment(&key) => {
                    self.bad_dotenv.push(BadSetting { name: key, what: line.what });
                }
                Some(_) => self.dotenv_warnings.push(line.what),
                None => self.bad_dotenv.push(BadSetting { name: String::new(), what: line.what }),
            }
        }
        self
    }

    /// The `.env` lines that do not parse and hold no setting the sidecar reads: named,
    /// never a reason to stop.
    pub fn warnings(&self) -> &[String] {
        &self.dotenv_warnings
    }

    /// Whether `name` is among the bad settings.
    pub fn is_bad(&self, name: &str) -> bool {
        self.bad().iter().any(|b| b.name == name)
    }

    /// The whole-number settings, in [`COUNT_SETTINGS`]' order.
    pub fn counts(&self) -> [&Count; 7] {
        [
            &self.backup_retention_days,
            &self.backup_max_count,
            &self.message_retention_days,
            &self.remote_retention_days,
            &self.remote_max_count,
            &self.remote_max_age_days,
            &self.min_free_disk_mb,
        ]
    }

    /// Every bad setting, in a stable order: the `.env` lines that do not parse, the
    /// writer's, the sidecar's, then the off-site ones.
    pub fn bad(&self) -> Vec<BadSetting> {
        let mut bad = self.bad_dotenv.clone();
        bad.extend(self.bad_log.iter().cloned());
        for count in self.counts() {
            if let Err(e) = count.get() {
                bad.push(BadSetting { name: count.name().to_string(), what: format!("{e:#}") });
            }
        }
        if let Err(e) = self.backup_format(None) {
            bad.push(BadSetting { name: "BACKUP_FORMAT".to_string(), what: format!("{e:#}") });
        }
        bad.extend(self.bad_remote.iter().cloned());
        bad
    }

    /// The writer's settings (LOG_*) that are bad.
    pub fn bad_log(&self) -> &[BadSetting] {
        &self.bad_log
    }

    /// `flag` (`--format`) when given, else `BACKUP_FORMAT`, else zip.
    pub fn backup_format(&self, flag: Option<&str>) -> Result<Format> {
        match flag {
            Some(v) => Format::parse(v, "--format"),
            None => self.backup_format.clone().map_err(|what| UsageError(what).into()),
        }
    }
}

/// The bad settings among `names` (prefixes end with `_`: `AWS_` is every AWS setting).
/// A bad `.env` line whose key could not be read (no name) may hold any setting, so it is
/// among every list: a job never runs on defaults in its place.
pub fn among<'a>(bad: &'a [BadSetting], names: &[&str]) -> Vec<&'a BadSetting> {
    bad.iter()
        .filter(|b| {
            b.name.is_empty()
                || names.iter().any(|n| {
                    if n.ends_with('_') {
                        b.name.starts_with(n)
                    } else {
                        b.name == *n
                    }
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bad_line_of_no_name_is_among_every_list() {
        let bad = [
            super::BadSetting { name: String::new(), what: "line 3".into() },
            super::BadSetting { name: "LOG_MAX_BYTES".into(), what: "x".into() },
        ];
        assert_eq!(super::among(&bad, &["BACKUP_"]).len(), 1);
        assert_eq!(super::among(&bad, &["LOG_"]).len(), 2);
        assert!(super::among(&bad[1..], &["BACKUP_"]).is_empty());
    }

    use super::*;

    #[test]
    fn counts_are_in_the_order_of_their_names() {
        let names: Vec<&str> = Sidecar::default().counts().iter().map(|c| c.name()).collect();
        assert_eq!(names, COUNT_SETTINGS);
        let read = Sidecar::read(&|_| None);
        assert_eq!(read, Sidecar::default());
        assert!(read.bad().is_empty());
    }

    // regression: `BACKUP_MAX_COUNT=1000000000` and `BACKUP_RETENTION_DAYS=10000000000`
    // were taken silently, and `99999999999999999999` said only "expected a whole number".
    #[test]
    fn every_count_has_a_bound_named_in_the_error() {
        for count in Sidecar::default().counts() {
            let (name, max) = (count.name(), count.max());
            let at = |value: String| {
                let s = Sidecar::read(&|n| (n == name).then(|| (value.clone(), ".env".into())));
                s.bad()
            };
            assert!(at(max.to_string()).is_empty(), "{name}={max}");
            for value in [format!("{max}1"), "99999999999999999999".into()] {
                let bad = at(value.clone());
                assert_eq!(bad.len(), 1, "{name}={value}");
                assert_eq!(bad[0].name, name);
                assert!(bad[0].what.contains(&format!("at most {max}")), "{}", bad[0].what);
            }
        }
    }
}
