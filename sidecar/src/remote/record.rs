//! The record beside each copy in the store: `<name>.remote.json`, written only after the
//! copy's object was uploaded whole and confirmed. A copy is its object plus its record;
//! an object without a record (an upload cut short) is never counted as a copy.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};

use crate::backup::{manifest::Includes, Kind};

/// What the record's `format` field holds.
pub const FORMAT: &str = "mhm-remote-copy";
/// The record's file name ends with this.
pub const SUFFIX: &str = ".remote.json";

/// One copy's record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Record {
    /// Always [`FORMAT`].
    pub format: String,
    /// The record's version (1).
    pub version: u32,
    /// The backup's name (its file name without `.zip`).
    pub name: String,
    /// From its manifest.
    pub created_at: DateTime<FixedOffset>,
    /// From its manifest.
    pub includes: Includes,
    /// The object's key relative to the prefix: `<name>.zip.age` (`<name>.zip` when
    /// pushed with `--no-encrypt`).
    pub object: String,
    /// Whether the object is age-encrypted.
    pub encrypted: bool,
    /// The public key it was encrypted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The backup zip's size.
    pub plain_size: u64,
    /// The backup zip's SHA-256 (hex).
    pub plain_sha256: String,
    /// The object's size, as sent and as the store reported it.
    pub stored_size: u64,
    /// The object's SHA-256 (hex), as sent.
    pub stored_sha256: String,
    /// The ETag the store reported after the upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// How many parts were uploaded.
    pub parts: u64,
    /// How the upload was confirmed: `etag` (the store's multipart ETag equals the MD5 of
    /// the parts' MD5s computed while sending) or `read-back` (read again and hashed).
    pub confirmed_by: String,
    /// When it was pushed.
    pub pushed_at: DateTime<FixedOffset>,
    /// The sidecar's version that pushed it.
    pub tool_version: String,
}

impl Record {
    /// Its retention group (from its name, as for local backups).
    pub fn kind(&self) -> Kind {
        Kind::of(&self.name)
    }
}

/// The object key (relative to the prefix) of a copy of `name`.
pub fn object_name(name: &str, encrypted: bool) -> String {
    if encrypted {
        format!("{name}.zip.age")
    } else {
        format!("{name}.zip")
    }
}

/// The record key (relative to the prefix) of `name`.
pub fn record_name(name: &str) -> String {
    format!("{name}{SUFFIX}")
}

/// The backup name a record key belongs to.
pub fn name_of_record(key: &str) -> Option<&str> {
    key.strip_suffix(SUFFIX).filter(|n| !n.is_empty() && !n.contains('/'))
}

/// The backup name a copy's object key belongs to.
pub fn name_of_object(key: &str) -> Option<&str> {
    key.strip_suffix(".zip.age")
        .or_else(|| key.strip_suffix(".zip"))
        .filter(|n| !n.is_empty() && !n.contains('/'))
}

/// Whether an ETag is an S3 MD5 ETag (`"<32 hex>"` or, for multipart, `"<32 hex>-N"`),
/// which can be computed locally; other stores (a folder, some providers) give ETags
/// that cannot.
pub fn md5_etag(etag: &str) -> Option<&str> {
    let e = etag.trim_matches('"');
    let (hex, n) = match e.split_once('-') {
        Some((h, n)) => (h, Some(n)),
        None => (e, None),
    };
    let hex_ok = hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    let n_ok = n.is_none_or(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (hex_ok && n_ok).then_some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_etags() {
        assert_eq!(
            name_of_record("weekly_backup_20260101_010000.remote.json"),
            Some("weekly_backup_20260101_010000")
        );
        assert_eq!(name_of_object("a.zip.age"), Some("a"));
        assert_eq!(name_of_object("a.zip"), Some("a"));
        assert_eq!(name_of_object("a.zip.json"), None);
        assert!(md5_etag("\"0123456789abcdef0123456789abcdef-3\"").is_some());
        assert!(md5_etag("0123456789abcdef0123456789abcdef").is_some());
        assert!(md5_etag("1a2b-5f3e-100").is_none());
        assert!(md5_etag("0123456789abcdef0123456789abcdef-").is_none());
    }
}
