//! The open active file and its identity ([`ActiveFile`]): opening and resuming it (its
//! size, its age, a torn last line), the copy numbering of the day, writing to it,
//! reopening after a failure, following another writer's rotation, and starting again
//! when someone else deleted or moved it. It changes the [`Rotation`] it is given when a
//! new file starts, and reaches the other writers through the mapping (`shared.rs`).

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::Path,
    sync::Arc,
    time::Duration,
};

use chrono::NaiveDate;

use super::{
    shared::{later, write_whole, Held, Shared, Torn},
    stats::Stats,
    trigger::{Rotation, Trigger},
};
use crate::{clock::Zone, retention};

/// How long a failed rotation, or a failed start of a new active file, waits before the
/// next try.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The open active file, and what this writer knows of it.
#[derive(Debug)]
pub(super) struct ActiveFile {
    /// `None` only when opening a new one failed (retried on each write). Shared so a
    /// buffered flush can write to it outside the state lock.
    file: Option<Arc<File>>,
    /// Bytes in the file (not counting the buffer's).
    disk: u64,
    /// The open file was renamed into `backups/` but no new active file could be opened.
    detached: bool,
    /// The file as last seen at its path.
    checked: Checked,
    /// The shared generation of the open file: when the shared one moves on, another
    /// writer has rotated (or started a new active file) and this one follows.
    generation: u64,
}

/// The active file as last seen at its path: what was in it then was not lost to someone
/// deleting it later.
#[derive(Clone, Copy, Debug)]
struct Checked {
    /// Its length.
    len: u64,
    /// Events this writer had placed in its files by then (see [`placed_events`]).
    events: u64,
}

impl ActiveFile {
    /// `file`, `disk` bytes long, of the shared `generation` (at start-up).
    pub(super) fn new(file: File, disk: u64, generation: u64) -> Self {
        Self {
            file: Some(Arc::new(file)),
            disk,
            detached: false,
            checked: Checked { len: disk, events: 0 },
            generation,
        }
    }

    /// The open file, if any.
    pub(super) fn file(&self) -> Option<&Arc<File>> {
        self.file.as_ref()
    }

    /// The shared generation this writer is at.
    #[inline]
    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in the file, as this writer counts them.
    pub(super) fn disk(&self) -> u64 {
        self.disk
    }

    /// Whether the open file is a copy now (see [`ActiveFile::detach`]).
    pub(super) fn detached(&self) -> bool {
        self.detached
    }

    /// The file's length when last seen in place.
    pub(super) fn checked_len(&self) -> u64 {
        self.checked.len
    }

    /// Counts `n` bytes handed to the file (a buffer swapped out to be written).
    pub(super) fn add_disk(&mut self, n: u64) {
        self.disk += n;
    }

    /// Takes back `n` bytes counted but never written (failed flushes).
    pub(super) fn take_back(&mut self, n: u64) {
        self.disk = self.disk.saturating_sub(n);
    }

    /// The file to write a buffer to, reopening it after an earlier failure to open one.
    pub(super) fn for_flush(&mut self, path: &Path, stats: &Stats) -> Option<Arc<File>> {
        if self.file.is_none() {
            self.reopen(path, stats);
        }
        self.file.clone()
    }

    /// Reopens the active file after an earlier failure to open one.
    fn reopen(&mut self, path: &Path, stats: &Stats) {
        if let Ok(file) = open_append(path) {
            self.disk = file.metadata().map(|m| m.len()).unwrap_or(0);
            self.file = Some(Arc::new(file));
            self.checked = Checked { len: self.disk, events: stats.events_written };
        }
    }

    /// Writes `data` (holding `events` events) to the file, under the state lock. On
    /// failure the events whole in the file count as written, the rest as lost (a line
    /// cut short is ended with a newline; the file is never cut back).
    /// `more` follows `data` in the same write (a stage's bytes that wrap past its ring's
    /// end), usually empty.
    #[inline]
    pub(super) fn write(
        &mut self,
        path: &Path,
        shared: &Shared,
        stats: &mut Stats,
        [data, more]: [&[u8]; 2],
        events: u64,
    ) -> io::Result<()> {
        if self.file.is_none() {
            self.reopen(path, stats);
        }
        let result = match &self.file {
            Some(file) => shared.append_parts(file, data, more),
            None => Err(Torn::nothing(io::Error::other("the log file could not be reopened"))),
        };
        let len = (data.len() + more.len()) as u64;
        match result {
            Ok(()) => {
                self.disk += len;
                stats.events_written += events;
                stats.bytes_written += len;
                Ok(())
            }
            Err(torn) => self.write_failed(path, stats, torn, [data, more], events),
        }
    }

    /// [`ActiveFile::write`] cut short: the events whole in the file count as written, the
    /// rest as lost.
    // The box is taken as it comes: unboxing it in `write` would grow the hot function.
    #[allow(clippy::boxed_local)]
    #[cold]
    fn write_failed(
        &mut self,
        path: &Path,
        stats: &mut Stats,
        torn: Box<Torn>,
        [data, more]: [&[u8]; 2],
        events: u64,
    ) -> io::Result<()> {
        let (whole, whole_bytes) = torn.whole(data, more, events);
        self.disk += torn.on_disk();
        stats.events_written += whole;
        stats.bytes_written += whole_bytes;
        stats.write_errors += 1;
        stats.lost_events += events - whole;
        let e = torn.error;
        stats.last_error = Some(format!("writing {}: {e}", path.display()));
        Err(e)
    }

    /// The open file, to be compared with the one at the path; `None` when there is none
    /// or it is detached (written into on purpose, until a new file can be opened).
    pub(super) fn to_check(&self) -> Option<Arc<File>> {
        self.file.clone().filter(|_| !self.detached)
    }

    /// The open file was found in place, `len` bytes long, with `placed` events placed.
    pub(super) fn seen_in_place(&mut self, len: u64, placed: u64) {
        self.checked = Checked { len, events: placed };
    }

    /// The open file was renamed into `backups/` and no new one could be opened: writing
    /// goes on into the copy.
    pub(super) fn detach(&mut self) {
        self.detached = true;
    }

    /// A rotation opened `file` as the new active file (empty), of `generation`. `placed`:
    /// the events placed in the old one.
    pub(super) fn rotated(&mut self, file: Arc<File>, placed: u64) {
        self.checked = Checked { len: 0, events: placed };
        self.file = Some(file);
        self.disk = 0;
        self.detached = false;
    }

    /// Publishes a new active file to the other writers (under the rotation lock).
    pub(super) fn publish(&mut self, shared: &Shared, held: &Held<'_>) {
        self.generation = shared.bump(held);
    }

    /// Moves to the active file another writer (another process) started: its rotation,
    /// or its new file after someone deleted the old one. What this writer wrote since
    /// then went into the old file (now a copy), once. `lost`: the events of failed
    /// flushes (no flush is in flight: the caller holds the io lock).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn follow(
        &mut self,
        path: &Path,
        shared: &Shared,
        trigger: &Trigger,
        rot: &mut Rotation,
        stats: &mut Stats,
        generation: u64,
        lost: u64,
    ) {
        match open_append(path) {
            Ok(file) => {
                self.disk = file.metadata().map_or(0, |m| m.len());
                self.file = Some(Arc::new(file));
                rot.restart(trigger, shared.started());
                rot.clear_retry();
                self.detached = false;
                rot.set_last_copy(later(rot.last_copy(), shared.last_copy()));
                self.checked = Checked { len: self.disk, events: placed_events(stats, lost) };
                stats.followed += 1;
            }
            Err(e) => {
                // Keep writing into the old file (a copy now: nothing is lost); the next
                // rotation or check tries again.
                stats.rotation_errors += 1;
                stats.last_error = Some(format!(
                    "opening {} after another writer rotated it: {e}",
                    path.display()
                ));
            }
        }
        self.generation = generation;
    }

    /// Starts a new active file at the path after the open one (`old`) was deleted or
    /// moved away. A deleted file's tail, written since it was last seen in place, is
    /// copied into the new file (in the buffered modes, its events may still have been
    /// in memory when the file was deleted): nothing written to a deleted file is lost
    /// unless that copy fails, and then it is counted. A moved file keeps what was
    /// written into it. `lost`: as for [`ActiveFile::follow`]; `buffered`: the shared
    /// buffer's length, for the trigger's hints.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_again(
        &mut self,
        path: &Path,
        shared: &Shared,
        trigger: &Trigger,
        rot: &mut Rotation,
        stats: &mut Stats,
        (old, gone): (Arc<File>, Whereabouts),
        now: i64,
        held: &Held<'_>,
        lost: u64,
        buffered: usize,
    ) -> Active {
        let placed = placed_events(stats, lost);
        let shown = path.display();
        // A deleted file's tail, written since it was last seen in place.
        let tail = (gone == Whereabouts::Deleted).then(|| read_whole_tail(&old, self.checked.len));
        // Windows keeps a file deleted without POSIX semantics at its name until its last
        // handle is closed: close ours (its tail is read) before starting the new one.
        #[cfg(windows)]
        let old = if gone == Whereabouts::Deleted {
            self.file = None;
            drop(old);
            None
        } else {
            Some(old)
        };
        let opened =
            path.parent().map_or(Ok(()), fs::create_dir_all).and_then(|()| open_active(path, now));
        let (file, mut disk, started) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                // Keep writing into the old file (a deleted one keeps its tail for the copy
                // the next check makes); the background thread tries again a second later,
                // rotations after `RETRY_AFTER`. On Windows a deleted file is closed by
                // now: its tail is lost (counted), and writing resumes once the path can
                // be opened again (each write tries).
                #[cfg(windows)]
                if old.is_none() {
                    let events = placed.saturating_sub(self.checked.events);
                    stats.write_errors += 1;
                    stats.lost_events += events;
                    stats.events_written = stats.events_written.saturating_sub(events);
                }
                trigger.failed(
                    rot,
                    stats,
                    now,
                    RETRY_AFTER,
                    format!("{shown} was deleted or moved away; starting a new one: {e}"),
                    buffered,
                );
                return Active::Gone;
            }
        };
        let fresh = disk == 0;
        let mut note = match gone {
            Whereabouts::Deleted => {
                format!("{shown} was deleted by someone else; started a new one")
            }
            _ => format!("{shown} was moved away by someone else; started a new one"),
        };
        if let Some(tail) = tail {
            let read = tail.as_ref().map_or(0, |t| t.len() as u64);
            let copied = tail.and_then(|t| {
                write_whole(&file, &t, &[])?;
                Ok::<_, io::Error>(t.len() as u64)
            });
            if read > 0 || copied.is_err() {
                match copied {
                    Ok(n) => {
                        disk += n;
                        note.push_str(&format!(
                            ", with the {n} bytes written since it was last seen"
                        ));
                    }
                    Err(e) => {
                        let _ = file.set_len(disk); // no torn line
                        let events = placed.saturating_sub(self.checked.events);
                        stats.write_errors += 1;
                        stats.lost_events += events;
                        stats.events_written = stats.events_written.saturating_sub(events);
                        stats.bytes_written = stats.bytes_written.saturating_sub(read);
                        note.push_str(&format!(
                            "; the {events} event(s) written since it was last seen are lost \
                             (copying them failed: {e})"
                        ));
                    }
                }
            }
        }
        // A new empty file after a deletion continues the deleted one (its day, its age,
        // its deadline): nobody rotated it, so its copy, when it comes, is named as the
        // deleted file's would have been. After a move it is a new file, started now; a
        // file someone else put at the path keeps its own age, as at start-up.
        if !(fresh && gone == Whereabouts::Deleted) {
            rot.restart(trigger, started);
        }
        self.file = Some(Arc::new(file));
        self.disk = disk;
        rot.clear_retry();
        self.checked = Checked { len: disk, events: placed_events(stats, lost) };
        stats.reopens += 1;
        stats.last_error = Some(note);
        // The other writers follow to the new file.
        shared.set_size(disk, held);
        shared.set_started(rot.started(), held);
        self.generation = shared.bump(held);
        trigger.publish(rot, buffered);
        Active::StartedAgain
    }
}

/// What a check of the active file found (`rotate::Rotator::check_active`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Active {
    /// The open file is at the log's path.
    InPlace,
    /// Someone else deleted or moved it; a new one was started at the path.
    StartedAgain,
    /// Another writer had rotated it (or started a new one); this one followed.
    Followed,
    /// Someone else deleted or moved it, and no new one could be started (counted; the
    /// writer goes on writing into the old one and tries again later).
    Gone,
    /// Nothing to check (no open file, or a detached one), or the path could not be read.
    Unknown,
}

/// Events this writer has put into its files (not counting failed writes or flushes):
/// those counted written less the `lost` events of failed flushes. Exact when no flush is
/// in flight: under the state lock, with the io lock.
pub(super) fn placed_events(stats: &Stats, lost: u64) -> u64 {
    stats.events_written.saturating_sub(lost)
}

/// Where the open active file is, compared with the log's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Whereabouts {
    /// At the path still, `len` bytes long.
    InPlace { len: u64 },
    /// Somewhere else (renamed), or replaced at the path by another file.
    #[cfg_attr(not(any(unix, windows)), allow(dead_code))] // the fallback cannot tell
    Moved,
    /// Unlinked: what is written to it now is lost when it is closed.
    Deleted,
}

/// Compares the open file's identity with the path's: `(dev, ino)`, and the link count to
/// tell a deleted file from a moved one.
#[cfg(unix)]
pub(super) fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
    use std::os::unix::fs::MetadataExt;
    // The path first, the open file after: an unlink that made the path miss has then
    // already dropped the link count, so a deleted file is never taken for a moved one
    // (whose tail would not be copied: events lost, uncounted).
    let at_path = fs::metadata(path);
    let open = file.metadata()?;
    match at_path {
        Ok(at_path) if (at_path.dev(), at_path.ino()) == (open.dev(), open.ino()) => {
            Ok(Whereabouts::InPlace { len: open.len() })
        }
        Ok(_) | Err(_) if open.nlink() == 0 => Ok(Whereabouts::Deleted),
        Ok(_) => Ok(Whereabouts::Moved),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Whereabouts::Moved),
        Err(e) => Err(e),
    }
}

/// Windows: the open file's identity (volume serial number and file index, as
/// `GetFileInformationByHandle` gives them) against the path's, and its link count and
/// delete-pending flag to tell a deleted file from a moved one. A file deleted without
/// POSIX semantics (Wine; older Windows; some programs) keeps its name, "delete pending",
/// until its last handle is closed, and the path cannot be opened meanwhile: that is
/// deleted too.
#[cfg(windows)]
pub(super) fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
    let open = win::identity(file)?;
    if open.delete_pending || open.links == 0 {
        return Ok(Whereabouts::Deleted);
    }
    match win::open_for_identity(path) {
        Ok(at_path) if win::identity(&at_path)?.key == open.key => {
            Ok(Whereabouts::InPlace { len: file.metadata()?.len() })
        }
        // Not at the path: look at the open file again, after the path, so a deletion
        // that made the path miss is seen as one (never as a move).
        Ok(_) => moved_or_deleted(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => moved_or_deleted(file),
        Err(e) => Err(e),
    }
}

#[cfg(windows)]
fn moved_or_deleted(file: &File) -> io::Result<Whereabouts> {
    let now = win::identity(file)?;
    Ok(if now.delete_pending || now.links == 0 { Whereabouts::Deleted } else { Whereabouts::Moved })
}

/// Elsewhere, without a file identity on stable Rust: a missing path means the file was
/// deleted (a moved one then has its last second of lines in both places); a file put at
/// the path in its place goes unnoticed.
#[cfg(not(any(unix, windows)))]
pub(super) fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(_) => Ok(Whereabouts::InPlace { len: open.len() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Whereabouts::Deleted),
        Err(e) => Err(e),
    }
}

#[cfg(windows)]
mod win {
    use std::{
        fs::{File, OpenOptions},
        io,
        os::windows::{fs::OpenOptionsExt, io::AsRawHandle},
        path::Path,
    };

    use windows_sys::Win32::{
        Foundation::HANDLE,
        Storage::FileSystem::{
            FileStandardInfo, GetFileInformationByHandle, GetFileInformationByHandleEx,
            BY_HANDLE_FILE_INFORMATION, FILE_FLAG_BACKUP_SEMANTICS, FILE_SHARE_DELETE,
            FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO,
        },
    };

    pub(super) struct Identity {
        /// Volume serial number and file index: the same file, whatever its name.
        pub(super) key: (u32, u64),
        pub(super) links: u32,
        pub(super) delete_pending: bool,
    }

    pub(super) fn identity(file: &File) -> io::Result<Identity> {
        let handle = file.as_raw_handle() as HANDLE;
        // SAFETY: plain-data out structures, zeroed, filled by the calls; `handle` is an
        // open file handle for the duration of both calls.
        unsafe {
            let mut info: BY_HANDLE_FILE_INFORMATION = std::mem::zeroed();
            if GetFileInformationByHandle(handle, &mut info) == 0 {
                return Err(io::Error::last_os_error());
            }
            let mut standard: FILE_STANDARD_INFO = std::mem::zeroed();
            let ok = GetFileInformationByHandleEx(
                handle,
                FileStandardInfo,
                (&raw mut standard).cast(),
                std::mem::size_of::<FILE_STANDARD_INFO>() as u32,
            );
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Identity {
                key: (
                    info.dwVolumeSerialNumber,
                    u64::from(info.nFileIndexHigh) << 32 | u64::from(info.nFileIndexLow),
                ),
                links: info.nNumberOfLinks,
                delete_pending: standard.DeletePending,
            })
        }
    }

    /// Opens `path` for its identity only: no access to its data, sharing everything, so
    /// it never stands in anyone's way.
    pub(super) fn open_for_identity(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .access_mode(0)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)
    }
}

/// `from`'s bytes after `offset` (the tail of a deleted file: what was written since it
/// was last seen in place, about a second's worth).
/// [`read_tail`], ending with a whole line: another process may be inside a write(2) into
/// the deleted file (its event half copied), so a tail cut inside a line is read again a
/// little later; a line still cut then (a killed writer's fragment) is ended with a
/// newline, so the next event starts a line of its own.
fn read_whole_tail(from: &File, offset: u64) -> io::Result<Vec<u8>> {
    let mut tail = read_tail(from, offset)?;
    if tail.last().is_some_and(|&b| b != b'\n') {
        std::thread::sleep(Duration::from_millis(20));
        tail = read_tail(from, offset)?;
        if tail.last().is_some_and(|&b| b != b'\n') {
            tail.push(b'\n');
        }
    }
    Ok(tail)
}

fn read_tail(from: &File, offset: u64) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut from = from;
    from.seek(SeekFrom::Start(offset))?;
    let mut tail = Vec::new();
    from.read_to_end(&mut tail)?;
    Ok(tail)
}

/// Opens (or creates) the active file at `path` for appending, ends a torn last line, and
/// says how long it is and when it was started.
pub(super) fn open_active(path: &Path, now: i64) -> io::Result<(File, u64, i64)> {
    let file = open_append(path)?;
    let meta = file.metadata()?;
    let mut disk = meta.len();
    // A process killed inside a write(2) can leave a partial last line (the kernel
    // checks for a fatal signal between pages). End it, so the next event starts on a
    // line of its own; the fragment itself was never acknowledged to anyone.
    if disk > 0 && last_byte(path).is_some_and(|b| b != b'\n') {
        // Or another process is inside a write(2) right now, its line half copied: a torn
        // line a killed process left never changes, a write under way ends within
        // moments. Look again a little later; end the line only if nothing moved.
        std::thread::sleep(Duration::from_millis(20));
        let len = file.metadata()?.len();
        if len == disk && last_byte(path).is_some_and(|b| b != b'\n') {
            let mut f = &file;
            if f.write_all(b"\n").is_ok() {
                disk += 1;
            }
        } else {
            disk = len;
        }
    }
    // A restart keeps the file's age: its creation time where the platform reports
    // one, else its last modification (which can only make it look younger).
    let started = if disk == 0 {
        now
    } else {
        meta.created()
            .or_else(|_| meta.modified())
            .map(retention::system_time_nanos)
            .unwrap_or(now)
            .min(now)
    };
    Ok((file, disk, started))
}

fn last_byte(path: &Path) -> Option<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

/// Opens `path` for appending, and for reading (a deleted active file's tail is read back).
pub(super) fn open_append(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true).create(true).append(true);
    // Never through a link planted at the log's name (it would write outside the folder),
    // except to the devices in `LINKS_ALLOWED`, which are opened by their own name.
    match mhm_fsx::open_no_follow(&mut opts, path, false) {
        Err(refused) if refused.kind() == io::ErrorKind::InvalidInput => {
            let target = fs::read_link(path).ok();
            let allowed = LINKS_ALLOWED.iter().find(|a| target.as_deref() == Some(Path::new(a)));
            match allowed {
                Some(device) => OpenOptions::new()
                    .read(true)
                    .append(true)
                    .open(device)
                    .or_else(|_| OpenOptions::new().append(true).open(device)),
                None => Err(refused),
            }
        }
        other => other,
    }
}

/// The links a log may be (the log itself only; never the writer's hidden files): what
/// container images link their logs to, and `/dev/full` (a full disk, for tests of one).
/// Any other link is refused, naming it.
const LINKS_ALLOWED: [&str; 4] = ["/dev/null", "/dev/full", "/dev/stdout", "/dev/stderr"];

/// The highest copy number already used for `day` in either folder, so a restarted
/// writer continues the numbering instead of reusing a gap.
pub(super) fn last_copy_of_day(
    log: &str,
    day: NaiveDate,
    backup_dir: &Path,
    archive_dir: &Path,
    zone: Zone,
) -> Option<(NaiveDate, u32)> {
    let copies = retention::scan_log(log, backup_dir, archive_dir, zone).ok()?;
    copies
        .backups
        .iter()
        .chain(&copies.archive)
        .filter(|c| c.name.date == Some(day))
        .map(|c| c.name.seq)
        .max()
        .map(|seq| (day, seq))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// regression (issue 21): the open file was looked at before the path, so an unlink
    /// between the two read as "moved" (link count still 1, path missing), and the events
    /// written since the last check were not copied: lost, with `lost_events` 0. Only an
    /// unlink happens here, at any moment: every answer is in place or deleted.
    #[test]
    fn an_unlink_at_any_moment_reads_as_deleted_never_moved() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        for _ in 0..2000 {
            let file = open_append(&path).unwrap();
            let unlinker = {
                let path = path.clone();
                std::thread::spawn(move || fs::remove_file(path).unwrap())
            };
            loop {
                match whereabouts(&file, &path).unwrap() {
                    Whereabouts::InPlace { .. } => continue,
                    found => {
                        assert_eq!(found, Whereabouts::Deleted);
                        break;
                    }
                }
            }
            unlinker.join().unwrap();
        }
    }
}
