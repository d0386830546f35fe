//! Crash-safe file-system helpers, shared by `mhm-log` (its writer and retention) and
//! `mhm-sidecar` (every command that writes a file). Kept in a crate of their own so that
//! neither exports them by accident and both follow one rule:
//!
//! - a file that must never be seen half-written is written under a temporary name
//!   `.tmp-<pid>-<name>` in the folder it will land in, synced, renamed into place, and the
//!   folder synced ([`Atomic`]);
//! - a name that is taken gets the next free number ([`first_free`]), never an overwrite;
//! - temporary files left by a crash are removed once their writer is gone or they are an
//!   hour old ([`remove_stale_temps`]), by whichever process comes next.
//!
//! ```
//! use std::io::Write;
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("state.json");
//! let mut file = mhm_fsx::Atomic::create(&path)?;
//! file.write_all(b"{}\n")?;
//! file.commit_new()?; // fails, and leaves nothing behind, if state.json appeared meanwhile
//! assert_eq!(std::fs::read(&path)?, b"{}\n");
//! # Ok::<(), std::io::Error>(())
//! ```

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    time::Duration,
};

/// Temporary files start with this, then the writer's pid and a `-`.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A temporary name beside `final_path`: `.tmp-<pid>-<file name>`.
pub fn temp_path(final_path: &Path) -> PathBuf {
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let dir = final_path.parent().unwrap_or(Path::new("."));
    dir.join(format!("{TEMP_PREFIX}{}-{name}", std::process::id()))
}

/// Makes a rename or removal in the folder holding `path` durable (a no-op off unix, where
/// a folder cannot be opened for syncing).
pub fn sync_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// The first of `name(None)`, `name(Some(1))`, `name(Some(2))`, ... that `taken` says is
/// free. Every "never overwrite, number it instead" rule of the project goes through here.
pub fn first_free<T>(name: impl Fn(Option<u64>) -> T, taken: impl Fn(&T) -> bool) -> T {
    let base = name(None);
    if !taken(&base) {
        return base;
    }
    // A folder cannot hold 2^64 entries: the search ends long before the bound.
    (1..u64::MAX).map(|n| name(Some(n))).find(|c| !taken(c)).unwrap_or(base)
}

/// Lexically normalises `path` (no file-system access): `.` dropped, `..` applied.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` made absolute (against the current directory) and [`normalize`]d: one key per
/// file however it was spelled.
pub fn absolute(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Whether anything (a file, a folder, a link, even a dangling one) is at `path`.
pub fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// Why [`place_new`] (or [`Atomic::commit_verified`]) did not put a temporary in place.
#[derive(Debug)]
pub enum PlaceError<E> {
    /// The check refused the temporary: its error.
    Refused(E),
    /// Something appeared at the final path while the temporary was written: never
    /// overwritten.
    Appeared,
    /// Syncing or renaming failed.
    Io(io::Error),
}

impl<E: From<io::Error>> PlaceError<E> {
    /// As one error: the check's own, or an `io::Error` made into `E`
    /// ([`Appeared`](Self::Appeared) an [`io::ErrorKind::AlreadyExists`] naming `path`).
    pub fn into_error(self, path: &Path) -> E {
        match self {
            PlaceError::Refused(e) => e,
            PlaceError::Appeared => io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} appeared while it was written; never overwritten", path.display()),
            )
            .into(),
            PlaceError::Io(e) => e.into(),
        }
    }
}

/// The last steps of writing something new under a temporary name beside `path`, a file or
/// a folder, already written and synced: `verify` the temporary (the last moment to refuse
/// it), refuse when anything appeared at `path` meanwhile, rename into place, sync the
/// folder. Nothing is removed on failure: the temporary is the caller's.
pub fn place_new<E>(
    tmp: &Path,
    path: &Path,
    verify: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), PlaceError<E>> {
    verify(tmp).map_err(PlaceError::Refused)?;
    if exists(path) {
        return Err(PlaceError::Appeared);
    }
    fs::rename(tmp, path).map_err(PlaceError::Io)?;
    sync_dir(path);
    Ok(())
}

/// A new file written under a temporary name beside its final path and moved into place
/// only by [`commit_new`](Self::commit_new) or [`commit_replace`](Self::commit_replace)
/// after a sync. Dropped without a commit (an error on the way), the temporary file is
/// removed: a failure never leaves a partial file under the final name, nor a stray
/// temporary one.
#[derive(Debug)]
pub struct Atomic {
    file: Option<File>,
    tmp: PathBuf,
    path: PathBuf,
}

impl Atomic {
    /// Creates the temporary file for `path` (readable by its owner only on unix when
    /// `private`, else with the default permissions).
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::create_with(path.as_ref(), false)
    }

    /// Like [`create`](Self::create), owner-only (`0600`) on unix: for files that hold
    /// secrets (backups hold `.env`).
    pub fn create_private(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::create_with(path.as_ref(), true)
    }

    fn create_with(path: &Path, private: bool) -> io::Result<Self> {
        let tmp = temp_path(path);
        let file = create_new(&tmp, private)?;
        Ok(Self { file: Some(file), tmp, path: path.to_path_buf() })
    }

    /// Gives the temporary file the permissions `source` has (its mode bits on unix), so
    /// that what is made from a file (a `.gz` copy, a restored copy, an archive) is never
    /// readable by more users than the file was.
    pub fn set_permissions_of(&mut self, source: &fs::Metadata) -> io::Result<()> {
        #[cfg(unix)]
        if let Some(file) = &self.file {
            use std::os::unix::fs::PermissionsExt;
            let mode = source.permissions().mode() & 0o777;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
        }
        #[cfg(not(unix))]
        let _ = source;
        Ok(())
    }

    /// The temporary file's path (to reopen and verify it before the commit).
    pub fn temp(&self) -> &Path {
        &self.tmp
    }

    /// The final path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open temporary file.
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("the file is present until commit")
    }

    /// Syncs, then renames into place unless something exists at the final path (an
    /// [`io::ErrorKind::AlreadyExists`] error naming it), then syncs the folder.
    pub fn commit_new(self) -> io::Result<()> {
        let path = self.path.clone();
        self.commit_verified(|_| Ok::<(), io::Error>(())).map_err(|e| e.into_error(&path))
    }

    /// Syncs, then [`place_new`]: `verify` reads the temporary file back (the last moment
    /// to refuse it), nothing may have appeared at the final path, the rename, the folder's
    /// sync. On any failure the temporary file is removed.
    pub fn commit_verified<E>(
        mut self,
        verify: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<(), PlaceError<E>> {
        let file = self.file.take().expect("the file is present until commit");
        file.sync_all().map_err(PlaceError::Io)?;
        drop(file);
        place_new(&self.tmp, &self.path, verify)?;
        // Committed: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        Ok(())
    }

    /// Like [`commit_new`](Self::commit_new), but when something exists at the final path
    /// the file is handed back (synced, under its temporary name) for the caller to decide:
    /// `Ok(None)` when committed, `Ok(Some(self))` when the name was taken.
    pub fn commit_new_or_return(mut self) -> io::Result<Option<Self>> {
        self.file().sync_all()?;
        if exists(&self.path) {
            return Ok(Some(self));
        }
        self.commit_new().map(|()| None)
    }

    /// Points the file at another final path in the same folder (its temporary name stays).
    pub fn set_path(&mut self, path: impl AsRef<Path>) {
        self.path = path.as_ref().to_path_buf();
    }

    /// Syncs, then renames over whatever is at the final path, then syncs the folder.
    pub fn commit_replace(self) -> io::Result<()> {
        self.commit_if(|_| Ok(()))
    }

    /// Syncs, runs `check` on the final path (last moment to refuse), renames, syncs the
    /// folder.
    pub fn commit_if(mut self, check: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let file = self.file.take().expect("the file is present until commit");
        let result = (|| {
            file.sync_all()?;
            drop(file);
            check(&self.path)?;
            fs::rename(&self.tmp, &self.path)?;
            sync_dir(&self.path);
            Ok(())
        })();
        if result.is_ok() {
            // Committed: nothing for Drop to remove.
            self.tmp = PathBuf::new();
        }
        result
    }
}

impl Write for Atomic {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for Atomic {
    fn drop(&mut self) {
        self.file.take();
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Opens `path` with `opts`, never through a link: a symbolic link (on Windows, any reparse
/// point) at `path` itself is refused with an error naming it, so a file the tools write
/// (a lock, a log, the writer's hidden files) can never be redirected to a file elsewhere
/// by whoever can write the folder. With `private`, a file it creates is owner-only
/// (`0600`) on unix.
pub fn open_no_follow(opts: &mut OpenOptions, path: &Path, private: bool) -> io::Result<File> {
    let refuse = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a link where a regular file belongs; refusing to follow it (remove it)",
                path.display()
            ),
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
        if private {
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(f) => Ok(f),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(refuse()),
            Err(e) => Err(e),
        }
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a link itself, not what it points to.
        opts.custom_flags(0x0020_0000);
        let _ = private;
        let file = opts.open(path)?;
        if file.metadata()?.file_type().is_symlink() {
            return Err(refuse());
        }
        Ok(file)
    }
    #[cfg(not(any(unix, windows)))]
    {
        let _ = private;
        if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(refuse());
        }
        opts.open(path)
    }
}

/// Creates `path`, which must not exist; owner-only (`0600`) on unix when `private`.
pub fn create_new(path: &Path, private: bool) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts.open(path)?;
    #[cfg(unix)]
    if private {
        // The mode above is masked by the umask; this is not.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(file)
}

/// Reads `r` to its end in chunks of `buf`'s size, handing each chunk to `each`; retries
/// interrupted reads. Returns the bytes read. The one read loop behind every digest and
/// checksum of the project.
pub fn read_chunks(
    r: &mut (impl Read + ?Sized),
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        let n = match r.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        each(&buf[..n])?;
        total += n as u64;
    }
}

/// Renames `from` to `to` (creating `to`'s folder), falling back to copy, sync, rename,
/// remove across file systems.
pub fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    match fs::rename(from, to) {
        Ok(()) => {
            sync_dir(to);
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let mut out = Atomic::create(to)?;
            io::copy(&mut File::open(from)?, out.file())?;
            out.commit_replace()?;
            fs::remove_file(from)?;
            sync_dir(from);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes the `.tmp-<pid>-*` files in `dir` that a crash left behind: those whose writer
/// process is gone (where the platform can tell: Linux), and those last modified more than
/// `older_than` ago. The sidecar and the writer's background thread both call it, so either
/// cleans up after the other. Returns the paths removed.
pub fn remove_stale_temps(dir: &Path, older_than: Duration) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        if is_stale_temp(&entry, older_than) && fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// Whether `entry` is a `.tmp-<pid>-*` entry whose writer is gone or that was last
/// modified more than `older_than` ago.
pub fn is_stale_temp(entry: &fs::DirEntry, older_than: Duration) -> bool {
    let name = entry.file_name();
    let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
        return false;
    };
    let old = entry
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|t| t.elapsed().unwrap_or_default() > older_than);
    let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
    let writer_gone = pid.is_some_and(|pid| pid != std::process::id() && !process_alive(pid));
    old || writer_gone
}

/// Whether a process with this pid exists. Only Linux (`/proc`) can tell cheaply; elsewhere
/// it answers yes, and the age rule of [`remove_stale_temps`] applies.
pub fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") && Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_commit_new_refuses_an_existing_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(&path, "old").unwrap();
        let mut f = Atomic::create(&path).unwrap();
        f.write_all(b"new").unwrap();
        let err = f.commit_new().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the temp file is gone");
    }

    #[test]
    fn a_temp_refused_or_beaten_to_its_name_is_never_placed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.zip");
        let mut f = Atomic::create(&path).unwrap();
        f.write_all(b"bad").unwrap();
        let err = f.commit_verified(|tmp| Err(fs::read_to_string(tmp).unwrap())).unwrap_err();
        assert!(matches!(err, PlaceError::Refused(ref why) if why == "bad"), "{err:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "the temp file is gone");

        // A folder: verified, refused when the name appeared, placed when it did not.
        let tmp = temp_path(&path);
        fs::create_dir(&tmp).unwrap();
        fs::write(&path, "theirs").unwrap();
        let err = place_new(&tmp, &path, |t| if t.is_dir() { Ok(()) } else { Err(()) });
        assert!(matches!(err, Err(PlaceError::Appeared)));
        fs::remove_file(&path).unwrap();
        place_new(&tmp, &path, |_| Ok::<(), ()>(())).unwrap();
        assert!(path.is_dir() && !tmp.exists());
    }

    #[test]
    fn atomic_replace_and_drop_without_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        fs::write(&path, "old").unwrap();
        let mut f = Atomic::create(&path).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = Atomic::create(&path).unwrap();
        f.write_all(b"new").unwrap();
        f.commit_replace().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn first_free_numbers_from_one() {
        let taken = ["a", "a.1", "a.2"];
        let name = |n: Option<u64>| n.map_or("a".to_string(), |n| format!("a.{n}"));
        assert_eq!(first_free(name, |c| taken.contains(&c.as_str())), "a.3");
        assert_eq!(first_free(|_| "b".to_string(), |_| false), "b");
    }

    #[test]
    fn read_chunks_sees_every_byte() {
        let data: Vec<u8> = (0..100_000u32).map(|n| n as u8).collect();
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let n = read_chunks(&mut &data[..], &mut buf, |c| {
            seen.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(seen, data);
    }

    #[test]
    fn stale_temps_of_a_dead_writer_go_others_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!(".tmp-{}-x", std::process::id()));
        let plain = dir.path().join("x");
        fs::write(&mine, "").unwrap();
        fs::write(&plain, "").unwrap();
        assert!(remove_stale_temps(dir.path(), Duration::from_secs(3600)).is_empty());
        assert!(mine.exists() && plain.exists());
        if cfg!(target_os = "linux") {
            // No process has this pid (Linux caps pids far below it).
            let dead = dir.path().join(".tmp-4294967295-y");
            fs::write(&dead, "").unwrap();
            assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), vec![dead]);
        }
    }
}
