//! Which zip entry names are safe: the one check used by verify and by extraction.

use std::path::{Component, Path, PathBuf};

/// Why an entry name is refused, or `None` when it is a plain relative path.
pub fn unsafe_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("an empty name");
    }
    if name.contains('\\') {
        return Some("a backslash in the name");
    }
    if name.contains('\0') {
        return Some("a NUL byte in the name");
    }
    if name.starts_with('/') || name.as_bytes().get(1) == Some(&b':') {
        return Some("an absolute path");
    }
    if name.split('/').any(|part| part == "..") {
        return Some("a `..` component");
    }
    None
}

/// Where a link stored at `entry` (a zip path) pointing to `target` lands, as a zip path;
/// `None` when it leaves the archive or is absolute.
pub fn link_destination(entry: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\\') || target.as_bytes().get(1) == Some(&b':') {
        return None;
    }
    let mut parts: Vec<&str> = entry.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Lexically normalises `path` (no file-system access): `.` dropped, `..` applied.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(unsafe_name("users/u1/a.json"), None);
        assert!(unsafe_name("/etc/passwd").is_some());
        assert!(unsafe_name("users/../../x").is_some());
        assert!(unsafe_name("C:/x").is_some());
        assert!(unsafe_name("users\\x").is_some());
    }

    #[test]
    fn links() {
        assert_eq!(link_destination("users/u1/a", "b").as_deref(), Some("users/u1/b"));
        assert_eq!(link_destination("users/u1/a", "../u2/b").as_deref(), Some("users/u2/b"));
        assert_eq!(link_destination("users/u1/a", "../../../x"), None);
        assert_eq!(link_destination("users/u1/a", "/etc"), None);
    }
}
