//! Verifying a backup: every entry read to its end (so its CRC is checked), every digest
//! compared with the manifest, the manifest's fields checked, unsafe names and links
//! refused. Used after `create`, by `verify`, and before `restore`.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::File,
    io::{self, Read},
    path::Path,
};

use serde::Serialize;
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::{
    manifest::{self, Manifest},
    paths,
    shared_file::SharedFile,
};

/// What verification found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The manifest, when it could be read.
    pub manifest: Option<Manifest>,
    /// Entries read.
    pub entries: usize,
    /// Every problem found, each naming the entry.
    pub problems: Vec<String>,
}

impl Report {
    /// No problem.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Seen {
    size: u64,
    sha256: [u8; 32],
    link: Option<String>,
}

/// What one thread found in its share of the entries.
#[derive(Default)]
struct Part {
    entries: usize,
    seen: BTreeMap<String, Seen>,
    manifest: Option<Result<Manifest, String>>,
    problems: Vec<(usize, String)>,
}

/// Verifies the zip at `path`. Large archives are read on every core (each thread opens
/// the file itself and takes every n-th entry); problems are reported in entry order.
pub fn verify(path: &Path) -> Report {
    let mut report = Report::default();
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => {
            report.problems.push(format!("{}: cannot open: {e}", path.display()));
            return report;
        }
    };
    let threads = if len >= 4 << 20 {
        std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
    } else {
        1
    };
    // One parsed directory, shared by every thread.
    let archive = match File::open(path)
        .and_then(SharedFile::new)
        .map_err(|e| format!("{}: cannot open: {e}", path.display()))
        .and_then(|f| {
            ZipArchive::new(f)
                .map_err(|e| format!("{}: not a readable zip archive: {e}", path.display()))
        }) {
        Ok(a) => a,
        Err(e) => {
            report.problems.push(e);
            return report;
        }
    };
    let parts: Vec<Result<Part, String>> = if threads == 1 {
        vec![scan(archive, 0, 1)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let archive = archive.clone();
                    s.spawn(move || scan(archive, t, threads))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a verification thread panicked".into())))
                .collect()
        })
    };
    let mut seen = BTreeMap::new();
    let mut manifest_bytes = None;
    let mut problems = Vec::new();
    for part in parts {
        match part {
            Err(e) => {
                report.problems.push(e);
                return report;
            }
            Ok(p) => {
                report.entries += p.entries;
                seen.extend(p.seen);
                manifest_bytes = manifest_bytes.or(p.manifest);
                problems.extend(p.problems);
            }
        }
    }
    problems.sort_by_key(|(i, _)| *i);
    report.problems.extend(problems.into_iter().map(|(_, p)| p));
    let manifest = match manifest_bytes {
        None => {
            report.problems.push(format!("{}: missing", manifest::NAME));
            return report;
        }
        Some(Err(e)) => {
            report.problems.push(e);
            return report;
        }
        Some(Ok(m)) => m,
    };
    check_manifest(&manifest, &seen, &mut report.problems);
    report.manifest = Some(manifest);
    report
}

/// Reads entries `t`, `t + n`, `t + 2n`, ... of the zip at `path` to their end.
fn scan(mut archive: ZipArchive<SharedFile>, t: usize, n: usize) -> Result<Part, String> {
    let mut part = Part::default();
    let mut buf = vec![0u8; 1 << 16];
    for i in (t..archive.len()).step_by(n) {
        let mut entry = match archive.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                part.problems.push((i, format!("entry #{i}: cannot be read: {e}")));
                continue;
            }
        };
        let name = entry.name().to_string();
        part.entries += 1;
        if let Some(why) = paths::unsafe_name(&name) {
            part.problems.push((i, format!("entry {name:?}: refused: {why}")));
            continue;
        }
        if entry.is_dir() {
            continue;
        }
        let is_link = entry.is_symlink();
        let declared = entry.size();
        if name == manifest::NAME {
            // Parsed as it streams (no copy of the text); a corrupt entry shows as an I/O
            // error, a bad document as a JSON error.
            let parsed = serde_json::from_reader::<_, Manifest>(io::BufReader::new(entry.by_ref()));
            part.manifest = Some(parsed.map_err(|e| {
                if e.is_io() {
                    format!("{name}: corrupt: {e}")
                } else {
                    format!("{name}: malformed: {e}")
                }
            }));
            // The entry must also be read to its end so its CRC is checked.
            if let Err(e) = io::copy(&mut entry, &mut io::sink()) {
                part.problems.push((i, format!("{name}: corrupt: {e}")));
            }
            continue;
        }
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut link_bytes = Vec::new();
        let read: io::Result<()> = (|| loop {
            let k = match entry.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..k]);
            if is_link && link_bytes.len() < 4096 {
                link_bytes.extend_from_slice(&buf[..k]);
            }
            size += k as u64;
        })();
        if let Err(e) = read {
            part.problems.push((i, format!("{name}: corrupt (read {size} bytes): {e}")));
            continue;
        }
        if size != declared {
            // Other unzip tools trust the directory's size: it must be right.
            part.problems.push((
                i,
                format!("{name}: the zip directory says {declared} bytes, the data holds {size}"),
            ));
        }
        let link = if is_link {
            let target = String::from_utf8_lossy(&link_bytes).into_owned();
            let inside = paths::link_destination(&name, &target)
                .is_some_and(|dest| !name.starts_with("users/") || dest.starts_with("users/"));
            if !inside {
                part.problems
                    .push((i, format!("{name}: refused: a link pointing outside ({target})")));
            }
            Some(target)
        } else {
            None
        };
        part.seen.insert(name, Seen { size, sha256: hasher.finalize().into(), link });
    }
    Ok(part)
}

fn check_manifest(m: &Manifest, seen: &BTreeMap<String, Seen>, problems: &mut Vec<String>) {
    let m_name = manifest::NAME;
    if m.backup_name.trim().is_empty() {
        problems.push(format!("{m_name}: backup_name is empty"));
    }
    if chrono::DateTime::parse_from_rfc3339(&m.created_at).is_err() {
        problems.push(format!("{m_name}: created_at {:?} is not an RFC 3339 time", m.created_at));
    }
    let mut listed = BTreeSet::new();
    for f in &m.files {
        listed.insert(f.path.as_str());
        match seen.get(&f.path) {
            None => problems
                .push(format!("{}: listed in the manifest but missing from the zip", f.path)),
            Some(s) => {
                if s.size != f.size {
                    problems.push(format!(
                        "{}: size {} but the manifest says {}",
                        f.path, s.size, f.size
                    ));
                }
                if manifest::hex(&s.sha256) != f.sha256 {
                    problems.push(format!("{}: SHA-256 differs from the manifest", f.path));
                }
                if s.link.is_some() != f.link.is_some() {
                    problems.push(format!("{}: link/file kind differs from the manifest", f.path));
                }
            }
        }
    }
    for name in seen.keys().filter(|n| !listed.contains(n.as_str())) {
        problems.push(format!("{name}: in the zip but not in the manifest"));
    }
    let users: BTreeSet<&str> = seen
        .keys()
        .filter_map(|n| n.strip_prefix("users/").and_then(|r| r.split('/').next()))
        .collect();
    if m.includes.users && users.len() as u64 != m.system_info.total_users {
        problems.push(format!(
            "{m_name}: total_users is {} but the zip holds {} user folder(s)",
            m.system_info.total_users,
            users.len()
        ));
    }
    if !m.includes.users && !users.is_empty() {
        problems.push(format!("{m_name}: includes.users is false but the zip holds users/"));
    }
    if m.system_info.file_count != m.files.len() as u64 {
        problems.push(format!(
            "{m_name}: file_count is {} but {} files are listed",
            m.system_info.file_count,
            m.files.len()
        ));
    }
    let total: u64 = m.files.iter().map(|f| f.size).sum();
    if m.system_info.total_bytes != total {
        problems.push(format!(
            "{m_name}: total_bytes is {} but the listed files add up to {total}",
            m.system_info.total_bytes
        ));
    }
}
