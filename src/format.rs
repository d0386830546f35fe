//! Line formats: MHM's `YYYY-MM-DD HH:MM:SS,mmm - <target> - <LEVEL> - <message> | {..}`
//! and JSON lines, written straight into a reused buffer.
//!
//! Nothing here allocates once the thread's buffers have grown to the longest line seen:
//! the timestamp text is cached per second (one zone lookup a second, not per event),
//! numbers go through `itoa`, and field values are escaped as they are written.

use std::fmt::{self, Write as _};

use tracing_core::{
    field::{Field, Visit},
    Event, Level,
};

use crate::clock::{from_nanos, Zone};

/// The line format of a [`LogFiles`](crate::LogFiles) layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// `2026-11-26 21:00:00,123 - mhm::discord - INFO - connected | {"user": 42}`: MHM's
    /// (Python logging's) format; `| {...}` only when the event has fields besides the
    /// message. Levels are spelled as Python spells them (`WARNING`).
    #[default]
    Mhm,
    /// One JSON object a line: `{"timestamp": "2026-11-26T21:00:00.123+01:00", "level":
    /// "INFO", "target": "mhm::discord", "message": "connected", "fields": {"user": 42}}`.
    Json,
}

/// One thread's reusable buffers.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    pub(crate) line: Vec<u8>,
    fields: Vec<u8>,
    cache: TimeCache,
}

#[derive(Debug)]
struct TimeCache {
    sec: i64,
    zone: Zone,
    /// `YYYY-MM-DD HH:MM:SS`
    text: [u8; 19],
    /// `+HH:MM`
    offset: [u8; 6],
}

impl Default for TimeCache {
    fn default() -> Self {
        Self { sec: i64::MIN, zone: Zone::Utc, text: [b'0'; 19], offset: *b"+00:00" }
    }
}

impl TimeCache {
    #[inline]
    fn refresh(&mut self, nanos: i64, zone: Zone) -> u32 {
        let sec = nanos.div_euclid(1_000_000_000);
        let millis = (nanos.rem_euclid(1_000_000_000) / 1_000_000) as u32;
        if sec != self.sec || zone != self.zone {
            self.fill(sec, zone);
        }
        millis
    }

    #[cold]
    fn fill(&mut self, sec: i64, zone: Zone) {
        let utc = from_nanos(sec.saturating_mul(1_000_000_000));
        let (local, offset_secs) = match zone {
            Zone::Utc => (utc.naive_utc(), 0),
            Zone::Local => {
                let t = utc.with_timezone(&chrono::Local);
                (t.naive_local(), t.offset().local_minus_utc())
            }
        };
        let mut text = String::with_capacity(19);
        let _ = write!(text, "{}", local.format("%Y-%m-%d %H:%M:%S"));
        if text.len() == 19 {
            self.text.copy_from_slice(text.as_bytes());
        }
        let sign = if offset_secs < 0 { '-' } else { '+' };
        let off = offset_secs.unsigned_abs() / 60;
        let mut o = String::with_capacity(6);
        let _ = write!(o, "{sign}{:02}:{:02}", off / 60, off % 60);
        if o.len() == 6 {
            self.offset.copy_from_slice(o.as_bytes());
        }
        self.sec = sec;
        self.zone = zone;
    }
}

fn level_name(level: &Level, format: Format) -> &'static str {
    match (*level, format) {
        (Level::ERROR, _) => "ERROR",
        (Level::WARN, Format::Mhm) => "WARNING",
        (Level::WARN, _) => "WARN",
        (Level::INFO, _) => "INFO",
        (Level::DEBUG, _) => "DEBUG",
        _ => "TRACE",
    }
}

fn push_millis(out: &mut Vec<u8>, millis: u32) {
    out.extend_from_slice(&[
        b'0' + (millis / 100) as u8,
        b'0' + (millis / 10 % 10) as u8,
        b'0' + (millis % 10) as u8,
    ]);
}

impl LineBuf {
    /// Formats `event` at `now` into `self.line` (cleared first), ending in `\n`.
    pub(crate) fn format(&mut self, format: Format, zone: Zone, now: i64, event: &Event<'_>) {
        let meta = event.metadata();
        let millis = self.cache.refresh(now, zone);
        self.line.clear();
        self.fields.clear();
        let json = format == Format::Json;
        match format {
            Format::Json => {
                self.line.extend_from_slice(b"{\"timestamp\": \"");
                self.line.extend_from_slice(&self.cache.text[..10]);
                self.line.push(b'T');
                self.line.extend_from_slice(&self.cache.text[11..]);
                self.line.push(b'.');
                push_millis(&mut self.line, millis);
                self.line.extend_from_slice(&self.cache.offset);
                self.line.extend_from_slice(b"\", \"level\": \"");
                self.line.extend_from_slice(level_name(meta.level(), format).as_bytes());
                self.line.extend_from_slice(b"\", \"target\": \"");
                escape_into(&mut self.line, meta.target());
                self.line.extend_from_slice(b"\", \"message\": \"");
            }
            _ => {
                self.line.extend_from_slice(&self.cache.text);
                self.line.push(b',');
                push_millis(&mut self.line, millis);
                self.line.extend_from_slice(b" - ");
                self.line.extend_from_slice(meta.target().as_bytes());
                self.line.extend_from_slice(b" - ");
                self.line.extend_from_slice(level_name(meta.level(), format).as_bytes());
                self.line.extend_from_slice(b" - ");
            }
        }
        event.record(&mut Visitor { message: &mut self.line, fields: &mut self.fields, json });
        if json {
            self.line.push(b'"');
            if !self.fields.is_empty() {
                self.line.extend_from_slice(b", \"fields\": {");
                self.line.extend_from_slice(&self.fields);
                self.line.push(b'}');
            }
            self.line.extend_from_slice(b"}\n");
        } else {
            if !self.fields.is_empty() {
                self.line.extend_from_slice(b" | {");
                self.line.extend_from_slice(&self.fields);
                self.line.push(b'}');
            }
            self.line.push(b'\n');
        }
    }
}

struct Visitor<'a> {
    message: &'a mut Vec<u8>,
    fields: &'a mut Vec<u8>,
    json: bool,
}

impl Visitor<'_> {
    /// Starts a field: `, "name": ` (no comma before the first). `None` for `message` and
    /// for the `log.*` fields that `tracing-log` adds.
    #[inline]
    fn key(&mut self, field: &Field) -> Option<&mut Vec<u8>> {
        let name = field.name();
        if name == "message" || name.starts_with("log.") {
            return None;
        }
        let out = &mut *self.fields;
        if out.is_empty() {
            out.push(b'"');
        } else {
            out.extend_from_slice(b", \"");
        }
        escape_into(out, name);
        out.extend_from_slice(b"\": ");
        Some(out)
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            if self.json {
                escape_into(self.message, value);
            } else {
                self.message.extend_from_slice(value.as_bytes());
            }
        } else if let Some(out) = self.key(field) {
            out.push(b'"');
            escape_into(out, value);
            out.push(b'"');
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        if let Some(out) = self.key(field) {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else if field.name() == "message" {
            self.message.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if let Some(out) = self.key(field) {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        } else if field.name() == "message" {
            self.message.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        if let Some(out) = self.key(field) {
            out.extend_from_slice(text);
        } else if field.name() == "message" {
            self.message.extend_from_slice(text);
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if let Some(out) = self.key(field) {
            if value.is_finite() {
                let _ = write!(Raw(out), "{value}");
            } else {
                let _ = write!(Raw(out), "\"{value}\"");
            }
        } else if field.name() == "message" {
            let _ = write!(Raw(self.message), "{value}");
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = if self.json {
                write!(Escaped(self.message), "{value:?}")
            } else {
                write!(Raw(self.message), "{value:?}")
            };
        } else if let Some(out) = self.key(field) {
            out.push(b'"');
            let _ = write!(Escaped(out), "{value:?}");
            out.push(b'"');
        }
    }
}

/// `fmt::Write` into a byte buffer, as is.
struct Raw<'a>(&'a mut Vec<u8>);

impl fmt::Write for Raw<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// `fmt::Write` into a byte buffer, escaped for the inside of a JSON string.
struct Escaped<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaped<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

/// Appends `s` escaped for the inside of a JSON string.
#[inline]
fn escape_into(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Most values need no escaping: one scan, one copy.
    match bytes.iter().position(|&b| ESCAPE[b as usize]) {
        None => out.extend_from_slice(bytes),
        Some(first) => escape_slow(out, bytes, first),
    }
}

/// Bytes that cannot stand as they are inside a JSON string.
static ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

#[inline]
fn needs_escape(b: u8) -> bool {
    ESCAPE[b as usize]
}

#[cold]
fn escape_slow(out: &mut Vec<u8>, bytes: &[u8], first: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&bytes[..first]);
    let mut start = first;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 0xf) as usize],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    #[test]
    fn escapes_what_json_requires() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\"b\\\\c\\nd\\u0001é");
    }
}
