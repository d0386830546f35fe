//! The service's own data files, changed while the service runs (SPEC section 4; issue 21,
//! item 4): its lock, taken the way the service takes it, and a replacement by rename under
//! that lock that never overwrites a write made meanwhile by a process that took no lock.
//!
//! The service serialises the writers that take its lock (its `core/file_locking.py`): on
//! unix `flock(LOCK_EX)` on the file itself, on Windows the exclusive creation of
//! `<file>.lock`. Its own readers and some of its writers take none: `load_json_data` reads
//! the file by its name, unlocked, and when it does not parse, copies it aside and rewrites
//! it with a default document; `store_sent_message` reads it that way and writes a
//! temporary file moved over it. So the file is never written over in place here (a reader
//! would find it half-written and the service would empty it), and never written through a
//! link (a hard-linked copy, a `cp -al` snapshot, keeps what it held). It is replaced
//! ([`ServiceFile::replace`]):
//!
//! 1. the new content goes to a `.tmp-<pid>-<name>` file beside it, with its permissions
//!    (and on unix its owner), synced, and read back and checked by the caller;
//! 2. the file is read again by its name and compared with what was read under the lock;
//!    on unix the name must still lead to the locked file, unchanged since it was read;
//! 3. only then the temporary file is renamed over it, and the folder synced.
//!
//! When step 2 finds the file changed ([`Replaced::WrittenMeanwhile`]), nothing is
//! replaced and the temporary file goes: whatever the other process wrote stays. A reader
//! sees the old file or the new one, whole, never a mix. What stays open (a handle, a
//! hard link) keeps the old content.
//!
//! Not covered: a process that takes no lock and renames its file in between step 2 and the
//! rename (a few microseconds: one `lstat`), whose write the rename replaces; and a writer
//! that waited for the lock on the old file and then writes into that file in place (rather
//! than by rename, as the service does): its write lands in a file no name leads to.
//!
//! How `messages archive` uses it (the tests of this module run each branch):
//!
//! ```text
//! let ctx = Ctx::new("/srv/mhm", chrono::Utc::now())?;
//! let path = ctx.data_dir().join("users/u1/messages/sent_messages.json");
//! if let Some(mut file) = ServiceFile::lock(&path, Duration::from_secs(10))? {
//!     let old = file.read()?;
//!     let check = |new: &std::path::Path| {
//!         let text = std::fs::read(new)?;
//!         Ok(serde_json::from_slice::<serde_json::Value>(&text).map(drop)?)
//!     };
//!     match file.replace(&ctx, |out| out.write_all(b"{}"), check, &old)? {
//!         Replaced::Done => {}
//!         Replaced::WrittenMeanwhile => eprintln!("written meanwhile; left as it is"),
//!     }
//! }
//! ```

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Read, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context, Result};

use crate::{files, Ctx, FailPoint};

/// The buffer the new content is written through.
const BUF: usize = 1 << 16;

/// How often a lock held by another is tried again.
const RETRY: Duration = Duration::from_millis(50);

/// What [`ServiceFile::replace`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub(crate) enum Replaced {
    /// The new content is in place, under the file's name.
    Done,
    /// The file was written by another process after it was read: nothing replaced, the
    /// temporary file removed.
    WrittenMeanwhile,
}

/// A service data file, held under the service's lock (its name never followed as a link).
/// The lock goes when this is dropped, or with the process.
pub(crate) struct ServiceFile {
    path: PathBuf,
    /// The file, open for reading and locked (`flock`): the lock is the file's.
    #[cfg(unix)]
    file: File,
    /// When the locked file was last modified as [`read`](Self::read) left it.
    #[cfg(unix)]
    seen: Option<std::time::SystemTime>,
    /// `<file>.lock`; on Windows deleted by the system when its handle closes, so also when
    /// this process dies: a killed run never leaves the service locked out of its file.
    #[cfg(not(unix))]
    lock: (File, PathBuf),
}

impl std::fmt::Debug for ServiceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceFile").field("path", &self.path).finish_non_exhaustive()
    }
}

/// One try at the lock.
enum Attempt {
    Held(ServiceFile),
    /// Held by another: try again after a while.
    Busy,
    /// The name leads to another file now: try again at once (unix, where the lock is
    /// the file's).
    #[cfg_attr(not(unix), allow(dead_code))]
    Moved,
    /// No file at the name.
    Missing,
}

impl ServiceFile {
    /// Waits up to `wait` for the service's lock on `path`; `None` when there is no file.
    /// Waiting longer is an error saying so.
    pub(crate) fn lock(path: &Path, wait: Duration) -> Result<Option<Self>> {
        let start = Instant::now();
        loop {
            match Self::try_lock(path).context("taking the service's lock")? {
                Attempt::Held(file) => return Ok(Some(file)),
                Attempt::Missing => return Ok(None),
                Attempt::Moved => {}
                Attempt::Busy if start.elapsed() < wait => std::thread::sleep(RETRY),
                Attempt::Busy => {
                    return Err(anyhow!(
                        "the service held its lock on the file for {} s",
                        wait.as_secs()
                    ))
                }
            }
        }
    }

    /// `flock` on the file, as the service takes it.
    #[cfg(unix)]
    fn try_lock(path: &Path) -> io::Result<Attempt> {
        use std::os::unix::fs::MetadataExt;
        let Some(file) = open(path)? else { return Ok(Attempt::Missing) };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(Attempt::Busy),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // The lock is the file's. Another file may be at the name now (the service and this
        // tool replace it by a rename): then this lock guards nothing, and the next try
        // opens the file the name leads to now.
        let ours = file.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(Attempt::Moved),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Attempt::Moved),
            Err(e) => return Err(e),
        }
        Ok(Attempt::Held(Self { path: path.to_path_buf(), file, seen: None }))
    }

    /// `<file>.lock` created exclusively, as the service creates it.
    #[cfg(not(unix))]
    fn try_lock(path: &Path) -> io::Result<Attempt> {
        if !files::exists(path) {
            return Ok(Attempt::Missing);
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            use windows_sys::Win32::{
                Foundation::GENERIC_WRITE,
                Storage::FileSystem::{DELETE, FILE_FLAG_DELETE_ON_CLOSE},
            };
            opts.access_mode(GENERIC_WRITE | DELETE).custom_flags(FILE_FLAG_DELETE_ON_CLOSE);
        }
        let lock = match opts.open(&lock_path) {
            Ok(f) => f,
            // Held; or being deleted by its last holder (Windows refuses to create a file
            // whose deletion is pending: access denied).
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(Attempt::Busy)
            }
            Err(e) => return Err(e),
        };
        let held = Self { path: path.to_path_buf(), lock: (lock, lock_path) };
        if open(path)?.is_none() {
            return Ok(Attempt::Missing);
        }
        Ok(Attempt::Held(held))
    }

    /// The file's content (on unix read through the locked file, elsewhere by its name).
    pub(crate) fn read(&mut self) -> io::Result<Vec<u8>> {
        #[cfg(unix)]
        {
            use std::io::{Seek, SeekFrom};
            self.file.seek(SeekFrom::Start(0))?;
            let mut bytes = Vec::new();
            self.file.read_to_end(&mut bytes)?;
            self.seen = Some(self.file.metadata()?.modified()?);
            Ok(bytes)
        }
        #[cfg(not(unix))]
        read_by_name(&self.path)?.ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// The metadata of the file (the locked one on unix).
    fn metadata(&self) -> io::Result<fs::Metadata> {
        #[cfg(unix)]
        let meta = self.file.metadata();
        #[cfg(not(unix))]
        let meta = fs::symlink_metadata(&self.path);
        meta
    }

    /// Replaces the file by what `render` writes (steps 1 to 3 of the module's
    /// documentation): `check` is given the temporary file (written and synced) to read it
    /// back, and an error from it stops before the file is touched; `old` is what
    /// [`read`](Self::read) returned. When the file no longer holds `old` by its name, it is
    /// left as it is ([`Replaced::WrittenMeanwhile`]). The lock is still held afterwards;
    /// it guards the old file, which no name leads to any more.
    pub(crate) fn replace(
        &mut self,
        ctx: &Ctx,
        render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        check: impl FnOnce(&Path) -> Result<()>,
        old: &[u8],
    ) -> Result<Replaced> {
        let meta = self.metadata().context("reading its metadata")?;
        let mut new = files::Atomic::create(&self.path)
            .with_context(|| format!("creating a file beside {}", ctx.show(&self.path)))?;
        let tmp = ctx.show(new.temp());
        #[cfg(unix)]
        same_owner(new.file(), &meta)
            .with_context(|| format!("giving {tmp} the owner and group of the file"))?;
        // Never readable by more users than the file it replaces.
        new.set_permissions_of(&meta).with_context(|| format!("setting permissions on {tmp}"))?;
        let mut w = BufWriter::with_capacity(BUF, new.file());
        render(&mut w).and_then(|()| w.flush()).with_context(|| format!("writing {tmp}"))?;
        drop(w);
        new.file().sync_all().with_context(|| format!("writing {tmp}"))?;
        check(new.temp()).with_context(|| tmp.clone())?;
        ctx.fail_at(FailPoint::MessagesTempWritten)?;
        let mut meanwhile = false;
        let committed = new.commit_if(|path| {
            if self.unchanged(path, old)? {
                Ok(())
            } else {
                meanwhile = true;
                Err(io::Error::other("written meanwhile"))
            }
        });
        match committed {
            Ok(()) => {}
            Err(_) if meanwhile => return Ok(Replaced::WrittenMeanwhile),
            Err(e) => {
                return Err(anyhow::Error::from(e)
                    .context(format!("moving {tmp} over {}", ctx.show(&self.path))))
            }
        }
        ctx.fail_at(FailPoint::MessagesReplaced)?;
        Ok(Replaced::Done)
    }

    /// Whether the file at `path` (read by its name) still holds `old`, and on unix is
    /// still the locked file, unchanged since it was read: the last look before the rename.
    fn unchanged(&self, path: &Path, old: &[u8]) -> io::Result<bool> {
        if read_by_name(path)?.as_deref() != Some(old) {
            return Ok(false);
        }
        #[cfg(unix)]
        let same = {
            use std::os::unix::fs::MetadataExt;
            let ours = self.file.metadata()?;
            let same_file = match fs::symlink_metadata(path) {
                Ok(now) => now.dev() == ours.dev() && now.ino() == ours.ino(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e),
            };
            let untouched = ours.len() == old.len() as u64 && Some(ours.modified()?) == self.seen;
            same_file && untouched
        };
        #[cfg(not(unix))]
        let same = true;
        Ok(same)
    }
}

#[cfg(not(unix))]
impl Drop for ServiceFile {
    fn drop(&mut self) {
        // On Windows the system deletes it when its handle closes anyway.
        let _ = fs::remove_file(&self.lock.1);
    }
}

/// `path` opened for reading, never through a link; `None` when nothing is there. Anything
/// but a regular file is an error.
fn open(path: &Path) -> io::Result<Option<File>> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    let opened = {
        #[cfg(unix)]
        {
            // Never through a link, and never waiting: a FIFO put where the file belongs
            // would block the open (and the run, holding its lock) for ever. The flag does
            // nothing to a regular file's reads.
            use std::os::unix::fs::OpenOptionsExt;
            opts.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
            opts.open(path).map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "a link where a regular file belongs; refusing to follow it",
                    )
                } else {
                    e
                }
            })
        }
        #[cfg(not(unix))]
        {
            mhm_fsx::open_no_follow(&mut opts, path, false)
        }
    };
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(Some(file))
}

/// What the file at `path` holds, read by its name (never through a link); `None` when
/// nothing is there.
fn read_by_name(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let Some(mut file) = open(path)? else { return Ok(None) };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Gives `file` the owner and group `of` has, where they differ (a run as another user
/// than the service's); an error when the system refuses, so that the service is never
/// left with a file it cannot read or write.
#[cfg(unix)]
pub(crate) fn same_owner(file: &File, of: &fs::Metadata) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mine = file.metadata()?;
    let uid = (mine.uid() != of.uid()).then_some(of.uid());
    let gid = (mine.gid() != of.gid()).then_some(of.gid());
    if uid.is_some() || gid.is_some() {
        std::os::unix::fs::fchown(file, uid, gid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path) -> Ctx {
        Ctx::new(dir, chrono::Utc::now()).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "logs")
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replace_puts_a_new_file_at_the_name_and_leaves_links_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, r#"{"a": [1, 2, 3]}"#).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        }
        let link = dir.path().join("link.json");
        fs::hard_link(&path, &link).unwrap();
        let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
        let old = file.read().unwrap();
        let check = |new: &Path| {
            assert_eq!(fs::read(new).unwrap(), br#"{"a": []}"#);
            Ok(())
        };
        let done = file.replace(&ctx(dir.path()), |w| w.write_all(br#"{"a": []}"#), check, &old);
        assert_eq!(done.unwrap(), Replaced::Done);
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), br#"{"a": []}"#);
        assert_eq!(fs::read(&link).unwrap(), br#"{"a": [1, 2, 3]}"#, "written through a link");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
        }
        assert_eq!(names(dir.path()), ["f.json", "link.json"]);
    }

    #[test]
    fn a_file_written_meanwhile_is_left_as_the_writer_left_it() {
        // By a rename (as `store_sent_message` writes), and in place.
        for by_rename in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.json");
            fs::write(&path, r#"{"a": [1]}"#).unwrap();
            let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
            let old = file.read().unwrap();
            let theirs = br#"{"a": [2, 1]}"#;
            if by_rename {
                fs::write(dir.path().join("other"), theirs).unwrap();
                fs::rename(dir.path().join("other"), &path).unwrap();
            } else {
                OpenOptions::new().write(true).open(&path).unwrap().write_all(theirs).unwrap();
            }
            let done = file.replace(&ctx(dir.path()), |w| w.write_all(b"{}"), |_| Ok(()), &old);
            assert_eq!(done.unwrap(), Replaced::WrittenMeanwhile, "by rename: {by_rename}");
            drop(file);
            assert_eq!(fs::read(&path).unwrap(), theirs);
            assert_eq!(names(dir.path()), ["f.json"]);
        }
    }

    #[test]
    fn a_temp_that_fails_its_check_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "{}").unwrap();
        let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
        let old = file.read().unwrap();
        let check = |_: &Path| Err(anyhow!("not what was meant"));
        let err = file.replace(&ctx(dir.path()), |w| w.write_all(b"[]"), check, &old).unwrap_err();
        assert!(format!("{err:#}").contains("not what was meant"), "{err:#}");
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        assert_eq!(names(dir.path()), ["f.json"]);
    }

    #[test]
    fn a_link_is_refused_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        assert!(ServiceFile::lock(&path, Duration::ZERO).unwrap().is_none());
        #[cfg(unix)]
        {
            let target = dir.path().join("elsewhere.json");
            fs::write(&target, "{}").unwrap();
            std::os::unix::fs::symlink(&target, &path).unwrap();
            let err = ServiceFile::lock(&path, Duration::ZERO).unwrap_err();
            assert!(format!("{err:#}").contains("refusing to follow it"), "{err:#}");
        }
    }

    #[test]
    fn a_held_lock_is_waited_for_then_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "{}").unwrap();
        let held = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
        let err = ServiceFile::lock(&path, Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("held its lock"), "{err:#}");
        drop(held);
        assert!(ServiceFile::lock(&path, Duration::ZERO).unwrap().is_some());
    }
}
