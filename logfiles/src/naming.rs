//! Copy names: the one place that formats and parses `<name>.log.<YYYY-MM-DD>[.N][.gz]`.
//!
//! The writer names copies with it and the sidecar reads them with it, so the two can
//! never disagree on what a copy is called, which log it belongs to or how old it is.
//!
//! ```
//! use mhm_logfiles::naming::CopyName;
//! use chrono::NaiveDate;
//!
//! let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
//! let name = CopyName::new("app.log", day, 2).gz(true);
//! assert_eq!(name.to_string(), "app.log.2026-11-26.2.gz");
//! assert_eq!(CopyName::parse("app.log.2026-11-26.2.gz"), Some(name));
//! assert_eq!(CopyName::parse_for("app.log", "errors.log.2026-11-26"), None);
//! ```

use std::{cmp::Ordering, fmt};

use chrono::NaiveDate;

/// The parsed name of one rotated copy of a log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CopyName {
    /// The active file's name, e.g. `app.log`.
    pub log: String,
    /// The day the copy's first event was written. `None` for foreign numbered copies
    /// (`app.log.1`, as Python's `RotatingFileHandler` leaves them): their age comes from
    /// the file's mtime.
    pub date: Option<NaiveDate>,
    /// `0` for the first copy of a day, then `1`, `2`, ... in the order written.
    pub seq: u32,
    /// Whether the copy is gzip-compressed (`.gz`).
    pub gz: bool,
}

impl CopyName {
    /// The name of copy `seq` of `log` for `date`, uncompressed.
    pub fn new(log: impl Into<String>, date: NaiveDate, seq: u32) -> Self {
        Self { log: log.into(), date: Some(date), seq, gz: false }
    }

    /// The same name with or without `.gz`.
    #[must_use]
    pub fn gz(mut self, gz: bool) -> Self {
        self.gz = gz;
        self
    }

    /// Parses any copy name: `<log>.<YYYY-MM-DD>[.N][.gz]` or `<log>.<N>[.gz]`.
    /// Hidden files (`.tmp-*`) and names with neither a date nor a number are not copies.
    pub fn parse(file_name: &str) -> Option<Self> {
        if file_name.starts_with('.') {
            return None;
        }
        let (rest, gz) = match file_name.strip_suffix(".gz") {
            Some(rest) => (rest, true),
            None => (file_name, false),
        };
        let (rest, seq) = match rest.rsplit_once('.') {
            Some((head, tail)) if is_seq(tail) => (head, Some(tail.parse().ok()?)),
            _ => (rest, None),
        };
        let (log, date) = match rest.rsplit_once('.') {
            Some((head, tail)) => match parse_date(tail) {
                Some(date) => (head, Some(date)),
                None => (rest, None),
            },
            None => (rest, None),
        };
        if log.is_empty() || (date.is_none() && seq.is_none()) {
            return None;
        }
        Some(Self { log: log.to_string(), date, seq: seq.unwrap_or(0), gz })
    }

    /// Parses `file_name` as a copy of the log named `log` (e.g. `app.log`); `None` for
    /// other logs' copies and foreign files.
    pub fn parse_for(log: &str, file_name: &str) -> Option<Self> {
        let rest = file_name.strip_prefix(log)?.strip_prefix('.')?;
        // Reject `app.log.x.2026-01-01` for `app.log`: the log name must match whole.
        let parsed = Self::parse(file_name)?;
        (parsed.log == log && !rest.is_empty()).then_some(parsed)
    }

    /// The order copies were written in: by date, then number. Copies without a date
    /// sort by number only, before dated ones (callers with mtimes order those).
    pub fn order(&self, other: &Self) -> Ordering {
        (self.date, self.seq).cmp(&(other.date, other.seq))
    }

    /// The same copy's name without `.gz`.
    pub fn plain(&self) -> Self {
        self.clone().gz(false)
    }
}

impl fmt::Display for CopyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.log)?;
        match self.date {
            Some(date) => {
                write!(f, ".{}", date.format("%Y-%m-%d"))?;
                if self.seq > 0 {
                    write!(f, ".{}", self.seq)?;
                }
            }
            None => write!(f, ".{}", self.seq)?,
        }
        if self.gz {
            f.write_str(".gz")?;
        }
        Ok(())
    }
}

fn is_seq(s: &str) -> bool {
    !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn parses_the_shapes_spec_names() {
        assert_eq!(
            CopyName::parse("app.log.2026-11-26"),
            Some(CopyName::new("app.log", day(2026, 11, 26), 0))
        );
        assert_eq!(
            CopyName::parse("discord.log.2026-01-02.3.gz"),
            Some(CopyName::new("discord.log", day(2026, 1, 2), 3).gz(true))
        );
        assert_eq!(
            CopyName::parse("app.log.1"),
            Some(CopyName { log: "app.log".into(), date: None, seq: 1, gz: false })
        );
        for not_a_copy in [
            "app.log",
            "app.log.gz",
            ".tmp-app.log.2026-01-01.gz",
            "notes.txt",
            "app.log.2026-13-01",
            "2026-01-01",
            "app.log.bak",
        ] {
            assert_eq!(CopyName::parse(not_a_copy), None, "{not_a_copy}");
        }
    }

    #[test]
    fn parse_for_matches_the_whole_log_name() {
        assert!(CopyName::parse_for("app.log", "app.log.2026-01-01").is_some());
        assert!(CopyName::parse_for("app.log", "myapp.log.2026-01-01").is_none());
        assert!(CopyName::parse_for("app.log", "app.log.old.2026-01-01").is_none());
        assert!(CopyName::parse_for("app", "app.log.2026-01-01").is_none());
    }

    #[test]
    fn date_then_number_is_write_order() {
        let mut names: Vec<CopyName> = [
            "app.log.2026-01-02",
            "app.log.2026-01-01.10",
            "app.log.2026-01-01.2",
            "app.log.2026-01-01",
        ]
        .iter()
        .map(|n| CopyName::parse(n).unwrap())
        .collect();
        names.sort_by(CopyName::order);
        let text: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "app.log.2026-01-01",
                "app.log.2026-01-01.2",
                "app.log.2026-01-01.10",
                "app.log.2026-01-02"
            ]
        );
    }

    proptest! {
        #[test]
        fn names_round_trip(stem in "[a-z_][a-z0-9_]{0,12}", days in 0u32..40_000, seq in 0u32..100_000, gz: bool) {
            let date = day(1970, 1, 1) + chrono::Days::new(days.into());
            let name = CopyName::new(format!("{stem}.log"), date, seq).gz(gz);
            let text = name.to_string();
            prop_assert_eq!(CopyName::parse(&text), Some(name.clone()));
            prop_assert_eq!(CopyName::parse_for(&name.log, &text), Some(name));
        }
    }
}
