//! Settings: the table of SPEC.md section 1, by hand or from the environment.
//!
//! ```
//! use mhm_log::{RotateAt, Settings};
//! use std::time::Duration;
//!
//! let s = Settings::default().max_bytes(1 << 20).compress(true).rotate_at(RotateAt::UtcMidnight);
//! assert_eq!(s.get_max_bytes(), 1 << 20);
//! assert_eq!(s.get_min_rotate_age(), Duration::from_secs(3600));
//!
//! // Values come from any lookup; a bad one names the variable.
//! let err = Settings::from_lookup(|k| (k == "LOG_MAX_BYTES").then(|| "5MB".to_string())).unwrap_err();
//! assert_eq!(err.name, "LOG_MAX_BYTES");
//! ```

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{clock::Zone, error::SettingsError};

/// When a log's day ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RotateAt {
    /// Midnight in the system's local zone (honouring `TZ`). The default.
    #[default]
    LocalMidnight,
    /// Midnight in UTC.
    UtcMidnight,
    /// No time trigger: only the size trigger rotates.
    Never,
}

/// The zone in which days are counted (copy dates, ages, line timestamps): how the
/// sidecar, which shares `mhm-logfiles` with the writer, counts them alike.
impl From<RotateAt> for Zone {
    fn from(at: RotateAt) -> Self {
        match at {
            RotateAt::UtcMidnight => Zone::Utc,
            RotateAt::LocalMidnight | RotateAt::Never => Zone::Local,
        }
    }
}

/// How events reach the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteMode {
    /// One `write(2)` per event, under the file's lock. A crash (panic, abort, kill) loses
    /// no event whose write returned. The default.
    #[default]
    Direct,
    /// Events are copied into an in-memory buffer ([`Settings::buffer_capacity`], 64 KiB
    /// by default) that is written out when full, at once on every ERROR event, every
    /// [`Settings::flush_interval`] (1 s) from the background thread, on
    /// [`RollingFile::flush`](crate::RollingFile::flush) and when the last handle or the
    /// guard drops. Never drops an event: a full buffer is handed to the background thread
    /// to write, and whoever next needs the spare writes it first if that thread has not.
    /// A crash can lose what is in the buffers: at most twice `buffer_capacity` bytes
    /// written during the last `flush_interval`, and never an ERROR event or anything
    /// written before one.
    Buffered,
    /// Buffered, with a stage per thread in front of the shared buffer: a ring of four
    /// times about `buffer_capacity` (256 KiB with the default buffer; 8 MiB at most) that
    /// its thread fills with no lock, so threads do not hand a lock and its cache lines to
    /// each other on every event (it scales with threads where `Buffered` does not). A
    /// stage holding about `buffer_capacity` (2 MiB at most) asks the background thread to
    /// write it, straight from the ring; its thread writes it itself only when the ring is
    /// full. The price: lines of different threads interleave in chunks (each thread's own
    /// lines stay in order), not in time order; the size trigger counts the thread's own
    /// stage but can overshoot by what other threads hold staged; and a crash can also
    /// lose what the stages hold (normally about a buffer per thread, at most the ring).
    /// Every flush, ERROR event and rotation first takes every thread's staged events.
    Staged,
}

/// Every setting of the writer. `Settings::default()` is SPEC.md's table.
///
/// | setting | env | default |
/// |---|---|---|
/// | [`max_bytes`](Self::max_bytes) | `LOG_MAX_BYTES` | 5242880 |
/// | [`backup_count`](Self::backup_count) | `LOG_BACKUP_COUNT` | 7 |
/// | [`archive_count`](Self::archive_count) | `LOG_ARCHIVE_COUNT` | 7 |
/// | [`archive_max_age`](Self::archive_max_age) | `LOG_ARCHIVE_MAX_AGE_DAYS` | 30 days |
/// | [`compress`](Self::compress) | `LOG_COMPRESS_BACKUPS` | false |
/// | [`backup_dir`](Self::backup_dir) | `LOG_BACKUP_DIR` | `backups/` beside the log |
/// | [`archive_dir`](Self::archive_dir) | `LOG_ARCHIVE_DIR` | `archive/` beside the log |
/// | [`min_rotate_bytes`](Self::min_rotate_bytes) | `LOG_MIN_ROTATE_BYTES` | 5120 |
/// | [`min_rotate_age`](Self::min_rotate_age) | `LOG_MIN_ROTATE_AGE_SECS` | 3600 s |
/// | [`rotate_at`](Self::rotate_at) | `LOG_ROTATE_AT` | `local-midnight` |
/// | [`rotation_disabled`](Self::rotation_disabled) | `DISABLE_LOG_ROTATION` | false |
/// | [`write_mode`](Self::write_mode) | `LOG_WRITE_MODE` | `direct` (or `buffered`, `staged`) |
/// | [`buffer_capacity`](Self::buffer_capacity) | `LOG_BUFFER_BYTES` | 65536 |
/// | [`flush_interval`](Self::flush_interval) | `LOG_FLUSH_INTERVAL_MS` | 1000 ms |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    max_bytes: u64,
    backup_count: usize,
    archive_count: usize,
    archive_max_age: Duration,
    compress: bool,
    backup_dir: Option<PathBuf>,
    archive_dir: Option<PathBuf>,
    min_rotate_bytes: u64,
    min_rotate_age: Duration,
    rotate_at: RotateAt,
    rotation_disabled: bool,
    write_mode: WriteMode,
    buffer_capacity: usize,
    flush_interval: Duration,
    lock_wait: Duration,
    root: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_bytes: 5 * 1024 * 1024,
            backup_count: 7,
            archive_count: 7,
            archive_max_age: Duration::from_secs(30 * 86_400),
            compress: false,
            backup_dir: None,
            archive_dir: None,
            min_rotate_bytes: 5 * 1024,
            min_rotate_age: Duration::from_secs(3600),
            rotate_at: RotateAt::LocalMidnight,
            rotation_disabled: false,
            write_mode: WriteMode::Direct,
            buffer_capacity: 64 * 1024,
            flush_interval: Duration::from_secs(1),
            lock_wait: Duration::from_secs(10),
            root: None,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident / $get:ident : $ty:ty;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.$name = value;
            self
        }

        #[doc = concat!("The value set by [`", stringify!($name), "`](Self::", stringify!($name), ").")]
        pub fn $get(&self) -> $ty {
            self.$name
        }
    )*};
}

impl Settings {
    setters! {
        /// Size trigger: a log is due when the next event would take it past this many bytes.
        max_bytes / get_max_bytes: u64;
        /// Rotated copies kept in `backups/` per log; older ones move to `archive/`.
        backup_count / get_backup_count: usize;
        /// Copies kept in `archive/` per log; older ones are deleted.
        archive_count / get_archive_count: usize;
        /// Archive copies this old or older (by the date in their name) are deleted.
        archive_max_age / get_archive_max_age: Duration;
        /// Gzip copies as they move into `archive/` (on the background thread).
        compress / get_compress: bool;
        /// Gate: a log smaller than this never rotates.
        min_rotate_bytes / get_min_rotate_bytes: u64;
        /// Gate: a log whose active file was started less than this long ago never rotates.
        min_rotate_age / get_min_rotate_age: Duration;
        /// When a day ends: local midnight, UTC midnight, or never.
        rotate_at / get_rotate_at: RotateAt;
        /// Turns every rotation off (both triggers); copies already made are still pruned.
        rotation_disabled / get_rotation_disabled: bool;
        /// Direct (one write per event), buffered, or staged per thread.
        write_mode / get_write_mode: WriteMode;
        /// Buffered mode: bytes held in memory before a write.
        buffer_capacity / get_buffer_capacity: usize;
        /// Buffered mode: the longest an event waits in memory.
        flush_interval / get_flush_interval: Duration;
        /// Opening: the longest it waits for the log's lock file when another process
        /// holds it (10 s). A rotation holds it for a moment; held longer, it is someone
        /// else's doing (any user who can read the file can hold a lock on it), and
        /// opening fails with an error naming the file rather than hang.
        lock_wait / get_lock_wait: Duration;
    }

    /// Folder for rotated copies. Relative paths are resolved against [`root`](Self::root).
    /// Default: `backups/` beside the log.
    #[must_use]
    pub fn backup_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.backup_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Folder for archived copies. Relative paths are resolved against [`root`](Self::root).
    /// Default: `archive/` beside the log.
    #[must_use]
    pub fn archive_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.archive_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The MHM root against which relative `backup_dir`/`archive_dir` are resolved.
    /// Default: the current directory when the writer is built.
    #[must_use]
    pub fn root(mut self, root: impl AsRef<Path>) -> Self {
        self.root = Some(root.as_ref().to_path_buf());
        self
    }

    /// The folder rotated copies of the log at `log` go to.
    pub fn backup_dir_for(&self, log: &Path) -> PathBuf {
        self.resolve(self.backup_dir.as_deref(), log, "backups")
    }

    /// The folder archived copies of the log at `log` go to.
    pub fn archive_dir_for(&self, log: &Path) -> PathBuf {
        self.resolve(self.archive_dir.as_deref(), log, "archive")
    }

    fn resolve(&self, set: Option<&Path>, log: &Path, default: &str) -> PathBuf {
        match set {
            Some(dir) if dir.is_absolute() => dir.to_path_buf(),
            Some(dir) => match &self.root {
                Some(root) => root.join(dir),
                None => dir.to_path_buf(),
            },
            None => log.parent().unwrap_or(Path::new(".")).join(default),
        }
    }

    /// Settings from the process environment; unset variables keep their defaults.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Settings from any source of `NAME -> value` (the sidecar layers flags, the
    /// environment and `.env` this way). Unset names keep their defaults; a value that
    /// does not parse is an error naming the variable, the value and what was expected.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut s = Settings::default();
        let get = |name: &str| lookup(name).map(|v| (name.to_string(), v));
        if let Some((n, v)) = get("LOG_MAX_BYTES") {
            s.max_bytes = parse_bounded(&n, &v, 1, MAX_SIZE_TRIGGER)?;
        }
        if let Some((n, v)) = get("LOG_BACKUP_COUNT") {
            s.backup_count = parse_bounded(&n, &v, 0, MAX_COUNT)?;
        }
        if let Some((n, v)) = get("LOG_ARCHIVE_COUNT") {
            s.archive_count = parse_bounded(&n, &v, 0, MAX_COUNT)?;
        }
        if let Some((n, v)) = get("LOG_ARCHIVE_MAX_AGE_DAYS") {
            let days: u64 = parse_bounded(&n, &v, 1, MAX_DAYS)?;
            s.archive_max_age = Duration::from_secs(days.saturating_mul(86_400));
        }
        if let Some((n, v)) = get("LOG_COMPRESS_BACKUPS") {
            s.compress = parse_bool(&n, &v)?;
        }
        if let Some((n, v)) = get("LOG_BACKUP_DIR") {
            s.backup_dir = Some(parse_dir(&n, &v)?);
        }
        if let Some((n, v)) = get("LOG_ARCHIVE_DIR") {
            s.archive_dir = Some(parse_dir(&n, &v)?);
        }
        if let Some((n, v)) = get("LOG_MIN_ROTATE_BYTES") {
            s.min_rotate_bytes = parse_bounded(&n, &v, 0, MAX_BYTES)?;
        }
        if let Some((n, v)) = get("LOG_MIN_ROTATE_AGE_SECS") {
            s.min_rotate_age = Duration::from_secs(parse_bounded(&n, &v, 0, MAX_DAYS * 86_400)?);
        }
        if let Some((n, v)) = get("LOG_ROTATE_AT") {
            s.rotate_at = match v.trim().to_ascii_lowercase().as_str() {
                "local-midnight" | "local" | "midnight" => RotateAt::LocalMidnight,
                "utc-midnight" | "utc" => RotateAt::UtcMidnight,
                "never" => RotateAt::Never,
                _ => return Err(bad(&n, &v, "local-midnight, utc-midnight or never")),
            };
        }
        if let Some((n, v)) = get("DISABLE_LOG_ROTATION") {
            // Unset and empty both mean "rotation on", as in MHM.
            s.rotation_disabled = !v.trim().is_empty() && parse_bool(&n, &v)?;
        }
        if let Some((n, v)) = get("LOG_WRITE_MODE") {
            s.write_mode = match v.trim().to_ascii_lowercase().as_str() {
                "direct" => WriteMode::Direct,
                "buffered" => WriteMode::Buffered,
                "staged" => WriteMode::Staged,
                _ => return Err(bad(&n, &v, "direct, buffered or staged")),
            };
        }
        if let Some((n, v)) = get("LOG_BUFFER_BYTES") {
            s.buffer_capacity = parse_bounded(&n, &v, 1, MAX_BUFFER_BYTES)?;
        }
        if let Some((n, v)) = get("LOG_FLUSH_INTERVAL_MS") {
            s.flush_interval =
                Duration::from_millis(parse_bounded(&n, &v, 1, MAX_FLUSH_INTERVAL_MS)?);
        }
        Ok(s)
    }

    pub(crate) fn zone(&self) -> Zone {
        self.rotate_at.into()
    }

    /// The retention rule these settings give the writer (no age-based compression).
    pub(crate) fn retention_policy(&self) -> mhm_logfiles::retention::Policy {
        mhm_logfiles::retention::Policy::new(
            self.backup_count,
            self.archive_count,
            self.archive_max_age,
            self.compress,
        )
    }
}

fn bad(name: &str, value: &str, expected: &str) -> SettingsError {
    SettingsError {
        name: name.to_string(),
        value: value.to_string(),
        expected: expected.to_string(),
    }
}

/// The largest `LOG_MIN_ROTATE_BYTES`: 1 TiB. Every number a setting holds has a bound,
/// named in the error (SPEC.md section 8): a value past it is a typo, never a reason to
/// overflow or to allocate.
pub(crate) const MAX_BYTES: u64 = 1 << 40;

/// The largest `LOG_MAX_BYTES`: 2^63 - 1, a size no log reaches. It is how "no size
/// trigger" is said (Python's `maxBytes=0`, which `mhm_log.compat` passes as this value, as
/// Python's own `int` limit for file sizes), so it is not cut to [`MAX_BYTES`].
pub(crate) const MAX_SIZE_TRIGGER: u64 = i64::MAX as u64;

/// The largest count setting (`LOG_BACKUP_COUNT`, `LOG_ARCHIVE_COUNT`): ten million copies,
/// more than any folder should hold. Generous on purpose: a Python caller says "keep every
/// copy" with a large `backupCount` (this package's own tests pass a million), and a
/// count costs nothing until that many copies exist.
pub(crate) const MAX_COUNT: usize = 10_000_000;

/// The largest age in days (`LOG_ARCHIVE_MAX_AGE_DAYS`; `LOG_MIN_ROTATE_AGE_SECS` is at most
/// as many days in seconds): 36500, a hundred years.
pub(crate) const MAX_DAYS: u64 = 36_500;

/// The longest `LOG_FLUSH_INTERVAL_MS`: an hour.
const MAX_FLUSH_INTERVAL_MS: u64 = 3_600_000;

/// The largest `LOG_BUFFER_BYTES` (64 MiB): a buffer is allocated whole, twice (the
/// spare), per log; past this an allocation would abort the process.
pub(crate) const MAX_BUFFER_BYTES: usize = 64 << 20;

fn parse_bounded<T>(name: &str, value: &str, min: T, max: T) -> Result<T, SettingsError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    match value.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => Err(bad(name, value, &format!("a whole number, at least {min} and at most {max}"))),
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, SettingsError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(bad(name, value, "1/true/yes/on or 0/false/no/off")),
    }
}

fn parse_dir(name: &str, value: &str) -> Result<PathBuf, SettingsError> {
    if value.trim().is_empty() {
        return Err(bad(name, value, "a folder path"));
    }
    Ok(PathBuf::from(value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn empty_environment_is_the_default_table() {
        assert_eq!(Settings::from_lookup(|_| None).unwrap(), Settings::default());
        let d = Settings::default();
        assert_eq!(d.get_max_bytes(), 5_242_880);
        assert_eq!(d.get_backup_count(), 7);
        assert_eq!(d.get_archive_count(), 7);
        assert_eq!(d.get_archive_max_age(), Duration::from_secs(30 * 86_400));
        assert!(!d.get_compress());
        assert_eq!(d.get_min_rotate_bytes(), 5120);
        assert_eq!(d.get_min_rotate_age(), Duration::from_secs(3600));
        assert_eq!(d.get_rotate_at(), RotateAt::LocalMidnight);
        assert!(!d.get_rotation_disabled());
    }

    #[test]
    fn every_variable_is_read() {
        let s = Settings::from_lookup(lookup(&[
            ("LOG_MAX_BYTES", "100"),
            ("LOG_BACKUP_COUNT", "2"),
            ("LOG_ARCHIVE_COUNT", "3"),
            ("LOG_ARCHIVE_MAX_AGE_DAYS", "4"),
            ("LOG_COMPRESS_BACKUPS", "true"),
            ("LOG_BACKUP_DIR", "logs/backups"),
            ("LOG_ARCHIVE_DIR", "/var/arch"),
            ("LOG_MIN_ROTATE_BYTES", "5"),
            ("LOG_MIN_ROTATE_AGE_SECS", "6"),
            ("LOG_ROTATE_AT", "utc-midnight"),
            ("DISABLE_LOG_ROTATION", "1"),
            ("LOG_WRITE_MODE", "buffered"),
        ]))
        .unwrap();
        let expected = Settings::default()
            .max_bytes(100)
            .backup_count(2)
            .archive_count(3)
            .archive_max_age(Duration::from_secs(4 * 86_400))
            .compress(true)
            .backup_dir("logs/backups")
            .archive_dir("/var/arch")
            .min_rotate_bytes(5)
            .min_rotate_age(Duration::from_secs(6))
            .rotate_at(RotateAt::UtcMidnight)
            .rotation_disabled(true)
            .write_mode(WriteMode::Buffered);
        assert_eq!(s, expected);
        let staged = Settings::from_lookup(lookup(&[("LOG_WRITE_MODE", "Staged")])).unwrap();
        assert_eq!(staged.get_write_mode(), WriteMode::Staged);
        let root = Settings::default().backup_dir("logs/backups").root("/srv/mhm");
        assert_eq!(
            root.backup_dir_for(Path::new("/x/app.log")),
            Path::new("/srv/mhm/logs/backups")
        );
        assert_eq!(root.archive_dir_for(Path::new("/x/app.log")), Path::new("/x/archive"));
    }

    #[test]
    fn bad_values_name_the_variable_and_value() {
        for (name, value) in [
            ("LOG_MAX_BYTES", "5MB"),
            ("LOG_MAX_BYTES", "0"),
            ("LOG_BACKUP_COUNT", "-1"),
            ("LOG_ARCHIVE_MAX_AGE_DAYS", ""),
            ("LOG_COMPRESS_BACKUPS", "maybe"),
            ("LOG_ROTATE_AT", "hourly"),
            ("DISABLE_LOG_ROTATION", "2"),
            ("LOG_BACKUP_DIR", " "),
            ("LOG_WRITE_MODE", "fast"),
        ] {
            let err = Settings::from_lookup(lookup(&[(name, value)])).unwrap_err();
            assert_eq!((err.name.as_str(), err.value.as_str()), (name, value));
            let text = err.to_string();
            assert!(text.contains(name) && text.contains(&format!("{value:?}")), "{text}");
        }
    }

    // regression: `LOG_MAX_BYTES=18446744073709551615` and `LOG_BACKUP_COUNT=100000000` were
    // taken silently; every number now has a bound, named in the error.
    #[test]
    fn every_number_has_a_bound_named_in_the_error() {
        for (name, max) in [
            ("LOG_MAX_BYTES", "9223372036854775807"),
            ("LOG_BACKUP_COUNT", "10000000"),
            ("LOG_ARCHIVE_COUNT", "10000000"),
            ("LOG_ARCHIVE_MAX_AGE_DAYS", "36500"),
            ("LOG_MIN_ROTATE_BYTES", "1099511627776"),
            ("LOG_MIN_ROTATE_AGE_SECS", "3153600000"),
            ("LOG_BUFFER_BYTES", "67108864"),
            ("LOG_FLUSH_INTERVAL_MS", "3600000"),
        ] {
            assert!(Settings::from_lookup(lookup(&[(name, max)])).is_ok(), "{name}={max}");
            let past = format!("{}1", max);
            for value in [past.as_str(), "18446744073709551615", "99999999999999999999"] {
                let err = Settings::from_lookup(lookup(&[(name, value)])).unwrap_err();
                let text = err.to_string();
                assert!(text.contains(name) && text.contains(&format!("at most {max}")), "{text}");
            }
        }
    }
}
