//! The shapes of the service's message files: the active file (version 2 `deliveries`,
//! version 1 `messages`) parsed into raw JSON texts borrowed from its bytes and written back
//! as it was but for the list; a message's time; the canonical digest two messages are
//! compared by, and the read-back check of a file written.

use std::{collections::HashMap, fs, io, io::Write, path::Path};

use anyhow::Result;
use chrono::{DateTime, Duration, FixedOffset, Local, NaiveDateTime, TimeZone, Utc};
use serde_json::{value::RawValue, Value};

use crate::json_text::{self, Member};

/// The two shapes the service has written (SPEC.md, "The real MHM's files").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Schema version 2 (2026): `deliveries`, time in `sent_at`.
    V2,
    /// Version 1: `messages`, time in `timestamp`.
    V1,
}

impl Shape {
    /// The key of the list of messages.
    pub fn list_key(self) -> &'static str {
        match self {
            Shape::V2 => "deliveries",
            Shape::V1 => "messages",
        }
    }

    /// The key of a message's time.
    pub fn time_key(self) -> &'static str {
        match self {
            Shape::V2 => "sent_at",
            Shape::V1 => "timestamp",
        }
    }
}

/// The active file, borrowed from its bytes: each top-level entry in the service's order,
/// and each message, as raw JSON text.
pub(super) struct Active<'a> {
    pub(super) top: Vec<(String, &'a RawValue)>,
    pub(super) shape: Shape,
    pub(super) messages: Vec<&'a RawValue>,
}

/// What an active file holds.
pub(super) enum Parsed<'a> {
    /// Messages in one of the service's shapes.
    Messages(Active<'a>),
    /// Nothing to archive: `{}` (a new user), an empty list, a document without messages.
    Nothing,
    /// Another shape (such as 2025's `{"<category>": [...]}`): what it looks like.
    Other(String),
}

/// A JSON object's entries in their order, each value raw text.
pub(super) struct Entries<'a>(pub(super) Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Entries<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Entries<'a>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'a RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The active document and its messages, or what is wrong with it.
pub(super) fn parse_active(bytes: &[u8]) -> Result<Parsed<'_>, String> {
    let top: &RawValue =
        serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON ({e})"))?;
    let text = top.get();
    if !text.starts_with('{') {
        return Ok(match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(list) if list.is_empty() => Parsed::Nothing,
            _ => Parsed::Other(format!("{} at the top", kind(text))),
        });
    }
    let Entries(top) =
        serde_json::from_str(top.get()).map_err(|e| format!("not valid JSON ({e})"))?;
    for shape in [Shape::V2, Shape::V1] {
        let Some((_, list)) = top.iter().find(|(k, _)| k == shape.list_key()) else { continue };
        return match serde_json::from_str::<Vec<&RawValue>>(list.get()) {
            Ok(messages) => Ok(Parsed::Messages(Active { top, shape, messages })),
            Err(_) => {
                Ok(Parsed::Other(format!("\"{}\" is {}", shape.list_key(), kind(list.get()))))
            }
        };
    }
    // `{}`, or the service's bookkeeping keys with no list yet.
    let bookkeeping = ["schema_version", "updated_at", "metadata", "last_updated"];
    if top.iter().all(|(k, _)| bookkeeping.contains(&k.as_str())) {
        return Ok(Parsed::Nothing);
    }
    let keys: Vec<&str> = top.iter().take(3).map(|(k, _)| k.as_str()).collect();
    Ok(Parsed::Other(format!("an object with keys {keys:?}")))
}

/// What the JSON text `raw` is, by its first character.
fn kind(raw: &str) -> &'static str {
    match raw.trim_start().bytes().next() {
        Some(b'n') => "null",
        Some(b't' | b'f') => "a boolean",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b'{') => "an object",
        _ => "a number",
    }
}

/// Writes the active document: its top-level members in the service's order, each as it
/// was written, but the list replaced by the messages kept, `metadata.total_messages` (when
/// a number) by their count, and (version 2) `updated_at` by now.
pub(super) fn write_active(
    out: &mut dyn Write,
    active: &Active<'_>,
    messages: &[&RawValue],
    updated_at: &str,
) -> io::Result<()> {
    let shape = active.shape;
    let metadata = active
        .top
        .iter()
        .find(|(key, _)| key == "metadata")
        .and_then(|(_, raw)| with_total(raw, messages.len()));
    let members: Vec<(&str, Member)> = active
        .top
        .iter()
        .map(|(key, raw)| {
            let value = match key.as_str() {
                k if k == shape.list_key() => Member::List(messages),
                "updated_at" if shape == Shape::V2 => Member::Str(updated_at),
                "metadata" => Member::Raw(metadata.as_deref().unwrap_or(raw.get())),
                _ => Member::Raw(raw.get()),
            };
            (key.as_str(), value)
        })
        .collect();
    json_text::write_object(out, 0, &members)
}

/// The `metadata` object `raw` with its `total_messages` set to `count`, every other member
/// as written; `None` when it is not an object with a number there.
fn with_total(raw: &RawValue, count: usize) -> Option<String> {
    let Entries(entries) = serde_json::from_str(raw.get()).ok()?;
    let is_number = |v: &RawValue| v.get().starts_with(|c: char| c == '-' || c.is_ascii_digit());
    if !entries.iter().any(|(k, v)| k == "total_messages" && is_number(v)) {
        return None;
    }
    let mut text = String::from("{");
    for (i, (k, v)) in entries.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&serde_json::to_string(k).ok()?);
        text.push(':');
        if k == "total_messages" && is_number(v) {
            text.push_str(&count.to_string());
        } else {
            text.push_str(v.get());
        }
    }
    text.push('}');
    Some(text)
}

/// A message's time in `key` (see [`time_of`]), read without building the rest of it.
/// Its other members are skipped unread, so a number no double holds (`1e400`) elsewhere in
/// the message is no reason to keep it active.
pub(super) fn time_of_raw(m: &RawValue, key: &str) -> Result<DateTime<Utc>, String> {
    let Some(ts) = member(m, key).map_err(|e| format!("not valid JSON ({e})"))? else {
        return Err(format!("no \"{key}\" field"));
    };
    let Ok(s) = serde_json::from_str::<String>(ts.get()) else {
        return Err(format!("{key} {} is not a string", ts.get()));
    };
    parse_time(&s).ok_or_else(|| format!("{key} {s:?} is neither YYYY-MM-DD HH:MM:SS nor RFC 3339"))
}

/// The raw value of member `key` of `raw` (the last one, as Python's `json` reads a key
/// given twice); `None` when `raw` is not an object or has no such member. The other
/// members are skipped unread.
pub(super) fn member<'a>(raw: &'a RawValue, key: &str) -> serde_json::Result<Option<&'a RawValue>> {
    struct Find<'k>(&'k str);
    impl<'de> serde::de::Visitor<'de> for Find<'_> {
        type Value = Option<&'de RawValue>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(k) = map.next_key::<String>()? {
                if k == self.0 {
                    found = Some(map.next_value::<&'de RawValue>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    if !raw.get().starts_with('{') {
        return Ok(None);
    }
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde::Deserializer::deserialize_map(&mut de, Find(key))
}

/// The time of a message in `key`: `YYYY-MM-DD HH:MM:SS` (local) or RFC 3339.
pub fn time_of(m: &Value, key: &str) -> Result<DateTime<Utc>, String> {
    let Some(ts) = m.get(key) else {
        return Err(format!("no \"{key}\" field"));
    };
    let Some(s) = ts.as_str() else {
        return Err(format!("{key} {ts} is not a string"));
    };
    parse_time(s).ok_or_else(|| format!("{key} {s:?} is neither YYYY-MM-DD HH:MM:SS nor RFC 3339"))
}

/// The time of a version 1 message (`timestamp`).
pub fn timestamp_of(m: &Value) -> Result<DateTime<Utc>, String> {
    time_of(m, Shape::V1.time_key())
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    // MHM writes `YYYY-MM-DD HH:MM:SS`; Python's `isoformat()` (a `T`, fractions of a
    // second, no offset) is read the same way, as local time.
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    local(naive).map(|t| t.with_timezone(&Utc))
}

/// A local wall time; in a DST gap, the first instant after it.
pub(super) fn local(naive: NaiveDateTime) -> Option<DateTime<FixedOffset>> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            let later = naive.checked_add_signed(Duration::hours(1))?;
            Local.from_local_datetime(&later).earliest()
        })
        .map(|t| t.fixed_offset())
}

/// The SHA-256 of a message's canonical text ([`json_text::canonical`]: keys sorted,
/// numbers as written): what the multiset of archived messages keeps (32 bytes each,
/// whatever the message's size).
pub(super) fn canonical_digest(m: &RawValue) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(json_text::canonical(m.get()).as_bytes()).into()
}

/// The multiset of `messages`' canonical digests.
pub(super) fn digests(messages: &[&RawValue]) -> HashMap<[u8; 32], usize> {
    let mut counts = HashMap::new();
    for &m in messages {
        *counts.entry(canonical_digest(m)).or_default() += 1;
    }
    counts
}

/// Whether the JSON document in the file at `path` (an archive or an active file, read
/// back after it was written) holds under `list_key` exactly the messages `expected`
/// counts. Read as a stream, one message in memory at a time.
pub(super) fn holds_exactly(
    path: &Path,
    list_key: &str,
    expected: HashMap<[u8; 32], usize>,
) -> Result<()> {
    use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
    struct Doc<'k>(&'k str, HashMap<[u8; 32], usize>);
    struct List<'m>(&'m mut HashMap<[u8; 32], usize>);
    impl<'de> Visitor<'de> for Doc<'_> {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(key) = map.next_key::<String>()? {
                if key == self.0 && !found {
                    map.next_value_seed(List(&mut self.1))?;
                    found = true;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found && self.1.values().all(|n| *n == 0))
        }
    }
    impl<'de> DeserializeSeed<'de> for List<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for List<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(m) = seq.next_element::<Box<RawValue>>()? {
                match self.0.get_mut(&canonical_digest(&m)) {
                    Some(n) if *n > 0 => *n -= 1,
                    _ => return Err(serde::de::Error::custom("a message that was not written")),
                }
            }
            Ok(())
        }
    }
    let file = fs::File::open(path)?;
    let mut de = serde_json::Deserializer::from_reader(io::BufReader::with_capacity(1 << 16, file));
    let whole = serde::Deserializer::deserialize_map(&mut de, Doc(list_key, expected))
        .and_then(|whole| de.end().map(|()| whole))
        .map_err(|e| anyhow::anyhow!("read back, it is not what was written ({e})"))?;
    if !whole {
        anyhow::bail!("read back, it does not hold every message written to it");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_ignore_key_order_and_layout_but_not_numbers() {
        fn raw(t: &str) -> &RawValue {
            serde_json::from_str(t).unwrap()
        }
        let a = raw(r#"{"b": 1, "a": {"y": 2, "x": [1, {"q": 1, "p": 2}]}}"#);
        let b = raw(r#"{"a":{"x":[1,{"p":2,"q":1}],"y":2},"b":1}"#);
        assert_eq!(canonical_digest(a), canonical_digest(b));
        assert_ne!(canonical_digest(a), canonical_digest(raw(r#"{"a": 1}"#)));
        assert_ne!(
            canonical_digest(raw("[123456789012345678901234567890]")),
            canonical_digest(raw("[123456789012345678901234567891]"))
        );
    }

    #[test]
    fn a_message_time_is_found_past_numbers_no_double_holds() {
        let m = serde_json::from_str::<&RawValue>(
            r#"{"n": 1e400, "sent_at": "2026-01-01 10:00:00", "sent_at_x": 5}"#,
        )
        .unwrap();
        assert!(time_of_raw(m, "sent_at").is_ok());
        assert!(time_of_raw(m, "timestamp").unwrap_err().contains("no \"timestamp\" field"));
        let n = serde_json::from_str::<&RawValue>(r#"{"timestamp": 5}"#).unwrap();
        assert!(time_of_raw(n, "timestamp").unwrap_err().contains("is not a string"));
        let s = serde_json::from_str::<&RawValue>(r#""text""#).unwrap();
        assert!(time_of_raw(s, "timestamp").is_err());
    }

    #[test]
    fn timestamps() {
        assert!(parse_time("2026-01-01 10:00:00").is_some());
        assert!(parse_time("2026-01-01T10:00:00+02:00").is_some());
        assert!(parse_time("2026-01-01T10:00:00.123456").is_some());
        assert!(parse_time("2026-01-01 10:00:00.5").is_some());
        assert!(parse_time("2026-01-01").is_none());
        assert!(parse_time("yesterday").is_none());
        assert!(timestamp_of(&serde_json::json!({"timestamp": 5})).is_err());
        assert!(timestamp_of(&serde_json::json!({})).is_err());
    }
}
