//! What the processes writing one log share, in files beside it: a small mapped file
//! `.<name>.shm` (the generation of the active file, its size counted over every process,
//! its start, the last copy's name) and the rotation lock `.<name>.lock`.
//!
//! The hot path reads the generation (one atomic load) and adds its bytes to the size
//! (one atomic add); nothing else here is touched per event. A rotation, a new active file
//! after someone deleted or moved one, and the start of a writer happen under the rotation
//! lock: an OS lock (`flock` on unix, `LockFileEx` on Windows, through std), which the OS
//! releases when its holder dies.
//!
//! Every write goes through [`Shared::append`]. On unix that is one `write(2)` on a file
//! opened with `O_APPEND`: the kernel places it at the end as one piece, whoever else
//! appends. On Windows, `FILE_APPEND_DATA` alone is not enough everywhere (Wine, network
//! shares and some filters compute the end and then write, so two processes can tear or
//! overwrite each other's lines): the write is made under an exclusive `LockFileEx` on one
//! byte of `.<name>.shm` past its mapped words, which the OS also releases if its holder
//! dies. One lock and unlock per write call: per event in `Direct` mode, per buffer flush
//! in the buffered modes.

use std::{
    fmt,
    fs::{File, OpenOptions, TryLockError},
    io::{self, Write},
    path::Path,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
    time::Duration,
};

use chrono::{Datelike, NaiveDate};
use memmap2::{MmapOptions, MmapRaw};

/// "MHMLOG", then the layout's version.
const MAGIC: u64 = u64::from_le_bytes(*b"MHMLOG\x00\x01");
/// The mapped file's length: `Words`, with room to grow.
const LEN: usize = 128;

/// The shared words, at the start of the mapping.
#[repr(C)]
struct Words {
    /// `MAGIC` once a writer has filled in the rest (under the rotation lock).
    magic: AtomicU64,
    /// Bumped (Release) after each new active file is in place; everything else here was
    /// stored before it.
    generation: AtomicU64,
    /// Bytes written into the active file by every process.
    size: AtomicU64,
    /// When the active file was started (nanoseconds since the epoch).
    started: AtomicI64,
    /// The last copy's day (days from the common era) and number: `day << 32 | seq`, or 0.
    last_copy: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Words>() <= LEN);

/// One writer's view of what the processes on its log share.
pub(super) struct Shared {
    map: MmapRaw,
    /// `.<name>.lock`: held while rotating, starting a new active file, or starting up.
    lock: File,
    /// `.<name>.shm` itself: on Windows, a byte of it past the words is the append lock.
    #[cfg_attr(not(windows), allow(dead_code))]
    shm: File,
    /// How long start-up waits for `lock` (`Settings::lock_wait`).
    wait: Duration,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("generation", &self.generation())
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

/// The rotation lock, held; released on drop.
pub(super) struct Held<'a>(&'a File);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

impl Shared {
    /// Opens (or creates) the mapping and the lock file of `log_name` in `dir`. Race-free:
    /// every process opens without truncating, extends to `LEN` (zeros) if shorter, maps.
    pub(super) fn open(dir: &Path, log_name: &str, wait: Duration) -> io::Result<Self> {
        let lock_path = dir.join(format!(".{log_name}.lock"));
        let lock = open_rw(&lock_path)?;
        let shm_path = dir.join(format!(".{log_name}.shm"));
        let file = open_rw(&shm_path)?;
        if file.metadata()?.len() < LEN as u64 {
            // The blocks are allocated (zeros written and synced) before the file is
            // mapped: a hole would be filled by the first store into the mapping, and on a
            // full disk that store is a SIGBUS that kills the process, not an error. Under
            // the rotation lock, so no other process initialises the words meanwhile.
            lock_within(&lock, &lock_path, wait)?;
            let filled = fill_zeros(&file, LEN as u64)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", shm_path.display())));
            let _ = lock.unlock();
            filled?;
        }
        let map = MmapOptions::new().len(LEN).map_raw(&file)?;
        Ok(Self { map, lock, shm: file, wait })
    }

    /// Appends all of `data` to `file` (the active file, or a copy a stalled writer still
    /// holds) as one piece that no other process's bytes land inside, and counts it in the
    /// shared size.
    pub(super) fn append(&self, file: &File, data: &[u8]) -> Result<(), Box<Torn>> {
        self.append_parts(file, data, &[])
    }

    /// [`Shared::append`] of `data` then `more`, as one piece. A write cut short counts
    /// what reached the file.
    pub(super) fn append_parts(
        &self,
        file: &File,
        data: &[u8],
        more: &[u8],
    ) -> Result<(), Box<Torn>> {
        #[cfg(windows)]
        let _held = append_lock::AppendLock::take(&self.shm).map_err(Torn::nothing)?;
        match write_whole(file, data, more) {
            Ok(()) => {
                self.add_size((data.len() + more.len()) as u64);
                Ok(())
            }
            Err(torn) => {
                self.add_size(torn.on_disk());
                Err(torn)
            }
        }
    }

    fn words(&self) -> &Words {
        // SAFETY: the mapping is `LEN` bytes, page-aligned, shared and writable, and lives
        // as long as `self`; every field is an atomic, so other processes writing it
        // concurrently is fine. (Someone truncating the file under us would fault: the
        // file is ours, hidden beside the log.)
        unsafe { &*self.map.as_ptr().cast::<Words>() }
    }

    /// The rotation lock, waiting for it (start-up only: a holder keeps it for one
    /// rotation), `Settings::lock_wait` at most: a lock held longer is someone else's
    /// doing, and the caller gets an error naming it rather than a hang.
    pub(super) fn lock(&self) -> io::Result<Held<'_>> {
        lock_within(&self.lock, Path::new("the log's .lock file"), self.wait)?;
        Ok(Held(&self.lock))
    }

    /// The rotation lock if it is free now; `Ok(None)` when another writer holds it.
    pub(super) fn try_lock(&self) -> io::Result<Option<Held<'_>>> {
        match self.lock.try_lock() {
            Ok(()) => Ok(Some(Held(&self.lock))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Whether a writer filled the words in (under the lock).
    pub(super) fn initialized(&self, _held: &Held<'_>) -> bool {
        self.words().magic.load(Ordering::Acquire) == MAGIC
    }

    /// Clears the words a writer records (size, start, last copy) before a first writer
    /// fills them in: a file without the magic word holds nothing to trust (a crash before
    /// it was written, or bytes someone else put there).
    pub(super) fn reset(&self, _held: &Held<'_>) {
        let w = self.words();
        w.size.store(0, Ordering::Relaxed);
        w.started.store(0, Ordering::Relaxed);
        w.last_copy.store(0, Ordering::Relaxed);
    }

    pub(super) fn mark_initialized(&self, _held: &Held<'_>) {
        self.words().magic.store(MAGIC, Ordering::Release);
    }

    /// The active file's generation: a writer whose own is older follows to the new file.
    #[inline]
    pub(super) fn generation(&self) -> u64 {
        self.words().generation.load(Ordering::Acquire)
    }

    /// Publishes a new active file (everything stored before is seen by whoever sees the
    /// new generation), and returns the new generation.
    pub(super) fn bump(&self, _held: &Held<'_>) -> u64 {
        self.words().generation.fetch_add(1, Ordering::Release).wrapping_add(1)
    }

    /// Bytes in the active file, counted over every process.
    #[inline]
    pub(super) fn size(&self) -> u64 {
        self.words().size.load(Ordering::Relaxed)
    }

    /// Counts `n` bytes just written into the active file.
    #[inline]
    pub(super) fn add_size(&self, n: u64) {
        self.words().size.fetch_add(n, Ordering::Relaxed);
    }

    pub(super) fn set_size(&self, n: u64, _held: &Held<'_>) {
        self.words().size.store(n, Ordering::Relaxed);
    }

    /// At start-up: the size is at least what is on disk (bytes another writer has just
    /// added are kept).
    pub(super) fn size_at_least(&self, n: u64, _held: &Held<'_>) {
        self.words().size.fetch_max(n, Ordering::Relaxed);
    }

    pub(super) fn started(&self) -> i64 {
        self.words().started.load(Ordering::Relaxed)
    }

    pub(super) fn set_started(&self, t: i64, _held: &Held<'_>) {
        self.words().started.store(t, Ordering::Relaxed);
    }

    /// The last copy any writer made.
    pub(super) fn last_copy(&self) -> Option<(NaiveDate, u32)> {
        let v = self.words().last_copy.load(Ordering::Relaxed);
        let day = i32::try_from(v >> 32).ok().filter(|d| *d > 0)?;
        Some((NaiveDate::from_num_days_from_ce_opt(day)?, v as u32))
    }

    /// Records a copy, unless a later one is recorded already.
    pub(super) fn set_last_copy(&self, copy: Option<(NaiveDate, u32)>, _held: &Held<'_>) {
        if let Some((day, seq)) = copy {
            let day = u64::try_from(day.num_days_from_ce()).unwrap_or(0);
            self.words().last_copy.fetch_max(day << 32 | u64::from(seq), Ordering::Relaxed);
        }
    }
}

/// The later of two copies (by day, then number).
pub(super) fn later(
    a: Option<(NaiveDate, u32)>,
    b: Option<(NaiveDate, u32)>,
) -> Option<(NaiveDate, u32)> {
    a.max(b)
}

/// Writes all of `data`: one `write(2)` on a file opened for appending, which the OS
/// places at the end as one piece (POSIX `O_APPEND`; Windows `FILE_APPEND_DATA`), so no
/// other writer's bytes, in this process or another, land inside it. Only a full disk
/// (or a file size limit) makes it write part: the rest is tried again, and if that fails,
/// the torn line is ended with a newline (best effort) so the next event starts a line of
/// its own. The file is never cut back: other processes may have written after it.
/// `more` (usually empty) follows `data` in the same `writev(2)`; without it, a plain
/// `write(2)` (`writev` costs the kernel more per call: 1.10 × instead of 1.02 ×
/// `tracing-appender` in direct mode, measured).
pub(super) fn write_whole(file: &File, data: &[u8], more: &[u8]) -> Result<(), Box<Torn>> {
    let mut f = file;
    if more.is_empty() {
        let mut done = 0;
        while done < data.len() {
            match f.write(&data[done..]) {
                Ok(0) => {
                    return Err(Torn::after(f, [data, more], done, io::ErrorKind::WriteZero.into()))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Torn::after(f, [data, more], done, e)),
            }
        }
        return Ok(());
    }
    let mut parts = [io::IoSlice::new(data), io::IoSlice::new(more)];
    let mut left = &mut parts[..];
    io::IoSlice::advance_slices(&mut left, 0); // skips an empty `data`
    let mut done = 0;
    while !left.is_empty() {
        match f.write_vectored(left) {
            Ok(0) => {
                return Err(Torn::after(f, [data, more], done, io::ErrorKind::WriteZero.into()))
            }
            Ok(n) => {
                done += n;
                io::IoSlice::advance_slices(&mut left, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Torn::after(f, [data, more], done, e)),
        }
    }
    Ok(())
}

/// A write that failed, perhaps part way: what reached the file, for the counts. Boxed in
/// results, so a write's `Result` stays one register wide on the hot path (a 24-byte
/// error is returned through memory: +1 % instructions per event in direct mode).
#[derive(Debug)]
pub(super) struct Torn {
    /// Bytes of the data that are in the file (a prefix of it).
    pub(super) written: usize,
    /// Whether a newline was added after them to end a torn line.
    pub(super) ended: bool,
    /// Why the write stopped.
    pub(super) error: io::Error,
}

impl Torn {
    /// A write that never started.
    pub(super) fn nothing(error: io::Error) -> Box<Self> {
        Box::new(Self { written: 0, ended: false, error })
    }

    /// Ends the torn line (best effort) after `written` bytes of `parts`, so the next
    /// event starts a line of its own; nothing when they end a line.
    fn after(mut f: &File, parts: [&[u8]; 2], written: usize, error: io::Error) -> Box<Self> {
        let last = written.checked_sub(1).and_then(|i| {
            let [data, more] = parts;
            if i < data.len() {
                data.get(i)
            } else {
                more.get(i - data.len())
            }
        });
        let ended = last.is_some_and(|&b| b != b'\n') && f.write(b"\n").is_ok_and(|n| n == 1);
        Box::new(Self { written, ended, error })
    }

    /// Bytes this write added to the file.
    pub(super) fn on_disk(&self) -> u64 {
        self.written as u64 + u64::from(self.ended)
    }

    /// Of the `events` events in `data` then `more`, how many are whole in the file
    /// (each ends with a newline; the one cut short is not), and their bytes.
    pub(super) fn whole(&self, data: &[u8], more: &[u8], events: u64) -> (u64, u64) {
        let (first, second) = if self.written <= data.len() {
            (&data[..self.written], &more[..0])
        } else {
            (data, &more[..(self.written - data.len()).min(more.len())])
        };
        let mut lines = 0u64;
        let mut bytes = 0usize;
        let mut offset = 0usize;
        for part in [first, second] {
            if let Some(last) = part.iter().rposition(|&b| b == b'\n') {
                lines += bytecount(&part[..=last]);
                bytes = offset + last + 1;
            }
            offset += part.len();
        }
        // Records without a newline are events too: never more than were written.
        (lines.min(events.saturating_sub(1)), bytes as u64)
    }
}

fn bytecount(part: &[u8]) -> u64 {
    part.iter().filter(|&&b| b == b'\n').count() as u64
}

impl From<Box<Torn>> for io::Error {
    fn from(t: Box<Torn>) -> Self {
        t.error
    }
}

/// Windows: the append lock, a byte of `.<name>.shm` past the mapped words.
#[cfg(windows)]
mod append_lock {
    use std::{fs::File, io, os::windows::io::AsRawHandle};

    use windows_sys::Win32::{
        Foundation::HANDLE,
        Storage::FileSystem::{LockFileEx, UnlockFileEx, LOCKFILE_EXCLUSIVE_LOCK},
        System::IO::OVERLAPPED,
    };

    /// Where the locked byte lies: far past the words, so the mapped view never overlaps it.
    const AT: u64 = 1 << 32;

    fn at() -> OVERLAPPED {
        // SAFETY: OVERLAPPED is plain data; all zeros is its documented starting state.
        let mut o: OVERLAPPED = unsafe { std::mem::zeroed() };
        o.Anonymous.Anonymous.Offset = AT as u32;
        o.Anonymous.Anonymous.OffsetHigh = (AT >> 32) as u32;
        o
    }

    /// Held; released on drop.
    pub(super) struct AppendLock(HANDLE);

    impl AppendLock {
        /// Waits for the lock (a holder keeps it for one write call).
        pub(super) fn take(shm: &File) -> io::Result<Self> {
            let handle = shm.as_raw_handle() as HANDLE;
            let mut o = at();
            // SAFETY: `handle` is an open file handle for the duration of the call (and of
            // the guard, which borrows nothing but is dropped before `Shared`); `o` lives
            // across the call, which is synchronous (the file is not opened overlapped).
            let ok = unsafe { LockFileEx(handle, LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut o) };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Self(handle))
        }
    }

    impl Drop for AppendLock {
        fn drop(&mut self) {
            let mut o = at();
            // SAFETY: as in `take`; unlocking the range this guard locked.
            unsafe { UnlockFileEx(self.0, 0, 1, 0, &mut o) };
        }
    }
}

/// Takes `lock` (an OS file lock), waiting `wait` at most.
fn lock_within(lock: &File, name: &Path, wait: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + wait;
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{} is held by another process for over {:.1} s",
                        name.display(),
                        wait.as_secs_f64()
                    ),
                ))
            }
        }
    }
}

/// Writes zeros from `file`'s end up to `len`, and syncs them: the blocks are allocated,
/// or the error (a full disk) is returned.
fn fill_zeros(file: &File, len: u64) -> io::Result<()> {
    let from = file.metadata()?.len();
    if from >= len {
        return Ok(());
    }
    let zeros = vec![0u8; (len - from) as usize];
    #[cfg(unix)]
    std::os::unix::fs::FileExt::write_all_at(file, &zeros, from)?;
    #[cfg(windows)]
    {
        let mut at = 0usize;
        while at < zeros.len() {
            let n =
                std::os::windows::fs::FileExt::seek_write(file, &zeros[at..], from + at as u64)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            at += n;
        }
    }
    #[cfg(not(any(unix, windows)))]
    file.set_len(len)?;
    file.sync_data()
}

/// The writer's hidden files (`.shm`, `.lock`): never through a link, owner-only when made.
pub(super) fn open_rw(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    mhm_fsx::open_no_follow(&mut opts, path, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_views_of_one_log_share_the_words() {
        let dir = tempfile::tempdir().unwrap();
        let a = Shared::open(dir.path(), "app.log", Duration::from_secs(10)).unwrap();
        let b = Shared::open(dir.path(), "app.log", Duration::from_secs(10)).unwrap();
        let held = a.lock().unwrap();
        assert!(b.try_lock().unwrap().is_none(), "the lock is exclusive between opens");
        assert!(!a.initialized(&held));
        a.mark_initialized(&held);
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        a.set_last_copy(Some((day, 2)), &held);
        a.set_last_copy(Some((day, 1)), &held); // never backwards
        a.add_size(10);
        b.add_size(5);
        let g = a.bump(&held);
        drop(held);
        assert_eq!((b.generation(), b.size(), b.last_copy()), (g, 15, Some((day, 2))));
        assert!(b.try_lock().unwrap().is_some());
    }
}
