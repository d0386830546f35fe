//! The service's own data files, changed while the service runs (SPEC section 4; issue 21,
//! item 4): its lock, taken the way the service takes it, and a rewrite in place under
//! that lock, made safe to be killed in by a journal.
//!
//! The service serialises the writers of a data file with a lock (its
//! `core/file_locking.py`): on unix `flock(LOCK_EX)` on the file itself, on Windows the
//! exclusive creation of `<file>.lock`. A `flock` belongs to the file, not to its name. Were
//! the file replaced by a rename while the lock is held, a service writer waiting for the
//! lock would get it, once we let go, on the old file that no name leads to any more: it
//! would write its message there, where nobody reads it, or read the new file unguarded
//! while a next run changes it. So a file the service locks is never replaced here: it is
//! written over in place, under the lock, and whoever waited for the lock finds the new
//! content in the file it waited on. Written over, a file is half-written for a moment; a
//! journal makes that moment safe to be killed in:
//!
//! 1. the new content goes to `.<name>.journal` beside the file (temp, sync, read back and
//!    checked by the caller, rename);
//! 2. the file's first byte becomes [`MARK`] (`#`: no JSON reader accepts the file from
//!    here on), synced;
//! 3. the rest of the new content is written from the second byte on, the length set,
//!    synced;
//! 4. the first byte is written, synced: the file is whole again;
//! 5. the file, read again by its name, is compared with the journal; the journal goes.
//!
//! A file that starts with the mark beside a journal is a rewrite cut short: the next run
//! writes the journal over it ([`ServiceFile::roll_forward`]). A journal beside a whole
//! file is a run cut short after step 4, or one after which the service wrote the file
//! again (having read the marked file as its loaders read a broken one: as empty); the
//! caller compares what the two hold ([`crate::messages`] puts back every message the
//! journal has and nothing else does). A run that fails (rather than being killed) in
//! steps 2 to 4 writes the old content back the same way; its journal stays for the next
//! run to compare.
//!
//! A reader that does not take the lock can find the file marked for as long as steps 2 to
//! 4 take (one write and three syncs).
//!
//! ```no_run
//! use mhm_sidecar::{service_file::ServiceFile, Ctx};
//! use std::{io::Write, time::Duration};
//!
//! let ctx = Ctx::new("/srv/mhm", chrono::Utc::now())?;
//! let path = ctx.data_dir().join("users/u1/messages/sent_messages.json");
//! if let Some(mut file) = ServiceFile::lock(&path, Duration::from_secs(10))? {
//!     let old = file.read()?;
//!     let check = |new: &std::path::Path| {
//!         let text = std::fs::read(new)?;
//!         Ok(serde_json::from_slice::<serde_json::Value>(&text).map(drop)?)
//!     };
//!     file.rewrite(&ctx, |out| out.write_all(b"{}"), check, &old)?;
//! }
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{anyhow, Context, Result};

use crate::{fsx, Ctx, FailPoint};

/// The first byte of a file while it is being written over.
pub const MARK: u8 = b'#';

/// The new content is copied over the file in parts of this size.
const PART: usize = 1 << 16;

/// How often a lock held by another is tried again.
const RETRY: Duration = Duration::from_millis(50);

/// `.<name>.journal` beside `path`: the content an interrupted rewrite of `path` was
/// writing.
pub fn journal_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.journal"))
}

/// A service data file, held under the service's lock, open for reading and writing (never
/// through a link). The lock goes when this is dropped, or with the process.
pub struct ServiceFile {
    file: File,
    path: PathBuf,
    journal: PathBuf,
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

/// Why steps 2 to 5 did not finish.
enum ApplyError {
    /// The file, by its name, does not hold the journal's content after the rewrite.
    Changed,
    Failed(anyhow::Error),
}

impl From<io::Error> for ApplyError {
    fn from(e: io::Error) -> Self {
        ApplyError::Failed(e.into())
    }
}

impl From<anyhow::Error> for ApplyError {
    fn from(e: anyhow::Error) -> Self {
        ApplyError::Failed(e)
    }
}

impl ServiceFile {
    /// Waits up to `wait` for the service's lock on `path` and opens the file; `None` when
    /// there is no file. Waiting longer is an error saying so.
    pub fn lock(path: &Path, wait: Duration) -> Result<Option<Self>> {
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
        // The lock is the file's. The service may have put another file at the name while
        // we waited (it writes a temporary file and renames it over): then this lock guards
        // nothing, and the next try opens the file the name leads to now.
        let ours = file.metadata()?;
        match fs::symlink_metadata(path) {
            Ok(now) if now.dev() == ours.dev() && now.ino() == ours.ino() => {}
            Ok(_) => return Ok(Attempt::Moved),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Attempt::Moved),
            Err(e) => return Err(e),
        }
        Ok(Attempt::Held(Self::new(file, path)))
    }

    /// `<file>.lock` created exclusively, as the service creates it.
    #[cfg(not(unix))]
    fn try_lock(path: &Path) -> io::Result<Attempt> {
        if !fsx::exists(path) {
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
        let lock = (lock, lock_path);
        let Some(file) = open(path)? else {
            let _ = fs::remove_file(&lock.1);
            return Ok(Attempt::Missing);
        };
        let mut held = Self::new(file, path, lock);
        held.file.seek(SeekFrom::Start(0))?;
        Ok(Attempt::Held(held))
    }

    #[cfg(unix)]
    fn new(file: File, path: &Path) -> Self {
        Self { file, path: path.to_path_buf(), journal: journal_path(path) }
    }

    #[cfg(not(unix))]
    fn new(file: File, path: &Path, lock: (File, PathBuf)) -> Self {
        Self { file, path: path.to_path_buf(), journal: journal_path(path), lock }
    }

    /// The file's content.
    pub fn read(&mut self) -> io::Result<Vec<u8>> {
        self.file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Where the journal of a rewrite of this file lies.
    pub fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// The content of the journal an interrupted rewrite left; `None` when there is none.
    pub fn journal(&self) -> io::Result<Option<Vec<u8>>> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        match mhm_fsx::open_no_follow(&mut opts, &self.journal, false) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)?;
                Ok(Some(bytes))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes the journal (its content is in the file, or no longer needed).
    pub fn remove_journal(&self) -> io::Result<()> {
        fs::remove_file(&self.journal)?;
        fsx::sync_dir(&self.journal);
        Ok(())
    }

    /// Writes what `render` writes over the file, through the journal (steps 1 to 5 of the
    /// module's documentation); `check` is given the journal's path (under its temporary
    /// name, written and synced) to read it back, and an error from it stops the rewrite
    /// before the file is touched. `old` is what the file holds: when a step fails after the
    /// file was marked, it is written back, so the file holds what it held; when even that
    /// fails, the next run finishes the rewrite from the journal. The journal goes only
    /// once the file holds its content: after a failure it stays, for the next run to
    /// compare with the file (it may hold what a journal before it held: messages nothing
    /// else holds). When the file changed by its name meanwhile (someone wrote it without
    /// the lock), the error says so.
    pub fn rewrite(
        &mut self,
        ctx: &Ctx,
        render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
        check: impl FnOnce(&Path) -> Result<()>,
        old: &[u8],
    ) -> Result<()> {
        // 1. The journal: whole under its name or not there, checked, with the file's
        // permissions.
        let mut journal = fsx::Atomic::create(&self.journal)
            .with_context(|| format!("creating a file beside {}", ctx.show(&self.journal)))?;
        let tmp = ctx.show(journal.temp());
        journal
            .set_permissions_of(&self.file.metadata()?)
            .with_context(|| format!("setting permissions on {tmp}"))?;
        let mut w = BufWriter::with_capacity(PART, journal.file());
        render(&mut w).and_then(|()| w.flush()).with_context(|| format!("writing {tmp}"))?;
        drop(w);
        journal.file().sync_all().with_context(|| format!("writing {tmp}"))?;
        check(journal.temp()).with_context(|| tmp.clone())?;
        journal.commit_replace().with_context(|| format!("writing {}", ctx.show(&self.journal)))?;
        ctx.fail_at(FailPoint::MessagesJournalWritten)?;
        match self.apply(ctx) {
            Ok(()) => Ok(()),
            Err(ApplyError::Changed) => Err(self.changed(ctx)),
            Err(ApplyError::Failed(e)) => match self.write_back(old) {
                Ok(()) => Err(e.context("it holds what it held before")),
                Err(back) => Err(e.context(format!(
                    "writing back what it held failed too ({back}); the next run finishes \
                     the rewrite from {}",
                    ctx.show(&self.journal)
                ))),
            },
        }
    }

    /// Finishes the rewrite an interrupted run began (the file starts with the mark): the
    /// journal's content written over the file (steps 2 to 5).
    pub fn roll_forward(&mut self, ctx: &Ctx) -> Result<()> {
        match self.apply(ctx) {
            Ok(()) => Ok(()),
            Err(ApplyError::Changed) => Err(self.changed(ctx)),
            Err(ApplyError::Failed(e)) => Err(e.context(format!(
                "finishing the rewrite from {}; both left as they are",
                ctx.show(&self.journal)
            ))),
        }
    }

    fn changed(&self, ctx: &Ctx) -> anyhow::Error {
        anyhow!(
            "the file was written meanwhile by a process that does not take the service's \
             lock; {} keeps what the rewrite wrote, and the next run puts back any message \
             it holds that is missing",
            ctx.show(&self.journal)
        )
    }

    /// Steps 2 to 5: the journal's content written over the file.
    fn apply(&mut self, ctx: &Ctx) -> Result<(), ApplyError> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        let mut journal = mhm_fsx::open_no_follow(&mut opts, &self.journal, false)?;
        let len = journal.metadata()?.len();
        let mut first = [0u8; 1];
        journal.read_exact(&mut first).context("the journal is empty")?;
        if first[0] == MARK {
            return Err(anyhow!("the journal starts with the rewrite's mark").into());
        }
        // 2. Marked: from here on no reader takes the file for whole.
        self.put(0, &[MARK])?;
        self.file.sync_data()?;
        ctx.fail_at(FailPoint::MessagesMarked)?;
        // 3. Everything after the first byte.
        self.file.seek(SeekFrom::Start(1))?;
        let file = &mut self.file;
        let mut parts = 0u64;
        fsx::read_chunks(&mut journal, &mut vec![0u8; PART], |part| {
            file.write_all(part)?;
            parts += 1;
            if parts == 1 {
                ctx.fail_at(FailPoint::MessagesPartWritten).map_err(io::Error::other)?;
            }
            Ok(())
        })?;
        self.file.set_len(len)?;
        self.file.sync_data()?;
        ctx.fail_at(FailPoint::MessagesBodyWritten)?;
        // 4. Whole.
        self.put(0, &first)?;
        self.file.sync_data()?;
        ctx.fail_at(FailPoint::MessagesRewritten)?;
        // 5. The name leads to what we wrote.
        if digest(&self.path)? != digest(&self.journal)? {
            return Err(ApplyError::Changed);
        }
        self.remove_journal()?;
        Ok(())
    }

    /// `old` written back over the file the same way (marked until it is all there).
    fn write_back(&mut self, old: &[u8]) -> io::Result<()> {
        let Some((&first, rest)) = old.split_first() else {
            self.file.set_len(0)?;
            return self.file.sync_data();
        };
        self.put(0, &[MARK])?;
        self.put(1, rest)?;
        self.file.set_len(old.len() as u64)?;
        self.file.sync_data()?;
        self.put(0, &[first])?;
        self.file.sync_data()
    }

    fn put(&mut self, at: u64, bytes: &[u8]) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(at))?;
        self.file.write_all(bytes)
    }
}

#[cfg(not(unix))]
impl Drop for ServiceFile {
    fn drop(&mut self) {
        // On Windows the system deletes it when its handle closes anyway.
        let _ = fs::remove_file(&self.lock.1);
    }
}

/// `path` opened for reading and writing, never through a link; `None` when nothing is
/// there. Anything but a regular file is an error.
fn open(path: &Path) -> io::Result<Option<File>> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true);
    let file = match mhm_fsx::open_no_follow(&mut opts, path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    Ok(Some(file))
}

/// The SHA-256 of what the file at `path` holds (opened by its name, never through a link).
fn digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    let mut file = mhm_fsx::open_no_follow(&mut opts, path, false)?;
    Ok(fsx::sha256_of(&mut file, &mut vec![0u8; PART], 0)?.sha256)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(dir: &Path) -> Ctx {
        Ctx::new(dir, chrono::Utc::now()).unwrap()
    }

    #[test]
    fn rewrite_keeps_the_file_and_leaves_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, r#"{"a": [1, 2, 3, 4, 5, 6, 7, 8, 9]}"#).unwrap();
        let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
        let old = file.read().unwrap();
        let check = |new: &Path| {
            assert_eq!(fs::read(new).unwrap(), br#"{"a": []}"#);
            Ok(())
        };
        file.rewrite(&ctx(dir.path()), |w| w.write_all(br#"{"a": []}"#), check, &old).unwrap();
        assert_eq!(file.read().unwrap(), br#"{"a": []}"#);
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), br#"{"a": []}"#);
        let mut left: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        left.retain(|n| n != "f.json" && n != "logs");
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_failure_after_the_mark_puts_the_old_content_back() {
        for point in [
            FailPoint::MessagesMarked,
            FailPoint::MessagesPartWritten,
            FailPoint::MessagesBodyWritten,
            FailPoint::MessagesRewritten,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f.json");
            let old = format!("{{\"a\": \"{}\"}}", "x".repeat(3 * PART));
            fs::write(&path, &old).unwrap();
            let ctx = ctx(dir.path()).with_faults(crate::Faults(vec![point]));
            let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
            let err =
                file.rewrite(&ctx, |w| w.write_all(b"{}"), |_| Ok(()), old.as_bytes()).unwrap_err();
            assert!(format!("{err:#}").contains("holds what it held before"), "{point:?}: {err:#}");
            assert_eq!(fs::read_to_string(&path).unwrap(), old, "{point:?}");
            // Kept for the next run, which compares it with the file.
            assert_eq!(fs::read(journal_path(&path)).unwrap(), b"{}", "{point:?}");
        }
    }

    #[test]
    fn a_journal_that_fails_its_check_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.json");
        fs::write(&path, "{}").unwrap();
        let mut file = ServiceFile::lock(&path, Duration::ZERO).unwrap().unwrap();
        let check = |_: &Path| Err(anyhow!("not what was meant"));
        let err = file.rewrite(&ctx(dir.path()), |w| w.write_all(b"[]"), check, b"{}").unwrap_err();
        assert!(format!("{err:#}").contains("not what was meant"), "{err:#}");
        drop(file);
        assert_eq!(fs::read(&path).unwrap(), b"{}");
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["f.json"]);
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
