//! File-system helpers: the crash-safe primitives shared with the log writer
//! ([`mhm_fsx`], re-exported here) and the sidecar's own: one SHA-256 read loop, the
//! first free `name`, `name.1`, ... path, and the sidecar's rule for stale temporary files.

use std::{
    io::{self, Read},
    path::{Path, PathBuf},
    time::Duration,
};

pub use mhm_fsx::{
    create_new, exists, first_free, is_stale_temp, move_file, open_no_follow, place_new,
    process_alive, read_chunks, sync_dir, temp_path, Atomic, PlaceError, TEMP_PREFIX,
};
use sha2::{Digest, Sha256};

/// How old a temporary file must be before any run removes it, its writer alive or not.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Removes `.tmp-*` files and folders in `dir` that a crashed run left behind: those
/// whose writer process is gone, and those older than an hour (the library's rule, shared
/// with the log writer, which makes no folders). A folder is removed without following a
/// link in it (a link itself is never a folder here: it is left alone). Call only while
/// holding the sidecar lock. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = mhm_fsx::remove_stale_temps(dir, STALE_AFTER);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        // `file_type` of a directory entry never follows a link.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir
            && mhm_fsx::is_stale_temp(&entry, STALE_AFTER)
            && std::fs::remove_dir_all(entry.path()).is_ok()
        {
            removed.push(entry.path());
        }
    }
    if let Some(first) = removed.first() {
        sync_dir(first);
    }
    removed
}

/// The last steps of writing a backup or a snapshot (`what`), a zip or a folder written and
/// synced under `tmp`: `check` it in full (`Err` holds the problems found, on one line),
/// then [`place_new`]: refused if anything appeared at `final_path` meanwhile, renamed into
/// place, the folder synced. Paths in errors are shown relative to `root`; the temporary is
/// the caller's to remove on failure.
pub fn place_verified(
    root: &Path,
    tmp: &Path,
    final_path: &Path,
    what: &str,
    check: impl FnOnce(&Path) -> Result<(), String>,
) -> anyhow::Result<()> {
    let show = |p: &Path| crate::paths::show(root, p);
    let verified = |tmp: &Path| {
        check(tmp).map_err(|problems| {
            anyhow::anyhow!("the new {what} failed verification, deleted: {problems}")
        })
    };
    place_new(tmp, final_path, verified).map_err(|e| match e {
        PlaceError::Refused(e) => e,
        PlaceError::Appeared => {
            anyhow::anyhow!("{} appeared while the {what} was written", show(final_path))
        }
        PlaceError::Io(e) => {
            anyhow::Error::new(e).context(format!("renaming {} to {}", show(tmp), show(final_path)))
        }
    })
}

/// What the disk holds for the file at `path` whose metadata is `meta`: its allocated size
/// where the platform tells (unix: its blocks; Windows: the smaller of
/// `GetCompressedFileSizeW`, which counts only the allocated ranges of a sparse or
/// compressed file, and the handle's `AllocationSize`, which is what Wine reports the
/// blocks in), never more than its length; its length where the platform does not tell.
pub fn allocated_size(path: &Path, meta: &std::fs::Metadata) -> u64 {
    #[cfg(unix)]
    let on_disk = {
        let _ = path;
        std::os::unix::fs::MetadataExt::blocks(meta).saturating_mul(512)
    };
    #[cfg(windows)]
    let on_disk = windows_allocated_size(path).unwrap_or(u64::MAX);
    #[cfg(not(any(unix, windows)))]
    let on_disk = {
        let _ = path;
        u64::MAX
    };
    meta.len().min(on_disk)
}

#[cfg(windows)]
fn windows_allocated_size(path: &Path) -> Option<u64> {
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Storage::FileSystem::{GetCompressedFileSizeW, INVALID_FILE_SIZE};

    let wide: Vec<u16> = verbatim(path).as_os_str().encode_wide().chain(Some(0)).collect();
    let mut high = 0u32;
    // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call, and `high`
    // is a valid place for the high 32 bits.
    let low = unsafe { GetCompressedFileSizeW(wide.as_ptr(), &mut high) };
    let compressed = (low != INVALID_FILE_SIZE
        || std::io::Error::last_os_error().raw_os_error() == Some(0))
    .then(|| (u64::from(high) << 32) | u64::from(low));
    let allocated = windows_allocation_size(path);
    match (compressed, allocated) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `AllocationSize` of the file at `path` (`FILE_STANDARD_INFO`).
#[cfg(windows)]
fn windows_allocation_size(path: &Path) -> Option<u64> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Storage::FileSystem::{
        FileStandardInfo, GetFileInformationByHandleEx, FILE_STANDARD_INFO,
    };
    let file = std::fs::File::open(path).ok()?;
    let mut info = FILE_STANDARD_INFO::default();
    // SAFETY: the handle is open for the call, and `info` is a FILE_STANDARD_INFO of the
    // size passed, which outlives it.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            file.as_raw_handle(),
            FileStandardInfo,
            (&mut info as *mut FILE_STANDARD_INFO).cast(),
            std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
        )
    };
    (ok != 0).then(|| u64::try_from(info.AllocationSize).unwrap_or(0))
}

/// `path` absolute, normalised and in Windows' verbatim form (`\\?\C:\...`), which lifts
/// the 260-character limit of the Windows calls made directly (std's own file calls do
/// this themselves).
#[cfg(windows)]
pub fn verbatim(path: &Path) -> PathBuf {
    let abs = mhm_fsx::absolute(path);
    let s = abs.as_os_str().to_string_lossy();
    if let Some(unc) = s.strip_prefix(r"\\").filter(|_| !s.starts_with(r"\\?\")) {
        PathBuf::from(format!(r"\\?\UNC\{unc}"))
    } else if s.starts_with(r"\\") {
        abs
    } else {
        PathBuf::from(format!(r"\\?\{s}"))
    }
}

/// The first of `base`, `base.1`, `base.2`, ... at which nothing exists.
pub fn unique_path(base: &Path) -> PathBuf {
    let name = base.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    first_free(
        |n| match n {
            None => base.to_path_buf(),
            Some(n) => base.with_file_name(format!("{name}.{n}")),
        },
        |p| exists(p),
    )
}

/// The first of `<stem>`, `<stem>_1`, `<stem>_2`, ... for which `taken` is false: the
/// numbering of names made from a time stamp (backups, snapshots, message archives).
pub fn unique_stem(stem: &str, taken: impl Fn(&str) -> bool) -> String {
    first_free(
        |n| match n {
            None => stem.to_string(),
            Some(n) => format!("{stem}_{n}"),
        },
        |s| taken(s),
    )
}

/// Size, SHA-256 and (when `keep_head` > 0) the first `keep_head` bytes of what `r` holds,
/// read to its end. The one hashing loop of the sidecar.
pub fn sha256_of(
    r: &mut (impl Read + ?Sized),
    buf: &mut [u8],
    keep_head: usize,
) -> io::Result<Digested> {
    let mut hasher = Sha256::new();
    let mut head = Vec::new();
    let size = read_chunks(r, buf, |chunk| {
        hasher.update(chunk);
        if head.len() < keep_head {
            let room = keep_head - head.len();
            head.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok(())
    })?;
    Ok(Digested { size, sha256: hasher.finalize().into(), head })
}

/// What [`sha256_of`] read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digested {
    /// Bytes read.
    pub size: u64,
    /// Their SHA-256.
    pub sha256: [u8; 32],
    /// The first bytes, as many as asked for.
    pub head: Vec<u8>,
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Bytes under `dir` (links count as nothing).
pub fn folder_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => folder_size(&e.path()),
                    Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
