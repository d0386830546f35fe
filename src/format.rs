//! Line formats: MHM's `YYYY-MM-DD HH:MM:SS,mmm - <target> - <LEVEL> - <message> | {..}`
//! and JSON lines, written straight into a reused buffer.
//!
//! Nothing here allocates once the thread's buffers have grown to the longest line seen:
//! the timestamp text is cached per second (one zone lookup a second, not per event),
//! integers are written digit pairs at a time straight into the line, short decimal floats
//! through a fast path of their own, and field values are escaped as they are written.
//!
//! The parts, each a file that calls none above it: this one (the line's layout and the
//! field visitor), `callsite.rs` (the per-callsite text), `time.rs` (the per-second
//! timestamp), `escape.rs` (escaping as it writes), `kind.rs` (the [`Format`] enum),
//! `bytes.rs` (the byte writers: the formats' only `unsafe` code).

use std::fmt::{self, Write as _};

use tracing_core::{
    field::{Field, Visit},
    Event,
};

use crate::clock::Zone;

mod bytes;
mod callsite;
mod escape;
mod kind;
mod time;

pub use kind::Format;

use bytes::{push_digits, push_u64, put};
use callsite::{push_key, Callsites, Key, KeyKind};
use escape::{escape_into, Escaped, Raw};
use time::TimeCache;

/// One thread's reusable buffers.
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    pub(crate) line: Vec<u8>,
    fields: Vec<u8>,
    cache: TimeCache,
    callsites: Callsites,
}

impl LineBuf {
    /// Formats `event` at `now` into `self.line` (cleared first), ending in `\n`.
    pub(crate) fn format(&mut self, format: Format, zone: Zone, now: i64, event: &Event<'_>) {
        let meta = event.metadata();
        let millis = self.cache.refresh(now, zone);
        let site = self.callsites.get(meta, format);
        let line = &mut self.line;
        line.clear();
        self.fields.clear();
        let json = format == Format::Json;
        let text = &self.cache.text;
        let ms = [
            b'0' + (millis / 100) as u8,
            b'0' + (millis / 10 % 10) as u8,
            b'0' + (millis % 10) as u8,
        ];
        if json {
            // {"timestamp": "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM, straight into the line (see
            // below)
            put(line, b"{\"timestamp\": \"");
            put(line, &text[..10]);
            line.push(b'T');
            put(line, &text[11..]);
            put(line, &u32::from_le_bytes([b'.', ms[0], ms[1], ms[2]]).to_le_bytes());
            put(line, &self.cache.offset);
        } else {
            // YYYY-MM-DD HH:MM:SS,mmm, stored straight into the line: built in a stack
            // array and copied, the head's bytes were read back wider than they were stored,
            // which the processor cannot forward (a third of this function's time).
            put(line, text);
            put(line, &u32::from_le_bytes([b',', ms[0], ms[1], ms[2]]).to_le_bytes());
        }
        put(line, &site.header);
        let mut visitor = Visitor {
            line,
            fields: &mut self.fields,
            keys: &site.keys,
            names: &site.names,
            json,
            order: Order::Start,
            fields_at: 0,
        };
        event.record(&mut visitor);
        visitor.finish();
    }
}

/// Where a [`Visitor`] stands: fields go straight into the line when the message comes
/// first (as `tracing`'s macros record it), else into `fields`, appended at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// Neither the message nor a field yet.
    Start,
    /// The message is in the line, no field yet.
    Message,
    /// The message, then fields, in the line (the fields part starts at `fields_at`).
    Direct,
    /// A field came before the message: fields go to `fields`.
    Apart,
}

struct Visitor<'a> {
    line: &'a mut Vec<u8>,
    fields: &'a mut Vec<u8>,
    keys: &'a [Key],
    names: &'a [u8],
    json: bool,
    order: Order,
    /// In `Order::Direct`: where the fields part (from ` | {`) starts in the line.
    fields_at: usize,
}

/// What a visited field is, once its key (if any) has been written.
enum Slot {
    Message,
    Skip,
    /// Its key is written: the value goes to [`Visitor::out`].
    Value,
}

impl Visitor<'_> {
    /// The text that opens the fields part after the message.
    fn opener(&self) -> &'static [u8] {
        if self.json {
            b"\", \"fields\": {"
        } else {
            b" | {"
        }
    }

    /// Starts a field: writes `, "name": ` (no comma before the first) where fields go.
    #[inline(always)]
    fn start(&mut self, field: &Field) -> Slot {
        let (kind, name) = match self.keys.get(field.index()) {
            Some(key) if std::ptr::eq(key.name, field.name()) => (key.kind, key.name),
            _ => (KeyKind::of(field.name()), field.name()),
        };
        let cached = match kind {
            KeyKind::Message => return Slot::Message,
            KeyKind::Skip => return Slot::Skip,
            KeyKind::Named { start, end } => self.names.get(start as usize..end as usize),
            KeyKind::Uncached => None,
        };
        let first = match self.order {
            Order::Start | Order::Apart => {
                self.order = Order::Apart;
                self.fields.is_empty()
            }
            Order::Message => {
                self.fields_at = self.line.len();
                let opener = self.opener();
                self.line.extend_from_slice(opener);
                self.order = Order::Direct;
                true
            }
            Order::Direct => false,
        };
        let out = self.out();
        match cached {
            Some(text) if first => put(out, &text[2..]),
            Some(text) => put(out, text),
            None if first => {
                out.push(b'"');
                escape_into(out, name);
                out.extend_from_slice(b"\": ");
            }
            None => push_key(out, name),
        }
        Slot::Value
    }

    /// Where field values go now.
    #[inline]
    fn out(&mut self) -> &mut Vec<u8> {
        if self.order == Order::Direct {
            self.line
        } else {
            self.fields
        }
    }

    /// Where the message goes: the line, before any field.
    #[inline]
    fn message(&mut self) -> &mut Vec<u8> {
        match self.order {
            Order::Start => self.order = Order::Message,
            Order::Message | Order::Apart => {}
            Order::Direct => {
                // A second message after fields (not something `tracing`'s macros make):
                // the fields move apart so the line reads as it always did.
                let opener = self.opener().len();
                self.fields.extend_from_slice(&self.line[self.fields_at + opener..]);
                self.line.truncate(self.fields_at);
                self.order = Order::Apart;
            }
        }
        self.line
    }

    /// Ends the line.
    fn finish(self) {
        let line = self.line;
        match (self.order, self.json) {
            (Order::Direct, false) => line.extend_from_slice(b"}\n"),
            (Order::Direct, true) => line.extend_from_slice(b"}}\n"),
            (Order::Apart, _) if !self.fields.is_empty() => {
                line.extend_from_slice(if self.json { b"\", \"fields\": {" } else { b" | {" });
                line.extend_from_slice(self.fields);
                line.extend_from_slice(if self.json { b"}}\n" } else { b"}\n" });
            }
            (_, false) => line.push(b'\n'),
            (_, true) => line.extend_from_slice(b"\"}\n"),
        }
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        match self.start(field) {
            Slot::Value => {
                let out = self.out();
                out.push(b'"');
                escape_into(out, value);
                out.push(b'"');
            }
            Slot::Message if self.json => escape_into(self.message(), value),
            Slot::Message => put(self.message(), value.as_bytes()),
            Slot::Skip => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let out = match self.start(field) {
            Slot::Value => self.out(),
            Slot::Message => self.message(),
            Slot::Skip => return,
        };
        if value < 0 {
            out.push(b'-');
        }
        push_u64(out, value.unsigned_abs());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let out = match self.start(field) {
            Slot::Value => self.out(),
            Slot::Message => self.message(),
            Slot::Skip => return,
        };
        push_u64(out, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let text: &[u8] = if value { b"true" } else { b"false" };
        match self.start(field) {
            Slot::Value => self.out().extend_from_slice(text),
            Slot::Message => self.message().extend_from_slice(text),
            Slot::Skip => {}
        }
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        match self.start(field) {
            Slot::Value => {
                let out = self.out();
                if value.is_finite() {
                    push_f64(out, value);
                } else {
                    // JSON has no NaN or infinity: a string, as `Display` spells it.
                    out.push(b'"');
                    push_f64(out, value);
                    out.push(b'"');
                }
            }
            Slot::Message => push_f64(self.message(), value),
            Slot::Skip => {}
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match self.start(field) {
            Slot::Value => {
                let out = self.out();
                out.push(b'"');
                let _ = write!(Escaped(out), "{value:?}");
                out.push(b'"');
            }
            Slot::Message => {
                let json = self.json;
                let out = self.message();
                let _ = if json {
                    write!(Escaped(out), "{value:?}")
                } else {
                    write!(Raw(out), "{value:?}")
                };
            }
            Slot::Skip => {}
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
        if k == 0 {
            push_u64(out, n);
        } else {
            // `n / 10^k` whole (0 when `n` has k digits or fewer), then exactly k decimals.
            let scale = 10u64.pow(k as u32);
            push_u64(out, n / scale);
            out.push(b'.');
            // SAFETY: `n % 10^k` has at most `k` digits, and `k < 18` (POW10's length).
            unsafe { push_digits(out, n % scale, k) };
        }
        return true;
    }
    false
}

/// `fmt::Write` into a byte buffer, as is.
#[cfg(test)]
mod tests {
    use super::{escape_into, push_f64, push_u64, put, Format, LineBuf, TimeCache};
    use crate::clock::Zone;
    use chrono::{TimeZone, Utc};
    use std::{fmt::Write as _, sync::Mutex};
    use tracing_core::{
        field::{Field, Visit},
        Event, Subscriber,
    };
    use tracing_subscriber::{layer::Context, prelude::*, Layer};

    /// The line as the format describes it, built the plain way: every field collected,
    /// then the line put together (no cached key text, no direct writes).
    fn reference(format: Format, now: i64, event: &Event<'_>) -> Vec<u8> {
        #[derive(Default)]
        struct Collect {
            json: bool,
            message: Vec<u8>,
            fields: Vec<(String, Vec<u8>)>,
        }
        impl Collect {
            fn put(&mut self, field: &Field, text: Vec<u8>, quoted: bool) {
                let name = field.name();
                if name == "message" {
                    self.message.extend_from_slice(&text);
                } else if !name.starts_with("log.") {
                    let mut value = Vec::new();
                    if quoted {
                        value.push(b'"');
                        escape_into(&mut value, std::str::from_utf8(&text).unwrap());
                        value.push(b'"');
                    } else {
                        value = text;
                    }
                    self.fields.push((name.to_string(), value));
                }
            }
        }
        impl Visit for Collect {
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == "message" && self.json {
                    let mut v = Vec::new();
                    escape_into(&mut v, value);
                    self.message.extend_from_slice(&v);
                } else {
                    self.put(field, value.as_bytes().to_vec(), true);
                }
            }
            fn record_u64(&mut self, field: &Field, value: u64) {
                self.put(field, value.to_string().into_bytes(), false);
            }
            fn record_i64(&mut self, field: &Field, value: i64) {
                self.put(field, value.to_string().into_bytes(), false);
            }
            fn record_bool(&mut self, field: &Field, value: bool) {
                self.put(field, value.to_string().into_bytes(), false);
            }
            fn record_f64(&mut self, field: &Field, value: f64) {
                let quoted = !value.is_finite() && field.name() != "message";
                let text = format!("{value}").into_bytes();
                if quoted {
                    self.put(field, text, true);
                } else {
                    self.put(field, text, false);
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                let text = format!("{value:?}");
                if field.name() == "message" {
                    let mut v = Vec::new();
                    if self.json {
                        escape_into(&mut v, &text);
                    } else {
                        v.extend_from_slice(text.as_bytes());
                    }
                    self.message.extend_from_slice(&v);
                } else {
                    self.put(field, text.into_bytes(), true);
                }
            }
        }
        let json = format == Format::Json;
        let mut c = Collect { json, ..Collect::default() };
        event.record(&mut c);
        let meta = event.metadata();
        let t = Utc.timestamp_nanos(now);
        let level = match (*meta.level(), json) {
            (tracing::Level::WARN, false) => "WARNING".to_string(),
            (level, _) => level.to_string(),
        };
        let mut fields = String::new();
        for (i, (name, value)) in c.fields.iter().enumerate() {
            let mut key = Vec::new();
            escape_into(&mut key, name);
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(
                fields,
                "{sep}\"{}\": {}",
                String::from_utf8(key).unwrap(),
                String::from_utf8(value.clone()).unwrap()
            );
        }
        let message = String::from_utf8(c.message).unwrap();
        let line = if json {
            let mut target = Vec::new();
            escape_into(&mut target, meta.target());
            let fields = if fields.is_empty() {
                String::new()
            } else {
                format!(", \"fields\": {{{fields}}}")
            };
            format!(
                "{{\"timestamp\": \"{}\", \"level\": \"{level}\", \"target\": \"{}\", \"message\": \"{message}\"{fields}}}\n",
                t.format("%Y-%m-%dT%H:%M:%S%.3f%:z"),
                String::from_utf8(target).unwrap()
            )
        } else {
            let fields = if fields.is_empty() { String::new() } else { format!(" | {{{fields}}}") };
            format!(
                "{} - {} - {level} - {message}{fields}\n",
                t.format("%Y-%m-%d %H:%M:%S,%3f"),
                meta.target()
            )
        };
        line.into_bytes()
    }

    /// Formats every event with one thread's `LineBuf` (its callsite table shared by
    /// every event) in both formats, alternately, and compares with [`reference`].
    struct Compare {
        buf: Mutex<LineBuf>,
        now: i64,
    }

    impl<S: Subscriber> Layer<S> for Compare {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut buf = self.buf.lock().unwrap();
            for format in [Format::Mhm, Format::Json, Format::Mhm] {
                buf.format(format, Zone::Utc, self.now, event);
                let want = reference(format, self.now, event);
                assert_eq!(
                    String::from_utf8_lossy(&buf.line),
                    String::from_utf8_lossy(&want),
                    "{:?}",
                    event.metadata()
                );
            }
        }
    }

    /// Many callsites (more than the table's slots, so slots are taken over and
    /// rebuilt), fields before, after and around the message, none, `log.*` fields, names
    /// and values that need escaping, every value type.
    fn many_events(i: u64) {
        use tracing::{error, info, warn};
        let f = i as f64 / 8.0;
        info!(target: "mhm::bench", user_id = i, channel = "discord", latency_ms = 12u64, "message delivered to the user");
        info!(target: "mhm::bench", "no fields {}", i);
        info!(target: "mhm::bench", a = i);
        info!(target: "mhm::bench", a = i, message = "after a field");
        info!(target: "mhm::bench", a = i, message = "between", b = -3i64);
        warn!(target: "mhm::x\"y", ok = true, we.ird = "q\"uote\n", "tab\there {}", i);
        error!(target: "mhm", err = ?std::io::ErrorKind::NotFound, e2 = %"disp", "lost");
        info!(target: "mhm", kept = 1u64, log.target = "x", log.line = 3u64, "from log");
        info!(target: "mhm", f, nan = f64::NAN, inf = f64::INFINITY, "floats");
        info!(target: "mhm", message = f);
        info!(target: "mhm", message = i, x = 1u64);
        info!(target: "mhm", message = true);
        info!(target: "mhm", message = -1i64, y = "s");
        info!(target: "mhm", message = "m1", z = 1u64, message = "m2");
        info!(target: "mhm", z = 1u64, message = "m1", message = "m2", w = 2u64);
        info!(target: "a", "1");
        info!(target: "b", "2");
        info!(target: "c", "3");
        info!(target: "d", k = 4u64, "4");
        info!(target: "e", k = 5u64, "5");
        info!(target: "f", k = 6u64, "6");
        info!(target: "g", k = 7u64, "7");
        info!(target: "h", k = 8u64, "8");
        warn!(target: "i", k = 9u64, "9");
        error!(target: "j", k = 10u64, "10");
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let mut values = vec![0, u64::MAX, u64::MAX - 1];
        for p in 0..20 {
            let ten = 10u64.pow(p);
            values.extend([ten - 1, ten, ten + 1, ten.wrapping_mul(7).wrapping_add(3)]);
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for v in values {
            let mut out = b"x=".to_vec();
            push_u64(&mut out, v);
            assert_eq!(out, format!("x={v}").into_bytes());
        }
    }

    #[test]
    fn put_appends_every_length_as_extend_from_slice_does() {
        let src: Vec<u8> = (0..80).map(|i| b'a' + i % 26).collect();
        for start in [0usize, 1, 7, 13] {
            for n in 0..=48 {
                // Its own allocation of exactly `n` bytes: a read past its end would be
                // caught by Miri or an allocator with guard pages.
                let piece: Vec<u8> = src[start..start + n].to_vec();
                let mut got = b"prefix".to_vec();
                got.shrink_to_fit();
                put(&mut got, &piece);
                let mut want = b"prefix".to_vec();
                want.extend_from_slice(&piece);
                assert_eq!(got, want, "length {n}");
            }
        }
    }

    #[test]
    fn fast_path_lines_are_the_plain_lines() {
        let now = 1_798_761_599_123_000_000;
        let layer = Compare { buf: Mutex::default(), now };
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..50 {
                many_events(i);
            }
        });
    }

    proptest::proptest! {
        #[test]
        fn any_values_are_written_as_the_plain_lines(
            n in proptest::prelude::any::<u64>(),
            s in "\\PC{0,20}",
            f in proptest::prelude::any::<f64>(),
            b in proptest::prelude::any::<bool>(),
            m in "\\PC{0,20}",
        ) {
            let now = 1_798_761_599_123_000_000;
            let layer = Compare { buf: Mutex::default(), now };
            let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(target: "mhm", n, s = s.as_str(), f, b, "{m}");
                tracing::info!(target: "mhm", s = s.as_str(), message = m.as_str(), n);
                tracing::warn!(target: "mhm", d = ?s, "{}", m);
            });
        }
    }

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
