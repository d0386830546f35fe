//! A small `.env` parser: `KEY=VALUE` lines, `#` comments, an optional `export `, values
//! optionally in single or double quotes. A line that is none of these is skipped, as
//! python-dotenv skips it, and named (never silently): by its number and its key, never
//! its value (SPEC.md section 8). Whether it stops anything is for the settings to say.

use std::{collections::HashMap, fs, io, path::Path};

use anyhow::{bail, Context, Result};

use crate::{error::UsageError, paths};

/// A `.env` line that does not parse (python-dotenv warns and skips it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BadLine {
    /// Its key, when one could be read (a key that is no name is never shown: it may be
    /// part of a secret).
    pub(crate) key: Option<String>,
    /// What is wrong: `<file>:<line>: [<key>: ]<what>`, never the value.
    pub(crate) what: String,
}

/// Parses the `.env` at `path`; a missing file is empty. Every line that does not parse is
/// skipped and named, relative to the MHM `root` where the file lies under it
/// ([`paths::show`]). A file that cannot be read, or is not UTF-8 text, is an error.
pub(crate) fn load(root: &Path, path: &Path) -> Result<(HashMap<String, String>, Vec<BadLine>)> {
    let shown = || paths::show(root, path);
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Default::default()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", shown())),
    };
    let text = String::from_utf8(text)
        .map_err(|_| UsageError(format!("{}: not valid UTF-8 text", shown())))?;
    let (vars, bad) = parse_all(&text);
    let bad = bad
        .into_iter()
        .map(|(line, key, what)| BadLine { key, what: format!("{}:{line}: {what}", shown()) })
        .collect();
    Ok((vars, bad))
}

/// Parses `.env` text; the first bad line's 1-based number and what is wrong with it.
#[cfg(test)]
pub(crate) fn parse(text: &str) -> Result<HashMap<String, String>, (usize, String)> {
    let (vars, bad) = parse_all(text);
    match bad.into_iter().next() {
        Some((line, _, what)) => Err((line, what)),
        None => Ok(vars),
    }
}

/// The variables of a `.env` text, and its bad lines: each one's 1-based number, its key
/// when one was read, and what is wrong.
pub(crate) type Parsed = (HashMap<String, String>, Vec<(usize, Option<String>, String)>);

/// Parses `.env` text as python-dotenv reads it: a UTF-8 byte-order mark, CRLF line ends,
/// `export `, quotes (a double-quoted value may span lines and hold `\"`, `\\`, `\n`,
/// `\t`), inline comments after an unquoted value, and a bare `KEY` line (no value: left
/// unset). A line that does not parse is skipped (a quoted value never closed: that line
/// alone) and returned: its 1-based number, its key when one was read, and what is wrong.
pub(crate) fn parse_all(text: &str) -> Parsed {
    // (`lines()` already takes CRLF line ends.)
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut vars = HashMap::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map(str::trim_start).unwrap_or(line);
        // python-dotenv's unquoted key: anything but `=`, `#` and white space (a key no
        // setting has is read and never used, as there).
        let valid_key = |key: &str| {
            !key.is_empty() && !key.chars().any(|c| c == '=' || c == '#' || c.is_whitespace())
        };
        let Some((key, value)) = line.split_once('=') else {
            if !valid_key(line) {
                // The line is not shown: it may be a secret pasted without its key.
                bad.push((start + 1, None, "expected KEY=VALUE (a line without '=')".into()));
            }
            continue; // a bare KEY: python-dotenv gives it no value
        };
        let key = key.trim();
        if !valid_key(key) {
            // Not shown: a key that is no name may be part of a secret (a wrapped line).
            let what = "invalid variable name (white space or '#' in it)";
            bad.push((start + 1, None, what.into()));
            continue;
        }
        let mut value = value.trim().to_string();
        // A quoted value may go on over the next lines until its closing quote; one never
        // closed is this line's alone (python-dotenv skips the line and reads on).
        if let Some(quote) = value.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let mut joined = value.clone();
            let mut j = i;
            while closing_quote(&joined[1..], quote).is_none() && j < lines.len() {
                joined.push('\n');
                joined.push_str(lines[j]);
                j += 1;
            }
            if closing_quote(&joined[1..], quote).is_some() {
                value = joined;
                i = j;
            }
        }
        // A value is never shown in a message (it may be a secret): the key names it.
        match parse_value(&value) {
            Ok(value) => {
                vars.insert(key.to_string(), value);
            }
            Err(what) => bad.push((start + 1, Some(key.to_string()), format!("{key}: {what}"))),
        }
    }
    (vars, bad)
}

/// Where the closing `quote` is in `rest` (the value after its opening quote); in double
/// quotes a backslash escapes the next character.
fn closing_quote(rest: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (at, c) in rest.char_indices() {
        if escaped {
            escaped = false;
        } else if quote == '"' && c == '\\' {
            escaped = true;
        } else if c == quote {
            return Some(at);
        }
    }
    None
}

fn parse_value(v: &str) -> Result<String, String> {
    for quote in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(quote) {
            let Some(end) = closing_quote(rest, quote) else {
                return Err(format!("unclosed {quote} quote in the value"));
            };
            let after = rest[end + 1..].trim();
            if !after.is_empty() && !after.starts_with('#') {
                return Err("unexpected text after the closing quote of the value".to_string());
            }
            let inner = &rest[..end];
            if quote == '\'' {
                return Ok(inner.to_string());
            }
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some(other @ ('"' | '\\' | '\'')) => out.push(other),
                    Some(other) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => out.push('\\'),
                }
            }
            return Ok(out);
        }
    }
    // Unquoted: a ` #` starts a comment.
    let v = match v.find(" #") {
        Some(at) => v[..at].trim_end(),
        None => v,
    };
    Ok(v.to_string())
}

/// Fails unless `value` is a whole number from 0 to `max`, naming the setting, where it
/// came from and the bound (SPEC.md section 8: a value past it is an error, never an abort).
pub(crate) fn parse_count(name: &str, value: &str, from: &str, max: u64) -> Result<u64> {
    match value.trim().parse::<u64>() {
        Ok(n) if n <= max => Ok(n),
        _ => bail!(UsageError(format!(
            "invalid value {value:?} for {name} (from {from}): expected a whole number, at least 0 and at most {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_comments_quotes_and_export() {
        let vars = parse(
            "# a comment\n\nA=1\nexport B = two words \nC=\"quoted # not a comment\"\nD='x' # c\nE=v # c\nF=\n",
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "quoted # not a comment");
        assert_eq!(vars["D"], "x");
        assert_eq!(vars["E"], "v");
        assert_eq!(vars["F"], "");
    }

    // regression: a .env saved by Notepad (BOM, CRLF) stopped every command with exit 2
    #[test]
    fn a_byte_order_mark_and_crlf_are_read_as_python_dotenv_reads_them() {
        let vars = parse("\u{feff}LOG_MAX_BYTES=1024\r\nexport B=\"two\"\r\n").unwrap();
        assert_eq!(vars["LOG_MAX_BYTES"], "1024");
        assert_eq!(vars["B"], "two");
        assert_eq!(vars.len(), 2);
    }

    // regression (issue 21, second round): a wrapped token line is a key python-dotenv
    // accepts (anything but `=`, `#` and white space): read, never shown.
    #[test]
    fn a_key_python_dotenv_accepts_is_read_and_a_bad_one_never_shown() {
        let vars = parse("A=1\nMTA5.hunter2/SecretTokenRest+==\n").unwrap();
        assert_eq!(vars["MTA5.hunter2/SecretTokenRest+"], "=");
        assert_eq!(vars["A"], "1");
        let (line, what) = parse("A=1\nbad key hunter2=1\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(!what.contains("hunter2"), "{what}");
    }

    // regression (issue 21): python-dotenv's multi-line values, escaped quotes and bare
    // keys stopped every command with exit 2
    #[test]
    fn multi_line_values_escaped_quotes_and_bare_keys_are_read() {
        let vars = parse(
            "KEY=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nQ=\"say \\\"hi\\\"\"\nBARE\nAFTER=1\n",
        )
        .unwrap();
        assert_eq!(vars["KEY"], "-----BEGIN KEY-----\nabc\n-----END KEY-----");
        assert_eq!(vars["Q"], "say \"hi\"");
        assert!(!vars.contains_key("BARE"));
        assert_eq!(vars["AFTER"], "1");
    }

    // regression: one unparsable line (an unclosed quote) stopped the reading there: every
    // command said only that line, and the lines after it were never read.
    #[test]
    fn every_bad_line_is_skipped_and_named_and_the_rest_read() {
        let (vars, bad) = parse_all(
            "A=1\nSECRET_TOKEN=\"unterminated hunter2\nB=2\nnot a setting\nC='x' junk\nD=4\n",
        );
        assert_eq!((vars["A"].as_str(), vars["B"].as_str(), vars["D"].as_str()), ("1", "2", "4"));
        assert_eq!(vars.len(), 3, "{vars:?}");
        let lines: Vec<(usize, Option<&str>)> =
            bad.iter().map(|(line, key, _)| (*line, key.as_deref())).collect();
        assert_eq!(lines, [(2, Some("SECRET_TOKEN")), (4, None), (5, Some("C"))]);
        for (_, _, what) in &bad {
            assert!(!what.contains("hunter2") && !what.contains("junk"), "{what}");
        }
        assert!(bad[0].2.starts_with("SECRET_TOKEN: unclosed"), "{}", bad[0].2);
    }

    #[test]
    fn bad_lines_name_the_line() {
        assert_eq!(parse("A=1\nnot a setting\n").unwrap_err().0, 2);
        assert_eq!(parse("a b=1\n").unwrap_err().0, 1);
        // python-dotenv reads `1A` as a key too.
        assert_eq!(parse("1A=1\n").unwrap()["1A"], "1");
        assert_eq!(parse("A=\"open\n").unwrap_err().0, 1);
        assert!(parse("A=\"x\" junk\n").is_err());
    }
}
