//! The service's per-user backups (SPEC.md, "The real MHM's files"):
//! `data/backups/user_backup_<uuid>_<YYYY-MM-DD_HH-MM-SS>.zip`, written by the service
//! before every save that updates several parts of one user's data. They hold
//! `backup_metadata.json` and that user's files, no manifest of ours. A kind of their own
//! (`user`, made by the service): listed, verified for what they carry
//! (`verify::user_backup` in `backup/verify.rs`), never "invalid" for lack of a
//! manifest, never the newest backup, not pushed off-site, and kept by their own rule: the
//! newest [`KEEP_PER_USER`] of each user, none older than `BACKUP_RETENTION_DAYS`.

use std::{
    fs::File,
    io::{BufReader, Read},
    path::Path,
};

/// The name prefix.
pub const PREFIX: &str = "user_backup_";

/// The metadata file of the service's per-user backups.
pub const USER_METADATA: &str = "backup_metadata.json";

/// Per-user backups kept for each user.
pub const KEEP_PER_USER: usize = 10;

/// The user a per-user backup name (without `.zip`) belongs to:
/// `user_backup_<id>_<YYYY-MM-DD_HH-MM-SS>`.
pub fn user_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PREFIX)?;
    // `_YYYY-MM-DD_HH-MM-SS`: 20 characters.
    let cut = rest.len().checked_sub(20)?;
    let (user, stamp) = (rest.get(..cut)?, rest.get(cut..)?);
    let stamp = stamp.strip_prefix('_')?;
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").ok()?;
    (!user.is_empty()).then_some(user)
}

/// Whether `path` is one: a `.zip` named as above.
pub fn is_user_backup(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".zip"))
        .is_some_and(|n| user_of(n).is_some())
}

/// The quick check `backup list` makes (no data read): the zip opens and its metadata is
/// a JSON object.
pub fn quick_check(path: &Path) -> bool {
    let Ok(file) = File::open(path) else { return false };
    let Ok((mut archive, _)) = crate::zipcheck::open(BufReader::new(file)) else { return false };
    let Ok(entry) = archive.by_name(USER_METADATA) else { return false };
    let mut bytes = Vec::new();
    if entry.take(16 << 20).read_to_end(&mut bytes).is_err() {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| v.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let id = "3f2b1c9e-0000-4000-8000-1234567890ab";
        assert_eq!(user_of(&format!("user_backup_{id}_2026-11-28_10-00-01")), Some(id));
        assert_eq!(user_of("user_backup_a_b_2026-11-28_10-00-01"), Some("a_b"));
        assert_eq!(user_of("user_backup__2026-11-28_10-00-01"), None);
        assert_eq!(user_of("user_backup_x_2026-11-28"), None);
        assert_eq!(user_of("mhm_backup_20261128_100001"), None);
    }
}
