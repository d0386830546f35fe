//! Which zip entry names are safe, and where a link leads: the checks used by collect,
//! verify and extraction.

use std::path::Path;

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
    // `a/./b` and `a//b` name what `a/b` names: one file could be stored twice. A folder
    // entry ends with `/` (its last part is empty).
    let parts = name.strip_suffix('/').unwrap_or(name);
    if parts.split('/').any(|part| part.is_empty() || part == ".") {
        return Some("a `.` or empty component");
    }
    None
}

/// Whether `name` is one plain folder name (a user id): not empty, not `.` or `..`, no
/// separator, NUL or drive letter.
pub fn is_folder_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && name.as_bytes().get(1) != Some(&b':')
}

/// At most this many links are followed while resolving one path (Linux allows 40).
pub const MAX_HOPS: usize = 40;

/// Why a path could not be resolved inside its base.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// It climbs above the base (`..` too many times, through links or not).
    Escapes,
    /// A link on the way is absolute (and, on disk, not under the base).
    Absolute(String),
    /// More than [`MAX_HOPS`] links on the way (a loop, or a chain built to confuse).
    TooManyLinks,
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Escapes => f.write_str("it resolves outside"),
            Unresolved::Absolute(t) => write!(f, "it resolves outside (absolute link {t})"),
            Unresolved::TooManyLinks => write!(f, "more than {MAX_HOPS} links on the way"),
        }
    }
}

/// Where the `/`-separated relative path `path` leads when every link on the way (the
/// last component included) is followed as the OS would, `..` applying to the folder a
/// link leads to, not to the link's name. `link_of(p)` says whether the resolved path `p`
/// is a link and its target (relative to the link's folder; absolute targets fail).
/// Components that are not links are taken as folders, whether they exist or not.
pub fn resolve(
    path: &str,
    mut link_of: impl FnMut(&str) -> Option<String>,
) -> Result<String, Unresolved> {
    let mut done: Vec<String> = Vec::new();
    let mut todo: std::collections::VecDeque<String> = path.split('/').map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        match part.as_str() {
            "" | "." => {}
            ".." => {
                done.pop().ok_or(Unresolved::Escapes)?;
            }
            _ => {
                done.push(part);
                let Some(target) = link_of(&done.join("/")) else { continue };
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(Unresolved::TooManyLinks);
                }
                if is_absolute(&target) {
                    return Err(Unresolved::Absolute(target));
                }
                done.pop();
                for (i, t) in target.split('/').enumerate() {
                    todo.insert(i, t.to_owned());
                }
            }
        }
    }
    Ok(done.join("/"))
}

/// A target that does not resolve against the link's folder: `/x`, `\x`, `C:...`.
fn is_absolute(target: &str) -> bool {
    target.starts_with(['/', '\\']) || target.as_bytes().get(1) == Some(&b':')
}

/// [`resolve`] on disk: `path` is relative to the folder `base`, and links are read from
/// the disk. An absolute link target under `base` is followed (as relative to `base`);
/// any other absolute target fails.
pub fn resolve_on_disk(base: &Path, path: &str) -> Result<String, Unresolved> {
    resolve(path, |p| {
        let target = std::fs::read_link(base.join(p)).ok()?;
        if !target.is_absolute() {
            return Some(slashes(&target));
        }
        match normalize(&target).strip_prefix(base) {
            // From the link's folder back up to `base`, then down to the target.
            Ok(rest) => Some(format!("{}{}", "../".repeat(p.matches('/').count()), slashes(rest))),
            Err(_) => Some(target.to_string_lossy().into_owned()),
        }
    })
}

/// A relative path with `/` between its parts (Windows' `\` too; elsewhere a `\` is
/// part of a name).
fn slashes(path: &Path) -> String {
    let s = path.to_string_lossy();
    if cfg!(windows) {
        s.replace('\\', "/")
    } else {
        s.into_owned()
    }
}

pub use mhm_fsx::normalize;

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
        assert!(unsafe_name("users/./x").is_some());
        assert!(unsafe_name("users//x").is_some());
        assert!(unsafe_name("./x").is_some());
        assert_eq!(unsafe_name("users/u1/"), None);
        assert!(is_folder_name("u1") && is_folder_name("a.b"));
        for bad in ["", ".", "..", "a/b", "a\\b", "C:x"] {
            assert!(!is_folder_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn resolution_follows_links_like_the_os() {
        let links = [("users/u1/up", ".."), ("users/u1/x", "up/../../.env"), ("a/l", "l")];
        let of = |p: &str| links.iter().find(|(n, _)| *n == p).map(|(_, t)| t.to_string());
        assert_eq!(resolve("users/u1/up/u2/f", of).as_deref(), Ok("users/u2/f"));
        // As text `users/.env`; through `up` (-> users) two levels higher.
        assert_eq!(resolve("users/u1/x", of), Err(Unresolved::Escapes));
        assert_eq!(resolve("a/l", of), Err(Unresolved::TooManyLinks));
        assert_eq!(resolve("users/u1/../u2", of).as_deref(), Ok("users/u2"));
        assert_eq!(resolve("users/../..", of), Err(Unresolved::Escapes));
        let abs = |p: &str| (p == "users/l").then(|| "/etc".to_string());
        assert_eq!(resolve("users/l/passwd", abs), Err(Unresolved::Absolute("/etc".into())));
    }
}
