//! What goes into a backup or a snapshot: the files under the root, selected and listed
//! in a stable order, each with the name it gets in the archive. Nothing is read here
//! but folder listings and link targets; the packer (`pack.rs`) reads the files.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};

use crate::{paths, Ctx, Problem};

/// One thing to store.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its path in the archive.
    pub name: String,
    /// Where it is on disk.
    pub path: PathBuf,
    /// Its size when collected (0 for links).
    pub size: u64,
    /// For a symlink: its target, as stored.
    pub link: Option<String>,
}

/// The config files and their names in a backup.
pub(crate) fn config_files(ctx: &Ctx) -> [(PathBuf, &'static str); 3] {
    [
        (ctx.root.join(".env"), "config/.env"),
        (ctx.root.join("requirements.txt"), "config/requirements.txt"),
        (ctx.data_dir().join("user_index.json"), "config/user_index.json"),
    ]
}

/// `config/...`: each config file that exists (a non-regular one is skipped with a warning).
pub(crate) fn config(ctx: &Ctx, out: &mut Vec<Source>, warnings: &mut Vec<Problem>) -> Result<()> {
    for (path, name) in config_files(ctx) {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                out.push(Source { name: name.to_string(), size: m.len(), path, link: None })
            }
            Ok(_) => warnings.push(Problem::at(ctx.show(&path), "not a regular file, skipped")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => bail!("{}: {e}", ctx.show(&path)),
        }
    }
    Ok(())
}

/// `logs/*.log`: the active logs.
pub(crate) fn active_logs(ctx: &Ctx, out: &mut Vec<Source>) {
    let Ok(entries) = fs::read_dir(ctx.logs_dir()) else { return };
    let mut found: Vec<(String, PathBuf, u64)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") && e.file_type().is_ok_and(|t| t.is_file()) {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            found.push((name, e.path(), size));
        }
    }
    found.sort();
    for (name, path, size) in found {
        out.push(Source { name: format!("logs/{name}"), path, size, link: None });
    }
}

/// What a walk did not store.
#[derive(Debug, Default)]
pub struct Skipped {
    /// Data that should have been stored and cannot be (a name that is not UTF-8 cannot
    /// be a zip entry name): an archive without it is incomplete, and says so.
    pub left_out: Vec<Problem>,
    /// Left out by rule: links leading outside, special files.
    pub warnings: Vec<Problem>,
}

/// A folder whose links may point anywhere inside `root` (and nowhere else), as
/// `data/users` for backups and `data` for snapshots.
pub(crate) struct Tree<'a> {
    /// The run: messages show paths through it ([`Ctx::show`]).
    pub ctx: &'a Ctx,
    /// Links must resolve inside this folder.
    pub root: &'a Path,
    /// How messages name it (`data/users`).
    pub label: &'a str,
}

impl Tree<'_> {
    /// Every file, folder and link under `dir`, named `<prefix>/<relative path>`. A link
    /// that points inside [`Tree::root`] is stored as a (relative) link; one that points
    /// outside is skipped with a warning, never followed. A name that is not UTF-8 is
    /// left out (see [`Skipped::left_out`]).
    pub(crate) fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<Source>,
        skipped: &mut Skipped,
    ) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("reading {}", self.ctx.show(dir)))?
            .collect::<io::Result<_>>()
            .with_context(|| format!("reading {}", self.ctx.show(dir)))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let Some(file_name) = e.file_name().to_str().map(str::to_owned) else {
                skipped.left_out.push(Problem::at(
                    self.ctx.show(&path),
                    "name is not valid UTF-8: it cannot be stored (rename it)",
                ));
                continue;
            };
            let name = format!("{prefix}/{file_name}");
            let warnings = &mut skipped.warnings;
            let ft = e.file_type().with_context(|| format!("reading {}", self.ctx.show(&path)))?;
            if ft.is_symlink() {
                let target = fs::read_link(&path)
                    .with_context(|| format!("reading link {}", self.ctx.show(&path)))?;
                // Followed as the OS would, through the links already there: a link
                // that looks inside as text but passes through another link can lead out.
                let rel = path.strip_prefix(self.root).ok().and_then(|r| r.to_str());
                let resolved =
                    rel.map(|r| paths::resolve_on_disk(self.root, &r.replace('\\', "/")));
                match (resolved, target.to_str()) {
                    (Some(Ok(dest)), Some(t)) if !dest.is_empty() && !target.is_absolute() => {
                        out.push(Source { name, path, size: 0, link: Some(t.replace('\\', "/")) })
                    }
                    // An absolute link inside: stored relative (to where it leads, past
                    // any link on the way) so it stays inside wherever it is restored.
                    (Some(Ok(dest)), _) if !dest.is_empty() => {
                        match relative_link(dir, &self.root.join(&dest)) {
                            Some(t) => out.push(Source { name, path, size: 0, link: Some(t) }),
                            None => warnings.push(Problem::at(
                                self.ctx.show(&path),
                                "link target not representable, skipped",
                            )),
                        }
                    }
                    _ => warnings.push(Problem::at(
                        self.ctx.show(&path),
                        format!(
                            "symlink points outside {} ({}), skipped",
                            self.label,
                            // The link's own text; an absolute one as every path is shown.
                            if target.is_absolute() {
                                self.ctx.show(&target)
                            } else {
                                target.display().to_string()
                            }
                        ),
                    )),
                }
            } else if ft.is_dir() {
                self.walk(&path, &name, out, skipped)?;
            } else if ft.is_file() {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(Source { name, path, size, link: None });
            } else {
                warnings
                    .push(Problem::at(self.ctx.show(&path), "not a file, folder or link, skipped"));
            }
        }
        Ok(())
    }
}

fn relative_link(from_dir: &Path, to: &Path) -> Option<String> {
    let from: Vec<_> = from_dir.components().collect();
    let to_c: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to_c).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    for c in &to_c[common..] {
        parts.push(c.as_os_str().to_str()?.to_string());
    }
    Some(parts.join("/"))
}

/// Folders never stored under `code/`.
const CODE_SKIP: &[&str] = &[
    ".git",
    "target",
    "venv",
    ".venv",
    "env",
    ".env.d",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".tox",
    ".nox",
    "node_modules",
    ".cache",
    ".idea",
    ".vscode",
    "site-packages",
    ".eggs",
    "build",
    "dist",
    "htmlcov",
];

/// `code/...`: every file under the root that `.gitignore` rules do not exclude (whether or
/// not git is installed); `.git`, build output, virtual environments, caches, `logs/` and
/// `data/` always left out.
pub(crate) fn code(ctx: &Ctx, out: &mut Vec<Source>, warnings: &mut Vec<Problem>) -> Result<()> {
    let root = ctx.root.clone();
    let top_skip = [root.join("logs"), root.join("data")];
    let walker = ignore::WalkBuilder::new(&root)
        .hidden(false)
        .git_ignore(true)
        .git_global(false)
        // `.git/info/exclude` is honoured as git honours it (the global one is not: it
        // belongs to a person, not to the project).
        .git_exclude(true)
        .require_git(false)
        .ignore(false)
        .parents(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(move |e| {
            let name = e.file_name().to_string_lossy();
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            // A folder holding `pyvenv.cfg` is a virtual environment whatever its name.
            let skip_dir = is_dir
                && (CODE_SKIP.contains(&name.as_ref())
                    || name.ends_with(".egg-info")
                    || e.path().join("pyvenv.cfg").is_file());
            !skip_dir && !top_skip.iter().any(|p| p == e.path())
        })
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                warnings.push(Problem::at("code", e.to_string()));
                continue;
            }
        };
        let Some(ft) = entry.file_type() else { continue };
        if ft.is_symlink() {
            // Never followed (it could point anywhere); said, not skipped silently.
            warnings.push(Problem::at(
                ctx.show(entry.path()),
                "a symbolic link in the project, not stored",
            ));
            continue;
        }
        if !ft.is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(&root) else { continue };
        let Some(rel) = rel.to_str() else {
            warnings.push(Problem::at(ctx.show(entry.path()), "name is not valid UTF-8, skipped"));
            continue;
        };
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.push(Source {
            name: format!("code/{}", rel.replace('\\', "/")),
            path: entry.path().to_path_buf(),
            size,
            link: None,
        });
    }
    Ok(())
}
