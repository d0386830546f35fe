//! The plan of a restore: which items (the users folder, one user, each config file) it
//! replaces and where they live, what a dry run shows changed, and the free space it needs.

use std::{
    fs::{self, File},
    path::{Path, PathBuf},
};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::{backup::manifest::Manifest, collect, files, paths, Ctx};

/// What to restore.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The users folder (or one user with `user`).
    pub users: bool,
    /// Config files to their original places.
    pub config: bool,
    /// Only this user's folder.
    pub user: Option<String>,
}

/// One thing swapped in: `key` names it inside the old folder.
#[derive(Clone, Debug, Serialize)]
pub struct Item {
    /// Stable name inside `.restore-old-*`: `users`, `user/<id>` or `config/<file>`.
    pub key: String,
    /// The live path it replaces.
    pub live: PathBuf,
    /// The prefix of its entries in the zip (`users/`, `users/<id>/`, `config/.env`).
    pub entry: String,
    /// Files the backup holds for it.
    pub files: u64,
    /// Their size.
    pub bytes: u64,
    /// With `--dry-run`: how the live files differ from the backup's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
}

/// How the live files of an item differ from the backup's (for `--dry-run`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Changes {
    /// Same content.
    pub unchanged: u64,
    /// Different content: would be overwritten.
    pub changed: Vec<String>,
    /// In the backup only: would be created.
    pub added: Vec<String>,
    /// Live only: would be removed.
    pub removed: Vec<String>,
}

/// The live path for a key, or `None` for a key this version does not know.
pub(super) fn live_for(ctx: &Ctx, key: &str) -> Option<PathBuf> {
    if key == "users" {
        return Some(ctx.data_dir().join("users"));
    }
    if let Some(id) = key.strip_prefix("user/") {
        return paths::is_folder_name(id).then(|| ctx.data_dir().join("users").join(id));
    }
    let file = key.strip_prefix("config/")?;
    collect::config_files(ctx)
        .into_iter()
        .find(|(_, name)| name.strip_prefix("config/") == Some(file))
        .map(|(path, _)| path)
}

/// Plans the items of a restore of `scope` from the verified zip at `path`.
pub(super) fn plan(
    ctx: &Ctx,
    manifest: &Manifest,
    path: &Path,
    scope: &Scope,
) -> Result<Vec<Item>> {
    // Folders by prefix (`users/`), single files by their exact name (`config/.env`).
    let count = |entry: &str| {
        manifest
            .files
            .iter()
            .filter(
                |f| if entry.ends_with('/') { f.path.starts_with(entry) } else { f.path == entry },
            )
            .fold((0, 0), |(n, b), f| (n + 1, b + f.size))
    };
    let mut items = Vec::new();
    if scope.users {
        match &scope.user {
            Some(id) => {
                let prefix = format!("users/{id}/");
                let (files, bytes) = count(&prefix);
                if files == 0 {
                    let users: Vec<&str> = manifest
                        .files
                        .iter()
                        .filter_map(|f| f.path.strip_prefix("users/")?.split('/').next())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    let held = if users.is_empty() {
                        "it holds no users".to_string()
                    } else {
                        format!("the users it holds: {}", users.join(", "))
                    };
                    return Err(crate::error::usage(format!(
                        "no user {:?} in this backup; {held}",
                        paths::printable(id)
                    )));
                }
                items.push(Item {
                    key: format!("user/{id}"),
                    live: ctx.data_dir().join("users").join(id),
                    entry: prefix,
                    files,
                    bytes,
                    changes: None,
                });
            }
            None => {
                let (files, bytes) = count("users/");
                if files == 0 {
                    bail!("{} holds no users/ folder to restore", ctx.show(path));
                }
                items.push(Item {
                    key: "users".into(),
                    live: ctx.data_dir().join("users"),
                    entry: "users/".into(),
                    files,
                    bytes,
                    changes: None,
                });
            }
        }
    }
    if scope.config {
        let mut any = false;
        for (live, name) in collect::config_files(ctx) {
            let (files, bytes) = count(name);
            if files > 0 {
                any = true;
                let file = name.trim_start_matches("config/");
                items.push(Item {
                    key: format!("config/{file}"),
                    live,
                    entry: name.to_string(),
                    files,
                    bytes,
                    changes: None,
                });
            }
        }
        if !any {
            bail!("{} holds no config files to restore", ctx.show(path));
        }
    }
    Ok(items)
}

/// Compares an item's live files with the backup's, by SHA-256.
pub(super) fn changes(manifest: &Manifest, item: &Item) -> Changes {
    let mut buf = vec![0u8; 1 << 16];
    let mut out = Changes::default();
    let mut in_backup = std::collections::BTreeSet::new();
    for f in &manifest.files {
        let rel = if item.entry.ends_with('/') {
            match f.path.strip_prefix(&item.entry) {
                Some(rel) => rel,
                None => continue,
            }
        } else if f.path == item.entry {
            ""
        } else {
            continue;
        };
        in_backup.insert(rel.to_string());
        let live = if rel.is_empty() { item.live.clone() } else { item.live.join(rel) };
        let now = match &f.link {
            Some(_) => {
                fs::read_link(&live).ok().map(|t| t.to_string_lossy().into_owned().into_bytes())
            }
            None => None,
        };
        let digest = match now {
            Some(target) => Some(files::sha256_hex(&target)),
            None if f.link.is_some() => None,
            None => File::open(&live)
                .and_then(|mut file| files::sha256_of(&mut file, &mut buf, 0))
                .ok()
                .map(|d| files::hex(&d.sha256)),
        };
        match digest {
            None => out.added.push(f.path.clone()),
            Some(d) if d == f.sha256 => out.unchanged += 1,
            Some(_) => out.changed.push(f.path.clone()),
        }
    }
    if item.entry.ends_with('/') {
        let mut stack = vec![item.live.clone()];
        while let Some(dir) = stack.pop() {
            for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(p);
                    continue;
                }
                let rel =
                    p.strip_prefix(&item.live).map(|r| r.to_string_lossy().replace('\\', "/"));
                if let Ok(rel) = rel {
                    if !in_backup.contains(&rel) {
                        out.removed.push(format!("{}{rel}", item.entry));
                    }
                }
            }
        }
        out.removed.sort();
    }
    out
}

/// What the disk really holds for `path` (a file or a folder; links count as nothing):
/// (bytes, files). A sparse file counts the blocks it has, not its length.
fn stored_size(path: &Path) -> (u64, u64) {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|r| {
                r.flatten()
                    .map(|e| stored_size(&e.path()))
                    .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
            })
            .unwrap_or((0, 0)),
        Ok(m) if m.is_file() => (crate::files::allocated_size(path, &m), 1),
        _ => (0, 0),
    }
}

/// A file system block: every file extracted takes whole ones.
const BLOCK: u64 = 4096;

/// What a zip entry costs beyond its data (headers, the manifest's line), about.
const ENTRY_OVERHEAD: u64 = 300;

/// The free space a restore needs: what it writes. The extracted files (each rounded up
/// to whole blocks), plus the safety backup: the live users and config as the disk holds
/// them, compressed as well as the backup being restored compressed its own data.
pub(super) fn space_needed(ctx: &Ctx, manifest: &Manifest, items: &[Item], zip_len: u64) -> u64 {
    let extracted: u64 = manifest
        .files
        .iter()
        .filter(|f| items.iter().any(|i| covers(i, &f.path)))
        .map(|f| f.size.div_ceil(BLOCK).max(1) * BLOCK)
        .sum();
    let (mut live, mut files) = stored_size(&ctx.data_dir().join("users"));
    for (path, _) in collect::config_files(ctx) {
        let (b, n) = stored_size(&path);
        live += b;
        files += n;
    }
    let ratio = if manifest.system_info.total_bytes == 0 {
        1.0
    } else {
        (zip_len as f64 / manifest.system_info.total_bytes as f64).min(1.0)
    };
    let safety = (live as f64 * ratio) as u64 + (files + 1) * ENTRY_OVERHEAD;
    extracted + safety
}

/// Whether the zip entry `name` belongs to `item`.
pub(super) fn covers(item: &Item, name: &str) -> bool {
    if item.entry.ends_with('/') {
        name.starts_with(&item.entry)
    } else {
        name == item.entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::{Includes, SystemInfo};

    #[test]
    fn space_needed_is_the_extracted_blocks_plus_a_compressed_safety_backup() {
        let root = tempfile::tempdir().unwrap();
        let live = root.path().join("data/users/u1");
        fs::create_dir_all(&live).unwrap();
        fs::write(live.join("a.bin"), vec![7u8; 10_000]).unwrap();
        let ctx = Ctx::new(root.path(), chrono::Utc::now()).unwrap();
        let file = |path: &str, size| crate::pack::FileEntry {
            path: path.into(),
            size,
            sha256: String::new(),
            link: None,
        };
        let manifest = Manifest {
            backup_name: "b".into(),
            created_at: String::new(),
            includes: Includes::default(),
            system_info: SystemInfo { total_users: 1, file_count: 3, total_bytes: 20_000 },
            tool_version: String::new(),
            files: vec![file("users/u1/x", 1), file("users/u1/y", 5000), file("config/.env", 9)],
        };
        let item = Item {
            key: "users".into(),
            live: ctx.data_dir().join("users"),
            entry: "users/".into(),
            files: 2,
            bytes: 5001,
            changes: None,
        };
        // The backup holds 20,000 bytes in 10,000: the live 10,000 count as 5,000.
        let needed = space_needed(&ctx, &manifest, &[item], 10_000);
        assert_eq!(needed, (4096 + 8192) + (5000 + 2 * ENTRY_OVERHEAD));
    }
}
