//! What the library hands back besides its reports: problems, and progress as it goes.
//!
//! A [`Problem`] names the file (or entry) and says what is wrong with it; it renders and
//! serialises as the one line `<path>: <what>` that the binary prints. Progress goes to a
//! [`Progress`] given to the [`Ctx`](crate::Ctx): the binary draws bars on a terminal, a
//! test or a service passes [`NoProgress`].

use std::{fmt, io};

use serde::{Serialize, Serializer};

/// One thing wrong, naming where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file, folder or entry (as shown to the user), when there is one.
    pub path: Option<String>,
    /// What is wrong with it.
    pub what: String,
}

impl Problem {
    /// A problem with `path`.
    pub fn at(path: impl fmt::Display, what: impl Into<String>) -> Self {
        Self { path: Some(path.to_string()), what: what.into() }
    }

    /// A problem that names no single file (the message says what it is about).
    pub fn general(what: impl Into<String>) -> Self {
        Self { path: None, what: what.into() }
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

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

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
pub struct BarReader<'a, R> {
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
