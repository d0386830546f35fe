//! JSON kept as it was written (issue 21, item 6). The service's files go through
//! `messages archive` as text: each value is copied token by token, numbers and strings byte
//! for byte, and only the whitespace between tokens is laid out again, in the service's own
//! style (Python's `json.dump(indent=4, ensure_ascii=False)`). No number passes through a
//! float, so integers past 64 bits, every digit of a float, Python's spellings (`1e-05`,
//! `1.0`, `-0.0`) and numbers no double holds (`1e400`) come out as they went in; keys keep
//! their order and strings their escapes.
//!
//! The input is always text serde_json has checked already (a [`RawValue`]), so the
//! tokenizer here has no errors to report: it only finds where tokens begin and end.
//!
//! The module's example is its first test (`the_modules_example`): a value with a big
//! integer, a small float and an escape comes out as it went in, and equal values written
//! differently have one canonical text.
//!
//! [`RawValue`]: serde_json::value::RawValue

use std::io::{self, Write};

use serde_json::value::RawValue;

/// Writes `raw` (valid JSON text) as the service writes it, as a value nested `depth` levels
/// deep: its first token goes where the writer stands, the lines inside it are indented by
/// four spaces a level, empty arrays and objects stay `[]` and `{}`.
pub(crate) fn write_pretty<W: Write + ?Sized>(
    out: &mut W,
    raw: &str,
    depth: usize,
) -> io::Result<()> {
    let mut depth = depth;
    let mut tokens = Tokens::new(raw).peekable();
    while let Some(token) = tokens.next() {
        match token {
            Token::Open(open) => {
                out.write_all(&[open])?;
                if let Some(&Token::Close(close)) = tokens.peek() {
                    tokens.next();
                    out.write_all(&[close])?;
                } else {
                    depth += 1;
                    newline(out, depth)?;
                }
            }
            Token::Close(close) => {
                depth = depth.saturating_sub(1);
                newline(out, depth)?;
                out.write_all(&[close])?;
            }
            Token::Comma => {
                out.write_all(b",")?;
                newline(out, depth)?;
            }
            Token::Colon => out.write_all(b": ")?,
            Token::Scalar(text) => out.write_all(text.as_bytes())?,
        }
    }
    Ok(())
}

/// A new line, indented for `depth`.
pub(crate) fn newline<W: Write + ?Sized>(out: &mut W, depth: usize) -> io::Result<()> {
    out.write_all(b"\n")?;
    for _ in 0..depth {
        out.write_all(b"    ")?;
    }
    Ok(())
}

/// A member's value in [`write_object`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Member<'a> {
    /// JSON text, laid out by [`write_pretty`].
    Raw(&'a str),
    /// A string, written as a JSON string (serde_json's escaping, non-ASCII as is).
    Str(&'a str),
    /// An array of JSON texts.
    List(&'a [&'a RawValue]),
}

/// Writes an object of `members`, in their order, nested `depth` levels deep, in the
/// service's style.
pub(crate) fn write_object<W: Write + ?Sized>(
    out: &mut W,
    depth: usize,
    members: &[(&str, Member<'_>)],
) -> io::Result<()> {
    if members.is_empty() {
        return out.write_all(b"{}");
    }
    out.write_all(b"{")?;
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        newline(out, depth + 1)?;
        serde_json::to_writer(&mut *out, key)?;
        out.write_all(b": ")?;
        match value {
            Member::Raw(raw) => write_pretty(out, raw, depth + 1)?,
            Member::Str(s) => serde_json::to_writer(&mut *out, s)?,
            Member::List(items) => write_list(out, depth + 1, items)?,
        }
    }
    newline(out, depth)?;
    out.write_all(b"}")
}

/// Writes an array of JSON texts nested `depth` levels deep, in the service's style.
pub(crate) fn write_list<W: Write + ?Sized>(
    out: &mut W,
    depth: usize,
    items: &[&RawValue],
) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        newline(out, depth + 1)?;
        write_pretty(out, item.get(), depth + 1)?;
    }
    newline(out, depth)?;
    out.write_all(b"]")
}

/// One text per value, the same for equal values however they were written: object members
/// sorted by key at every level, no whitespace, strings decoded and written in serde_json's
/// one escaping, numbers as written (`1.0` and `1` are two texts, as Python writes a float
/// and an integer; no number is rounded through a double, so two integers past 64 bits
/// that differ in their last digit stay two values).
pub(crate) fn canonical(raw: &str) -> String {
    let mut tokens = Tokens::new(raw);
    let mut out = String::with_capacity(raw.len());
    if let Some(first) = tokens.next() {
        canonical_value(&mut tokens, first, &mut out);
    }
    out
}

fn canonical_value(tokens: &mut Tokens<'_>, first: Token<'_>, out: &mut String) {
    match first {
        Token::Scalar(text) if text.starts_with('"') => out.push_str(&restring(text)),
        Token::Scalar(text) => out.push_str(text),
        Token::Open(b'[') => {
            out.push('[');
            let mut first_item = true;
            while let Some(token) = tokens.next() {
                match token {
                    Token::Close(_) => break,
                    Token::Comma | Token::Colon => {}
                    item => {
                        if !first_item {
                            out.push(',');
                        }
                        first_item = false;
                        canonical_value(tokens, item, out);
                    }
                }
            }
            out.push(']');
        }
        Token::Open(_) => {
            let mut members: Vec<(String, String)> = Vec::new();
            while let Some(token) = tokens.next() {
                match token {
                    Token::Close(_) => break,
                    Token::Scalar(key) => {
                        let mut value = String::new();
                        // The colon, then the value.
                        if let Some(Token::Colon) = tokens.next() {
                            if let Some(v) = tokens.next() {
                                canonical_value(tokens, v, &mut value);
                            }
                        }
                        members.push((restring(key), value));
                    }
                    _ => {}
                }
            }
            members.sort();
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(key);
                out.push(':');
                out.push_str(value);
            }
            out.push('}');
        }
        Token::Close(_) | Token::Comma | Token::Colon => {}
    }
}

/// A JSON string token decoded and written again in serde_json's escaping; as it is when it
/// does not decode (a lone surrogate, which serde_json refuses to make a `String` of).
fn restring(token: &str) -> String {
    serde_json::from_str::<String>(token)
        .ok()
        .and_then(|s| serde_json::to_string(&s).ok())
        .unwrap_or_else(|| token.to_string())
}

/// One token of JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// `[` or `{`.
    Open(u8),
    /// `]` or `}`.
    Close(u8),
    Comma,
    Colon,
    /// A string (quotes and escapes included), a number or a literal, as written.
    Scalar(&'a str),
}

/// The tokens of valid JSON text, in order, whitespace skipped.
struct Tokens<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, at: 0 }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.at).is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
        let start = self.at;
        let first = *bytes.get(start)?;
        self.at += 1;
        Some(match first {
            b'[' | b'{' => Token::Open(first),
            b']' | b'}' => Token::Close(first),
            b',' => Token::Comma,
            b':' => Token::Colon,
            b'"' => {
                while let Some(&b) = bytes.get(self.at) {
                    self.at += if b == b'\\' { 2 } else { 1 };
                    if b == b'"' {
                        break;
                    }
                }
                // Every end found here is an ASCII byte's place (a quote, or past an
                // escape's ASCII letter), so the slice is on character boundaries.
                self.at = self.at.min(bytes.len());
                Token::Scalar(&self.text[start..self.at])
            }
            _ => {
                while bytes.get(self.at).is_some_and(|b| {
                    !matches!(b, b',' | b':' | b']' | b'}') && !b.is_ascii_whitespace()
                }) {
                    self.at += 1;
                }
                Token::Scalar(&self.text[start..self.at])
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modules_example() {
        let raw = r#"{"b": 123456789012345678901234567890, "a": [1e-05, "caf\u00e9"], "c": {}}"#;
        let mut out = Vec::new();
        write_pretty(&mut out, raw, 0).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\n    \"b\": 123456789012345678901234567890,\n    \"a\": [\n        1e-05,\n        \
             \"caf\\u00e9\"\n    ],\n    \"c\": {}\n}"
        );
        // Equal values, written differently, have one canonical text.
        assert_eq!(
            canonical(raw),
            canonical(r#"{"c":{},"a":[1e-05,"café"],"b":123456789012345678901234567890}"#)
        );
    }

    fn pretty(raw: &str, depth: usize) -> String {
        let mut out = Vec::new();
        write_pretty(&mut out, raw, depth).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pretty_is_pythons_indent_4() {
        let raw = r#" {"a":[1,{"b":null,"c":[]},{}] , "d" : "x\"y,}:" , "e":-0.0e+5} "#;
        assert_eq!(
            pretty(raw, 0),
            "{\n    \"a\": [\n        1,\n        {\n            \"b\": null,\n            \
             \"c\": []\n        },\n        {}\n    ],\n    \"d\": \"x\\\"y,}:\",\n    \"e\": -0.0e+5\n}"
        );
        assert_eq!(pretty("[1,2]", 2), "[\n            1,\n            2\n        ]");
        assert_eq!(pretty("12345678901234567890123", 0), "12345678901234567890123");
        assert_eq!(pretty(r#""a\\""#, 0), r#""a\\""#);
    }

    #[test]
    fn pretty_of_pretty_is_the_same() {
        let raw = "{\n    \"a\": [\n        1e400,\n        true\n    ]\n}";
        assert_eq!(pretty(raw, 0), raw);
    }

    #[test]
    fn canonical_sorts_keys_and_keeps_numbers() {
        assert_eq!(
            canonical(r#"{"b": 1, "a": {"y": [2, 1.0], "x": 1e400}}"#),
            r#"{"a":{"x":1e400,"y":[2,1.0]},"b":1}"#
        );
        assert_eq!(canonical(r#""\u00e9\/""#), canonical(r#""é/""#));
        assert_ne!(
            canonical("123456789012345678901234567890"),
            canonical("123456789012345678901234567891")
        );
        // A lone surrogate is kept as written rather than dropped.
        assert_eq!(canonical(r#"["\ud800"]"#), r#"["\ud800"]"#);
    }
}
