//! Which zip entry names are safe, where a link leads (the checks used by collect, verify
//! and extraction), and how a path is shown to the user ([`show`]).

use std::{
    ffi::OsStr,
    path::{Component, Path, Prefix},
};

/// How every path the sidecar writes for a user (tables, messages, problems, `--json`,
/// `logs/sidecar.log`) is shown (SPEC section 7):
///
/// - a path under `root` is written relative to it, with `/` between its parts on every
///   platform (`data/users/u1/messages/sent_messages.json`), and `.` for the root itself;
/// - any other path is written as the platform writes it, made absolute and normalised
///   (`C:\Users\me\reports\r.json` on Windows), whether the user gave it relative or not.
///
/// "Under" is decided after both paths are made absolute against the current directory and
/// normalised ([`mhm_fsx::absolute`]), ignoring Windows' `\\?\` verbatim prefixes, the
/// case of drive letters and (on Windows, whose file systems ignore it) the ASCII case of
/// every part. No file-system access: links are not followed.
pub fn show(root: &Path, path: &Path) -> String {
    let abs = mhm_fsx::absolute(path);
    match below(&mhm_fsx::absolute(root), &abs) {
        Some(parts) if parts.is_empty() => ".".to_string(),
        Some(parts) => parts.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>().join("/"),
        None => abs.display().to_string(),
    }
}

/// `name` as a terminal may show it: unchanged when it holds no control character, else
/// each control character written as Rust writes it in a string (`\n`, `\u{1b}`), so a
/// name from a backup can neither forge an output line nor send escape sequences.
pub fn printable(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The parts of `path` below `root` (both absolute and normalised), or `None` when `path`
/// is not under `root`.
fn below<'a>(root: &Path, path: &'a Path) -> Option<Vec<&'a OsStr>> {
    let mut parts = path.components();
    for want in root.components() {
        if !same_component(want, parts.next()?) {
            return None;
        }
    }
    Some(parts.map(Component::as_os_str).collect())
}

/// Whether two components name the same thing (see [`show`] for what is ignored).
fn same_component(a: Component<'_>, b: Component<'_>) -> bool {
    match (a, b) {
        (Component::Prefix(a), Component::Prefix(b)) => {
            prefix_key(a.kind()) == prefix_key(b.kind())
        }
        (Component::Normal(a), Component::Normal(b)) if cfg!(windows) => a.eq_ignore_ascii_case(b),
        (a, b) => a == b,
    }
}

/// A Windows path prefix without its verbatim form and with its case folded.
fn prefix_key(p: Prefix<'_>) -> String {
    match p {
        Prefix::Disk(d) | Prefix::VerbatimDisk(d) => format!("{}:", d.to_ascii_uppercase() as char),
        Prefix::UNC(server, share) | Prefix::VerbatimUNC(server, share) => format!(
            "//{}/{}",
            server.to_string_lossy().to_ascii_lowercase(),
            share.to_string_lossy().to_ascii_lowercase()
        ),
        Prefix::Verbatim(s) | Prefix::DeviceNS(s) => {
            format!("/{}", s.to_string_lossy().to_ascii_lowercase())
        }
    }
}

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

/// A user id given on the command line ([`is_folder_name`]), or a usage error.
pub fn check_user_id(id: &str) -> anyhow::Result<()> {
    if is_folder_name(id) {
        Ok(())
    } else {
        Err(crate::error::usage(format!(
            "invalid user id {id:?}: expected a folder name under data/users"
        )))
    }
}

/// Whether `name` is a plain name the sidecar makes a file name from (a backup, a tool, a
/// domain): 1 to 200 ASCII letters, digits, `_`, `-` and `.`, not starting with `.`. The
/// one rule for such names; user ids, which the service makes, follow [`is_folder_name`].
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// [`is_plain_name`], or a usage error naming `what` the name is (`"backup name"`).
pub fn check_plain_name(what: &str, name: &str) -> anyhow::Result<()> {
    if is_plain_name(name) {
        Ok(())
    } else {
        Err(crate::error::usage(format!(
            "invalid {what} {name:?}: use letters, digits, '_', '-' and '.', not starting with '.'"
        )))
    }
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
    fn plain_names_are_one_rule_with_one_message() {
        for ok in ["mhm_backup_20260101_010000", "a.b-c_d", "x"] {
            assert!(is_plain_name(ok) && check_plain_name("backup name", ok).is_ok(), "{ok:?}");
        }
        for bad in ["", ".hidden", "a/b", "a\\b", "naïve", "a b", &"x".repeat(201)] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        let e = check_plain_name("tool name", "a/b").unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid tool name \"a/b\": use letters, digits, '_', '-' and '.', not starting with '.'"
        );
        assert!(check_user_id("u1").is_ok() && check_user_id("..").is_err());
    }

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
    fn paths_under_the_root_are_shown_relative_with_slashes() {
        let root = std::path::absolute("some/root").unwrap();
        assert_eq!(show(&root, &root.join("data").join("users").join("u1")), "data/users/u1");
        assert_eq!(show(&root, &root.join("logs/./backups/../app.log")), "logs/app.log");
        assert_eq!(show(&root, &root), ".");
        let outside = root.parent().unwrap().join("elsewhere").join("r.json");
        assert_eq!(show(&root, &outside), outside.display().to_string());
        // A sibling whose name merely starts like the root is outside it.
        let sibling = root.with_file_name("root2").join("x");
        assert_eq!(show(&root, &sibling), sibling.display().to_string());
    }

    #[cfg(windows)]
    #[test]
    fn windows_verbatim_prefixes_and_case_do_not_hide_the_root() {
        let root = Path::new(r"C:\Users\Me\MHM");
        assert_eq!(show(root, Path::new(r"\\?\C:\Users\Me\MHM\data\a.json")), "data/a.json");
        assert_eq!(show(root, Path::new(r"c:\users\me\mhm\logs\app.log")), "logs/app.log");
        assert_eq!(show(Path::new(r"\\?\C:\MHM"), Path::new(r"C:\MHM\x")), "x");
        assert_eq!(show(root, Path::new(r"D:\Users\Me\MHM\x")), r"D:\Users\Me\MHM\x");
        assert_eq!(
            show(Path::new(r"\\server\share\mhm"), Path::new(r"\\?\UNC\Server\Share\mhm\x")),
            "x"
        );
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
