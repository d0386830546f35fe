//! What the binary prints, without ever panicking (SPEC.md section 7: a closed pipe, as in
//! `status | head -1`, ends a command quietly with the exit code it would have had).
//!
//! `println!` and `eprintln!` are shadowed crate-wide (in `main.rs`) by macros that come
//! here: the first write that fails (the reader went away) stops all further output to
//! that stream, and the command runs on to its own exit code, as `git` and `ripgrep` do.

use std::{
    fmt,
    io::{self, Write},
    sync::atomic::{AtomicBool, Ordering},
};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
static STDERR_CLOSED: AtomicBool = AtomicBool::new(false);

/// One line to stdout, unless it was closed.
pub fn line(args: fmt::Arguments<'_>) {
    if !STDOUT_CLOSED.load(Ordering::Relaxed) && writeln!(io::stdout().lock(), "{args}").is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line to stderr, unless it was closed.
pub fn error_line(args: fmt::Arguments<'_>) {
    if !STDERR_CLOSED.load(Ordering::Relaxed) && writeln!(io::stderr().lock(), "{args}").is_err() {
        STDERR_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether `err` is stdout having been closed: then nothing more is written, and it is not
/// an error of the command's.
pub fn closed(err: &io::Error) -> bool {
    let closed = err.kind() == io::ErrorKind::BrokenPipe;
    if closed {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
    closed
}

/// A table measured from its content: each column as wide as its widest cell, two spaces
/// between columns, numbers (and sizes) right-aligned, no trailing spaces.
pub struct Table {
    header: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these columns; a name starting with `>` is right-aligned (the `>` is
    /// not shown).
    pub fn new(columns: &[&'static str]) -> Self {
        Self {
            header: columns.iter().map(|c| c.trim_start_matches('>')).collect(),
            right: columns.iter().map(|c| c.starts_with('>')).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (one cell per column).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The lines, header first.
    pub fn lines(&self) -> Vec<String> {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let render = |cells: &mut dyn Iterator<Item = &str>| {
            let mut line = String::new();
            for (i, cell) in cells.enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(width(cell));
                if self.right.get(i).copied().unwrap_or(false) {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            line.trim_end().to_string()
        };
        let mut out = vec![render(&mut self.header.iter().copied())];
        for row in &self.rows {
            out.push(render(&mut row.iter().map(String::as_str)));
        }
        out
    }

    /// Prints it (quietly stopping at a closed stdout).
    pub fn print(&self) {
        for l in self.lines() {
            line(format_args!("{l}"));
        }
    }
}

/// `bytes` in human units, as `ls -h` and `restic` show them: `406.4 KiB`, `12 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A time as tables show it: to the second, in the local zone (`TZ`), without the offset
/// (one zone for every row): `2026-12-07 15:39:23`.
pub fn time<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>) -> String {
    t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_whatever_the_content() {
        let mut t = Table::new(&["name", ">size", "valid"]);
        t.row(vec!["a-very-long-backup-name".into(), size(406_364), "yes".into()]);
        t.row(vec!["b".into(), size(12), "NO".into()]);
        assert_eq!(
            t.lines(),
            [
                "name                          size  valid",
                "a-very-long-backup-name  396.8 KiB  yes",
                "b                             12 B  NO",
            ]
        );
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(5 * 1024 * 1024), "5.0 MiB");
    }
}
