//! Small file-system helpers shared by the commands.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

/// Removes `.tmp-*` files in `dir` that a crashed run left behind: those older than an
/// hour, and (where the platform lets us see it) those whose writer process is gone.
/// Call only while holding the sidecar lock. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(".tmp-") else { continue };
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(3600));
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        let writer_gone = pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid));
        if (old || writer_gone) && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Whether a process with this pid exists. Only Linux (`/proc`) can tell cheaply; elsewhere
/// we assume it does, and the one-hour rule applies.
pub(crate) fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// The first of `base`, `base.1`, `base.2`, ... that does not exist.
pub fn unique_path(base: &Path) -> PathBuf {
    if !base.exists() && base.symlink_metadata().is_err() {
        return base.to_path_buf();
    }
    let name = base.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (1..)
        .map(|n| base.with_file_name(format!("{name}.{n}")))
        .find(|p| p.symlink_metadata().is_err())
        .unwrap_or_else(|| base.to_path_buf())
}

/// Makes a file readable and writable by its owner only (unix); a no-op elsewhere.
pub fn owner_only(file: &fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}
