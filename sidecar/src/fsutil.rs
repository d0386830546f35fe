//! Small file-system helpers shared by the commands.

use std::{
    fs,
    path::{Path, PathBuf},
    time::Duration,
};

/// Removes `.tmp-*` files in `dir` that a crashed run left behind: those whose writer
/// process is gone, and those older than an hour (the library's rule, shared with the log
/// writer). Call only while holding the sidecar lock. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    mhm_log::retention::remove_stale_temps(dir, Duration::from_secs(3600))
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
