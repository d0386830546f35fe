//! The one check of an archive (a zip, or a folder) against the listing it is given, shared
//! by backups and snapshots: each product parses its own manifest and checks its own fields
//! (`backup/verify.rs`, `snapshot/verify.rs`), this module knows neither. It is used after
//! writing one, by `backup verify`, `snapshot verify`, and before a restore.
//!
//! Every entry is read to its end (so a zip entry's CRC is checked) and hashed; its size is
//! compared with what the zip directory declares; names that could escape (absolute, `..`,
//! backslashes) are refused, and so is every link that, followed as the OS would (through
//! the other links stored beside it), leads out of its own part (`users/`, `code/`,
//! `data/`), every entry stored under a link, and (in a backup) every link outside
//! `users/`; then the manifest, parsed as it streams, must list exactly what is there
//! with the same sizes and digests, and its own fields must hold. Large zips are read on
//! every core (each thread takes every n-th entry of one shared, parsed directory).

mod shared_file;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::{self, File},
    io::{self, BufReader, Read},
    path::Path,
};

use serde::{de::DeserializeOwned, Serialize};
use zip::ZipArchive;

use self::shared_file::SharedFile;
use crate::{files, pack::FileEntry, paths, report::Bar, zipcheck, Problem};

/// What a check found.
#[derive(Debug, Serialize)]
pub struct Report<M> {
    /// The manifest, when it could be read.
    #[serde(skip)]
    pub manifest: Option<M>,
    /// Entries read.
    pub entries: usize,
    /// Every problem found, each naming the entry; one with the archive as a whole names
    /// none (the caller names the archive).
    pub problems: Vec<Problem>,
    /// Made by the service itself: its manifest holds no digests, so the entries were
    /// checked for what they carry (CRCs, JSON that parses, the manifest's fields) only.
    #[serde(skip)]
    pub made_by_service: bool,
}

impl<M> Default for Report<M> {
    fn default() -> Self {
        Self { manifest: None, entries: 0, problems: Vec::new(), made_by_service: false }
    }
}

impl<M> Report<M> {
    /// No problem.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems on one line, `; ` between them.
    pub fn problems_text(&self) -> String {
        self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

/// The JSON entries among `names` of the backup at `path` (a zip, opened once, or a
/// folder) that do not parse.
pub(crate) fn json_problems<'a>(
    path: &Path,
    names: impl Iterator<Item = &'a String>,
) -> Vec<Problem> {
    let parse = |r: &mut dyn Read| {
        serde_json::from_reader::<_, serde::de::IgnoredAny>(io::BufReader::new(r))
            .map(|_| ())
            .map_err(|e| format!("not valid JSON: {e}"))
    };
    let mut archive = None;
    if !path.is_dir() {
        let opened = File::open(path).map_err(|e| format!("cannot open: {e}")).and_then(|f| {
            zipcheck::open(io::BufReader::new(f)).map_err(|e| format!("cannot read: {e}"))
        });
        match opened {
            Ok((a, _)) => archive = Some(a),
            Err(e) => return vec![Problem::general(e)],
        }
    }
    let mut problems = Vec::new();
    for name in names {
        let parsed = match archive.as_mut() {
            None => File::open(path.join(name))
                .map_err(|e| format!("cannot open: {e}"))
                .and_then(|mut f| parse(&mut f)),
            Some(archive) => archive
                .by_name(name)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|mut entry| {
                    let limit = entry.size();
                    parse(&mut (&mut entry).take(limit))
                }),
        };
        if let Err(e) = parsed {
            problems.push(Problem::at(name, e));
        }
    }
    problems
}

/// What was found for one stored file.
pub(crate) struct Seen {
    /// Its size (a link: its target's length).
    pub size: u64,
    /// Its SHA-256 (a link: its target's).
    pub sha256: [u8; 32],
    /// A link's target.
    pub link: Option<String>,
}

/// Everything read from a zip or folder: its entries, its manifest, and problems.
pub(crate) struct Scan<M> {
    /// Entries read.
    pub entries: usize,
    /// Every stored file, by name.
    pub seen: BTreeMap<String, Seen>,
    /// The manifest, parsed, when there is one.
    pub manifest: Option<Result<M, Problem>>,
    /// Problems, each with its entry's index (they are reported in that order).
    pub problems: Vec<(usize, Problem)>,
}

impl<M> Scan<M> {
    /// The same scan with its manifest turned into another type (or a problem).
    pub(crate) fn map<N>(self, f: impl FnOnce(M) -> Result<N, Problem>) -> Scan<N> {
        Scan {
            entries: self.entries,
            seen: self.seen,
            manifest: self.manifest.map(|m| m.and_then(f)),
            problems: self.problems,
        }
    }
}

impl<M> Default for Scan<M> {
    fn default() -> Self {
        Self { entries: 0, seen: BTreeMap::new(), manifest: None, problems: Vec::new() }
    }
}

/// Which links an archive may hold.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Links {
    /// A backup: links only under `users/` (restore puts config files at the root, where a
    /// link's target would mean something else), resolving into `users/`.
    UsersOnly,
    /// A snapshot: a link resolves into the part it is stored under (`code/`, `data/`).
    OwnPart,
}

/// The scan checked: its problems in entry order, the links by `links`, the manifest
/// there and listing exactly what was found (`container` names the archive in problems),
/// then its own fields by `fields`.
pub(crate) fn check<M>(
    scan: Result<Scan<M>, Problem>,
    manifest_name: &str,
    container: &str,
    links: Links,
    fields: impl FnOnce(&M, &BTreeMap<String, Seen>, &mut Vec<Problem>),
) -> Report<M>
where
    M: Listing,
{
    let mut report = Report::default();
    let mut scan = match scan {
        Ok(s) => s,
        Err(p) => {
            report.problems.push(p);
            return report;
        }
    };
    report.entries = scan.entries;
    scan.problems.sort_by_key(|(i, _)| *i);
    report.problems.extend(scan.problems.into_iter().map(|(_, p)| p));
    check_links(&scan.seen, links, &mut report.problems);
    let manifest = match scan.manifest {
        None => {
            report.problems.push(Problem::at(manifest_name, "missing"));
            return report;
        }
        Some(Err(p)) => {
            report.problems.push(p);
            return report;
        }
        Some(Ok(m)) => m,
    };
    check_listed(manifest.files(), &scan.seen, container, &mut report.problems);
    fields(&manifest, &scan.seen, &mut report.problems);
    report.manifest = Some(manifest);
    report
}

/// A manifest that lists stored files.
pub(crate) trait Listing {
    /// The stored files it lists.
    fn files(&self) -> &[FileEntry];
}

/// Below this size one thread reads the whole zip.
const PARALLEL_FROM: u64 = 4 << 20;

/// Reads every entry of the zip at `path` (on several threads when it is large), the one
/// named `manifest_name` parsed as `M`, telling `bar` the compressed bytes read.
pub(crate) fn scan_zip<M: DeserializeOwned + Send>(
    path: &Path,
    manifest_name: &str,
    bar: &dyn Bar,
) -> Result<Scan<M>, Problem> {
    let len = fs::metadata(path).map_err(|e| Problem::general(format!("cannot open: {e}")))?.len();
    let threads = if len >= PARALLEL_FROM {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
    } else {
        1
    };
    // One parsed directory, shared by every thread.
    let archive = File::open(path)
        .and_then(SharedFile::new)
        .map_err(|e| Problem::general(format!("cannot open: {e}")))?;
    // Checked before the `zip` crate reads it: counts, sizes and overlaps against the
    // file's real length (see `zipcheck`).
    let (archive, _) = zipcheck::open(archive)
        .map_err(|e| Problem::general(format!("not a readable zip archive: {e}")))?;
    let parts: Vec<Result<Scan<M>, Problem>> = if threads == 1 {
        vec![Ok(scan_entries(archive, 0, 1, manifest_name, bar))]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let archive = archive.clone();
                    s.spawn(move || scan_entries(archive, t, threads, manifest_name, bar))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| Problem::general("a verification thread panicked")))
                .collect()
        })
    };
    let mut all = Scan::default();
    for part in parts {
        let p = part?;
        all.entries += p.entries;
        all.seen.extend(p.seen);
        all.manifest = all.manifest.or(p.manifest);
        all.problems.extend(p.problems);
    }
    Ok(all)
}

/// Reads entries `t`, `t + n`, `t + 2n`, ... of the zip to their end.
fn scan_entries<M: DeserializeOwned>(
    mut archive: ZipArchive<SharedFile>,
    t: usize,
    n: usize,
    manifest_name: &str,
    bar: &dyn Bar,
) -> Scan<M> {
    let mut part = Scan::default();
    let mut buf = vec![0u8; 1 << 16];
    for i in (t..archive.len()).step_by(n) {
        let mut entry = match archive.by_index(i) {
            Ok(e) => {
                bar.inc(e.compressed_size());
                e
            }
            Err(e) => {
                part.problems
                    .push((i, Problem::at(format!("entry #{i}"), format!("cannot be read: {e}"))));
                continue;
            }
        };
        let name = entry.name().to_string();
        part.entries += 1;
        if let Some(why) = paths::unsafe_name(&name) {
            part.problems
                .push((i, Problem::at(format!("entry {name:?}"), format!("refused: {why}"))));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        let is_link = entry.is_symlink();
        let declared = entry.size();
        // Never inflate more than the directory declares (and `zipcheck` bounded that by
        // what the compressed bytes can hold): one byte more shows the lie.
        let mut entry = (&mut entry).take(declared.saturating_add(1));
        if name == manifest_name {
            part.manifest = Some(read_manifest(&mut entry, manifest_name));
            // The entry must also be read to its end so its CRC is checked.
            match io::copy(&mut entry, &mut io::sink()) {
                Err(e) => part.problems.push((i, Problem::at(&name, format!("corrupt: {e}")))),
                Ok(_) if entry.limit() == 0 => {
                    part.problems.push((i, inflates_past(&name, declared)))
                }
                Ok(_) => {}
            }
            continue;
        }
        let read = files::sha256_of(&mut entry, &mut buf, if is_link { 4096 } else { 0 });
        let digest = match read {
            Ok(d) => d,
            Err(e) => {
                part.problems.push((i, Problem::at(&name, format!("corrupt: {e}"))));
                continue;
            }
        };
        if digest.size > declared {
            part.problems.push((i, inflates_past(&name, declared)));
            continue;
        }
        if digest.size != declared {
            // Other unzip tools trust the directory's size: it must be right.
            part.problems.push((
                i,
                Problem::at(
                    &name,
                    format!(
                        "the zip directory says {declared} bytes, the data holds {}",
                        digest.size
                    ),
                ),
            ));
        }
        let link = is_link.then(|| String::from_utf8_lossy(&digest.head).into_owned());
        part.seen.insert(name, Seen { size: digest.size, sha256: digest.sha256, link });
    }
    part
}

fn inflates_past(name: &str, declared: u64) -> Problem {
    Problem::at(
        name,
        format!("its data inflate to more than the {declared} bytes the zip directory says (read no further)"),
    )
}

/// Every link, followed as the OS would follow it once the archive is extracted (through
/// the other links stored in it, at most [`paths::MAX_HOPS`] of them), must lead into
/// the part it is stored under; no entry may lie under a stored link (extraction would
/// write through it); a backup holds links under `users/` only.
fn check_links(seen: &BTreeMap<String, Seen>, rule: Links, problems: &mut Vec<Problem>) {
    let link_of = |p: &str| seen.get(p).and_then(|s| s.link.clone());
    for name in seen.keys() {
        let under = name
            .match_indices('/')
            .map(|(i, _)| &name[..i])
            .find(|prefix| seen.get(*prefix).is_some_and(|s| s.link.is_some()));
        if let Some(link) = under {
            problems.push(Problem::at(
                name,
                format!("refused: it lies under the link {link} stored in the same archive"),
            ));
        }
    }
    for (name, target) in seen.iter().filter_map(|(n, s)| Some((n, s.link.as_ref()?))) {
        let top = name.split('/').next().unwrap_or("");
        if matches!(rule, Links::UsersOnly) && top != "users" {
            problems.push(Problem::at(
                name,
                format!(
                    "refused: a link ({target}) outside users/; config files, logs and code are \
                     only ever stored as regular files"
                ),
            ));
            continue;
        }
        if target.contains(['\\', '\0']) {
            problems.push(Problem::at(
                name,
                format!("refused: a link pointing outside ({target:?} holds a backslash or NUL)"),
            ));
            continue;
        }
        match paths::resolve(name, link_of) {
            Ok(dest) if dest.strip_prefix(top).is_some_and(|rest| rest.starts_with('/')) => {}
            Ok(dest) => problems.push(Problem::at(
                name,
                format!(
                    "refused: a link pointing outside {top}/ ({target}, which leads to {dest})"
                ),
            )),
            Err(why) => problems.push(Problem::at(
                name,
                format!("refused: a link pointing outside {top}/ ({target}: {why})"),
            )),
        }
    }
}

/// A manifest parsed as it streams (no copy of its text): a read error shows as
/// "corrupt", a bad document as "malformed".
fn read_manifest<M: DeserializeOwned>(r: &mut impl Read, name: &str) -> Result<M, Problem> {
    serde_json::from_reader::<_, M>(BufReader::new(r)).map_err(|e| {
        if e.is_io() {
            Problem::at(name, format!("corrupt: {e}"))
        } else {
            Problem::at(name, format!("malformed: {e}"))
        }
    })
}

/// A folder (a snapshot or a backup): every file hashed, links read (and checked like a
/// zip's), the file named `manifest_name` parsed as `M`.
pub(crate) fn scan_folder<M: DeserializeOwned>(root: &Path, manifest_name: &str) -> Scan<M> {
    let mut scan = Scan::default();
    let mut buf = vec![0u8; 1 << 16];
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let mut at = 0usize;
    let mut problem = |scan: &mut Scan<M>, p: Problem| {
        at += 1;
        scan.problems.push((at, p));
    };
    while let Some((dir, prefix)) = stack.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                let what = format!("cannot read: {e}");
                let p = if prefix.is_empty() {
                    Problem::general(what)
                } else {
                    Problem::at(prefix.trim_end_matches('/'), what)
                };
                problem(&mut scan, p);
                continue;
            }
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
                let name = format!("{prefix}{}", e.file_name().to_string_lossy());
                problem(&mut scan, Problem::at(name, "name is not valid UTF-8"));
                continue;
            };
            let name = format!("{prefix}{file_name}");
            let Ok(ft) = e.file_type() else {
                problem(&mut scan, Problem::at(&name, "cannot be read"));
                continue;
            };
            if ft.is_dir() {
                stack.push((path, format!("{name}/")));
                continue;
            }
            scan.entries += 1;
            if ft.is_symlink() {
                match fs::read_link(&path) {
                    Ok(t) => {
                        let t = t.to_string_lossy().into_owned();
                        let d = files::sha256_of(&mut t.as_bytes(), &mut buf, 0)
                            .expect("reading from memory cannot fail");
                        scan.seen
                            .insert(name, Seen { size: d.size, sha256: d.sha256, link: Some(t) });
                    }
                    Err(e) => {
                        problem(&mut scan, Problem::at(&name, format!("cannot read link: {e}")))
                    }
                }
            } else if name == manifest_name {
                scan.entries -= 1;
                scan.manifest = Some(
                    File::open(&path)
                        .map_err(|e| Problem::at(manifest_name, format!("cannot open: {e}")))
                        .and_then(|mut f| read_manifest(&mut f, manifest_name)),
                );
            } else {
                match File::open(&path).and_then(|mut f| files::sha256_of(&mut f, &mut buf, 0)) {
                    Ok(d) => {
                        scan.seen.insert(name, Seen { size: d.size, sha256: d.sha256, link: None });
                    }
                    Err(e) => {
                        problem(&mut scan, Problem::at(&name, format!("cannot be read: {e}")))
                    }
                }
            }
        }
    }
    scan
}

/// Every listed file is there with its size, digest and kind; nothing else is there.
fn check_listed(
    files: &[FileEntry],
    seen: &BTreeMap<String, Seen>,
    container: &str,
    problems: &mut Vec<Problem>,
) {
    let mut listed = BTreeSet::new();
    for f in files {
        listed.insert(f.path.as_str());
        match seen.get(&f.path) {
            None => problems.push(Problem::at(
                &f.path,
                format!("listed in the manifest but missing from {container}"),
            )),
            Some(s) => {
                if s.size != f.size {
                    problems.push(Problem::at(
                        &f.path,
                        format!("size {} but the manifest says {}", s.size, f.size),
                    ));
                }
                if files::hex(&s.sha256) != f.sha256 {
                    problems.push(Problem::at(&f.path, "SHA-256 differs from the manifest"));
                }
                if s.link.is_some() != f.link.is_some() {
                    problems.push(Problem::at(&f.path, "link/file kind differs from the manifest"));
                }
            }
        }
    }
    for name in seen.keys().filter(|n| !listed.contains(n.as_str())) {
        problems.push(Problem::at(name, format!("in {container} but not in the manifest")));
    }
}

/// The manifest's `file_count` and `total_bytes` (its own names for them) match `files`.
pub(crate) fn check_count_and_total(
    name: &str,
    file_count: u64,
    total_bytes: u64,
    files: &[FileEntry],
    problems: &mut Vec<Problem>,
) {
    if file_count != files.len() as u64 {
        problems.push(Problem::at(
            name,
            format!("file_count is {file_count} but {} files are listed", files.len()),
        ));
    }
    let total: u64 = files.iter().map(|f| f.size).sum();
    if total_bytes != total {
        problems.push(Problem::at(
            name,
            format!("total_bytes is {total_bytes} but the listed files add up to {total}"),
        ));
    }
}

/// `created_at` is an RFC 3339 time.
pub(crate) fn check_created_at(name: &str, created_at: &str, problems: &mut Vec<Problem>) {
    if chrono::DateTime::parse_from_rfc3339(created_at).is_err() {
        problems
            .push(Problem::at(name, format!("created_at {created_at:?} is not an RFC 3339 time")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(rule: Links, links: &[(&str, &str)], files: &[&str]) -> Vec<Problem> {
        let seen =
            |link: Option<&str>| Seen { size: 0, sha256: [0; 32], link: link.map(Into::into) };
        let mut all: BTreeMap<String, Seen> =
            links.iter().map(|(n, t)| (n.to_string(), seen(Some(t)))).collect();
        all.extend(files.iter().map(|n| (n.to_string(), seen(None))));
        let mut out = Vec::new();
        check_links(&all, rule, &mut out);
        out
    }

    #[test]
    fn links_stay_in_their_part() {
        let ok = |rule, links: &[(&str, &str)]| problems(rule, links, &[]).is_empty();
        assert!(ok(Links::UsersOnly, &[("users/u1/a", "b")]));
        assert!(ok(Links::UsersOnly, &[("users/u1/a", "../u2/b")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "../../config/.env")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "../../../x")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "/etc/passwd")]));
        assert!(!ok(Links::UsersOnly, &[("users/a", "..")]));
        assert!(!ok(Links::UsersOnly, &[("config/.env", "requirements.txt")]));
        assert!(ok(Links::OwnPart, &[("data/users/u1/a", "../../user_index.json")]));
        assert!(!ok(Links::OwnPart, &[("code/a", "../data/x")]));
        // Through another link: `up` leads to users/, so `x` climbs two levels above it.
        assert!(!ok(Links::UsersOnly, &[("users/u1/up", ".."), ("users/u1/x", "up/../../.env")]));
        assert!(!ok(Links::UsersOnly, &[("users/u1/a", "b"), ("users/u1/b", "a")]));
        let under = problems(Links::UsersOnly, &[("users/u1/d", "../u2")], &["users/u1/d/f"]);
        assert!(under[0].what.contains("under the link users/u1/d"), "{under:?}");
    }
}
