//! What the library hands back besides its reports: problems, and progress as it goes.
//!
//! A [`Problem`] names the file (or entry), says what is wrong with it and of which
//! [`ProblemKind`]; it renders as the one line `<path>: <what>` that the binary prints, and
//! serialises as `{"path", "kind", "what"}`. Progress goes to a
//! [`Progress`] given to the [`Ctx`](crate::Ctx): the binary draws bars on a terminal, a
//! test or a service passes [`NoProgress`].

use std::{fmt, io};

use serde::Serialize;

/// One thing wrong, naming where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file, folder or entry (as shown to the user), when there is one.
    pub path: Option<String>,
    /// Which kind of problem (for scripts to match on).
    pub kind: ProblemKind,
    /// What is wrong with it.
    pub what: String,
}

/// The kinds of [`Problem`] (the JSON's `kind`; README, "JSON").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Something that should be there is not (a file, a backup, a user, a field).
    Missing,
    /// It is there and wrong: corrupt, malformed, not matching its manifest.
    Invalid,
    /// Refused by a safety rule (a link leading outside, an unsafe name).
    Refused,
    /// Left out on purpose, and said so (a special file, a file gone meanwhile).
    Skipped,
    /// It could not be read, opened or deleted (the OS's error follows).
    Unreadable,
}

impl ProblemKind {
    /// The kind a message describes, by the words every message of the kind uses.
    fn of(what: &str) -> Self {
        let w = what.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|x| w.contains(x));
        if has(&["skipped", "left out", "gone since it was listed"]) {
            ProblemKind::Skipped
        } else if w.starts_with("refused") || has(&["refused", "pointing outside", "leads outside"])
        {
            ProblemKind::Refused
        } else if has(&[
            "cannot read",
            "cannot open",
            "cannot be read",
            "cannot delete",
            "could not be read",
            "unreachable",
        ]) {
            ProblemKind::Unreadable
        } else if w == "missing"
            || has(&[
                "is missing",
                "no such",
                "does not exist",
                "not found",
                "but not in the zip",
                "the zip does not hold",
            ])
        {
            ProblemKind::Missing
        } else {
            ProblemKind::Invalid
        }
    }
}

impl Problem {
    /// A problem with `path`; its kind is the one its words describe.
    pub fn at(path: impl fmt::Display, what: impl Into<String>) -> Self {
        let what = what.into();
        Self { path: Some(path.to_string()), kind: ProblemKind::of(&what), what }
    }

    /// A problem that names no single file (the message says what it is about).
    pub fn general(what: impl Into<String>) -> Self {
        let what = what.into();
        Self { path: None, kind: ProblemKind::of(&what), what }
    }

    /// The same problem, of `kind`.
    #[must_use]
    pub fn of_kind(mut self, kind: ProblemKind) -> Self {
        self.kind = kind;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{p}: {}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

/// `Display`, and `Serialize` as that text, for an outcome enum of unit variants and a
/// `Failed(why)`: each unit variant is said as its phrase, `Failed(why)` as `failed: <why>`,
/// in a table and in JSON alike. The one implementation behind `backup::PruneResult` and
/// `archival::StepResult`.
macro_rules! outcome_text {
    ($ty:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                match self {
                    $($ty::$variant => f.write_str($text),)+
                    $ty::Failed(why) => write!(f, "failed: {why}"),
                }
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}
pub(crate) use outcome_text;

/// Reports progress of long work (a backup, a restore, a snapshot, compressing logs).
pub trait Progress: Send + Sync {
    /// Starts a bar for `total` bytes of work called `what`.
    fn start(&self, what: &str, total: u64) -> Box<dyn Bar>;
}

/// One piece of long work under way.
pub trait Bar: Send + Sync {
    /// `n` more bytes done.
    fn inc(&self, n: u64);
    /// Done: remove the bar.
    fn finish(&self);
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) -> Box<dyn Bar> {
        Box::new(NoProgress)
    }
}

impl Bar for NoProgress {
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}

/// A reader that tells a [`Bar`] how many bytes went through it.
pub(crate) struct BarReader<'a, R> {
    /// What is read.
    pub inner: R,
    /// Told each read's size.
    pub bar: &'a dyn Bar,
}

impl<R: io::Read> io::Read for BarReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_words_of_each_message() {
        let k = |w: &str| Problem::at("p", w).kind;
        assert_eq!(k("missing"), ProblemKind::Missing);
        assert_eq!(k("no such backup"), ProblemKind::Missing);
        assert_eq!(k("SHA-256 differs from the manifest"), ProblemKind::Invalid);
        assert_eq!(k("refused: a link pointing outside"), ProblemKind::Refused);
        assert_eq!(k("not a regular file, skipped"), ProblemKind::Skipped);
        assert_eq!(k("cannot open: denied"), ProblemKind::Unreadable);
        let json = serde_json::to_value(Problem::at("a/b", "corrupt: x")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "a/b", "kind": "invalid", "what": "corrupt: x"})
        );
    }

    #[derive(Debug)]
    enum Outcome {
        Done,
        Failed(String),
    }

    outcome_text!(Outcome { Done => "done" });

    #[test]
    fn an_outcome_is_said_the_same_in_a_table_and_in_json() {
        assert_eq!(Outcome::Done.to_string(), "done");
        let failed = Outcome::Failed("no space".into());
        assert_eq!(failed.to_string(), "failed: no space");
        assert_eq!(serde_json::to_string(&failed).unwrap(), r#""failed: no space""#);
    }
}
