//! Line formats: MHM's `YYYY-MM-DD HH:MM:SS,mmm - <target> - <LEVEL> - <message> | {..}`
//! and JSON lines, written straight into a reused buffer.
//!
//! Nothing here allocates once the thread's buffers have grown to the longest line seen:
//! the timestamp text is cached per second (one zone lookup a second, not per event),
//! integers go through `itoa`, short decimal floats through a fast path of their own, and
//! field values are escaped as they are written.

use std::fmt::{self, Write as _};

use chrono::{Datelike, TimeZone, Timelike};

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
    /// The minute (since the epoch) `offset_secs` was looked up for.
    minute: i64,
    zone: Zone,
    offset_secs: i32,
    /// `YYYY-MM-DD HH:MM:SS`
    text: [u8; 19],
    /// `+HH:MM`
    offset: [u8; 6],
}

impl Default for TimeCache {
    fn default() -> Self {
        Self {
            sec: i64::MIN,
            minute: i64::MIN,
            zone: Zone::Utc,
            offset_secs: 0,
            text: [b'0'; 19],
            offset: *b"+00:00",
        }
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

    /// A new second: the text is rebuilt by arithmetic. The zone's offset is looked up
    /// once a minute (offsets only change on minute boundaries), since asking the system
    /// zone costs a syscall and an allocation in chrono.
    #[cold]
    fn fill(&mut self, sec: i64, zone: Zone) {
        let minute = sec.div_euclid(60);
        if minute != self.minute || zone != self.zone {
            self.offset_secs = match zone {
                Zone::Utc => 0,
                Zone::Local => chrono::Local
                    .offset_from_utc_datetime(
                        &from_nanos(sec.saturating_mul(1_000_000_000)).naive_utc(),
                    )
                    .local_minus_utc(),
            };
            let off = self.offset_secs.unsigned_abs() / 60;
            self.offset = [
                if self.offset_secs < 0 { b'-' } else { b'+' },
                digit(off / 600),
                digit(off / 60 % 10),
                b':',
                digit(off % 60 / 10),
                digit(off % 10),
            ];
            self.minute = minute;
            self.zone = zone;
        }
        let local = from_nanos((sec + i64::from(self.offset_secs)).saturating_mul(1_000_000_000))
            .naive_utc();
        let year = local.year().clamp(0, 9999) as u32;
        let (month, day) = (local.month(), local.day());
        let (hour, min, s) = (local.hour(), local.minute(), local.second());
        self.text = [
            digit(year / 1000),
            digit(year / 100 % 10),
            digit(year / 10 % 10),
            digit(year % 10),
            b'-',
            digit(month / 10),
            digit(month % 10),
            b'-',
            digit(day / 10),
            digit(day % 10),
            b' ',
            digit(hour / 10),
            digit(hour % 10),
            b':',
            digit(min / 10),
            digit(min % 10),
            b':',
            digit(s / 10),
            digit(s % 10),
        ];
        self.sec = sec;
    }
}

#[inline]
fn digit(n: u32) -> u8 {
    b'0' + (n % 10) as u8
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
                push_f64(out, value);
            } else {
                // JSON has no NaN or infinity: a string, as `Display` spells it.
                out.push(b'"');
                push_f64(out, value);
                out.push(b'"');
            }
        } else if field.name() == "message" {
            push_f64(self.message, value);
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

/// Appends `value` exactly as `format!("{value}")` spells it: short decimals (most logged
/// floats: `12.375`, `0.5`, `1500`) on a fast path, everything else through `Display`,
/// which costs several hundred instructions.
#[inline]
fn push_f64(out: &mut Vec<u8>, value: f64) {
    if !push_short_decimal(out, value) {
        let _ = write!(Raw(out), "{value}");
    }
}

/// The fast path of [`push_f64`], for the values logs mostly carry (`12.375`, `0.5`,
/// `1500`): with `k` the fewest decimals such that `round(value × 10^k) / 10^k` reads back
/// as `value`, writes those digits and returns `true`; `false` (nothing written) when no
/// `k` up to 17 gives a small enough product, and for infinities and NaN.
///
/// Why this is `Display`'s text: while `|value| × 10^k ≤ 2^49`, a step of `10^-k` is at least
/// four times the float's spacing (`value` is normal: anything that can succeed is above
/// 10^-18), so at most one `k`-decimal number reads back as `value`, and rounding the
/// product (within ⅜ of that number: half a spacing plus the product's own rounding) finds
/// it when it exists. `n / 10^k` with
/// both exact (`n < 2^53`, `10^k ≤ 10^22`) is correctly rounded: exactly what reading the
/// text back gives. The first `k` that works is the shortest text, and it is unique, so it
/// is the one `Display` (shortest, then closest) prints.
#[inline]
fn push_short_decimal(out: &mut Vec<u8>, value: f64) -> bool {
    const POW10: [f64; 18] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17,
    ];
    const LIMIT: f64 = (1u64 << 49) as f64;
    const ROUNDER: f64 = (1u64 << 52) as f64;
    if !value.is_finite() {
        return false;
    }
    let abs = value.abs();
    if abs == 0.0 {
        out.extend_from_slice(if value.is_sign_negative() { b"-0" } else { b"0" });
        return true;
    }
    for (k, &scale) in POW10.iter().enumerate() {
        let scaled = abs * scale;
        if scaled > LIMIT {
            return false;
        }
        // The nearest integer, without a libm call or an integer conversion: below 2^52,
        // adding 2^52 leaves no bits after the point.
        let nearest = (scaled + ROUNDER) - ROUNDER;
        if nearest / scale != abs {
            continue;
        }
        let n = nearest as u64;
        if value.is_sign_negative() {
            out.push(b'-');
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(n).as_bytes();
        if k == 0 {
            out.extend_from_slice(digits);
        } else if digits.len() > k {
            let (whole, fraction) = digits.split_at(digits.len() - k);
            out.extend_from_slice(whole);
            out.push(b'.');
            out.extend_from_slice(fraction);
        } else {
            out.extend_from_slice(b"0.");
            out.resize(out.len() + (k - digits.len()), b'0');
            out.extend_from_slice(digits);
        }
        return true;
    }
    false
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
    use super::{escape_into, push_f64, TimeCache};
    use crate::clock::Zone;
    use chrono::{TimeZone, Utc};

    #[test]
    fn timestamp_text_matches_chrono_across_years_and_zones() {
        let mut cache = TimeCache::default();
        for (i, secs) in
            [0i64, 951_782_400, 1_709_164_799, 1_798_761_599, 4_102_444_800, 9_000_000_000]
                .into_iter()
                .enumerate()
        {
            let nanos = secs * 1_000_000_000 + 7_000_000 * i as i64;
            let millis = cache.refresh(nanos, Zone::Utc);
            let t = Utc.timestamp_nanos(nanos);
            assert_eq!(
                std::str::from_utf8(&cache.text).unwrap(),
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            );
            assert_eq!(millis, 7 * i as u32);
            assert_eq!(&cache.offset, b"+00:00");
            cache.refresh(nanos, Zone::Local);
            let local = t.with_timezone(&chrono::Local);
            assert_eq!(
                std::str::from_utf8(&cache.text).unwrap(),
                local.format("%Y-%m-%d %H:%M:%S").to_string()
            );
            assert_eq!(
                std::str::from_utf8(&cache.offset).unwrap(),
                local.format("%:z").to_string()
            );
        }
    }

    #[test]
    fn escapes_what_json_requires() {
        let mut out = Vec::new();
        escape_into(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(out).unwrap(), "a\\\"b\\\\c\\nd\\u0001é");
    }

    fn assert_f64_as_display(value: f64) {
        let mut out = b"x".to_vec();
        push_f64(&mut out, value);
        assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), format!("{value}"), "{value:?}");
    }

    #[test]
    fn f64_text_is_display_text() {
        for value in [
            0.0,
            -0.0,
            1.0,
            -1.0,
            12.0,
            12.5,
            0.1,
            0.3,
            1.0 / 3.0,
            1e15,
            1e16,
            1e17,
            1.5e16,
            123456789012345680.0,
            1e21,
            1e22,
            1e100,
            1.7976931348623157e308,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e-4,
            1e-5,
            1e-6,
            1e-7,
            1.2345e-7,
            f64::EPSILON,
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            9007199254740993.0,
            // Ties between two shortest texts, where `ryu` and `Display` pick differently.
            1891612714763756.3,
            1125899906842624.2,
            u64::MAX as f64,
            i64::MIN as f64,
        ] {
            assert_f64_as_display(value);
        }
        for exponent in -330..=310 {
            for mantissa in [1.0, 1.5, 2.2250738585072014, 9.999999999999999, 3.0, 7.0] {
                assert_f64_as_display(mantissa * 10f64.powi(exponent));
                assert_f64_as_display(-mantissa * 10f64.powi(exponent));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_f64_is_written_as_display_writes_it(bits: u64) {
            assert_f64_as_display(f64::from_bits(bits));
        }

        #[test]
        fn any_short_decimal_is_written_as_display_writes_it(
            m in 0u64..(1u64 << 53),
            k in 0i32..24,
        ) {
            let value = m as f64 / 10f64.powi(k);
            assert_f64_as_display(value);
            assert_f64_as_display(-value);
            assert_f64_as_display(f64::from_bits(value.to_bits() + 1));
        }

        #[test]
        fn any_small_or_whole_f64_is_written_as_display_writes_it(
            whole in -1_000_000_000i64..1_000_000_000,
            cents in 0u32..1000,
        ) {
            assert_f64_as_display(whole as f64);
            assert_f64_as_display(whole as f64 + f64::from(cents) / 1000.0);
        }
    }
}
