//! Opening a log: its shared state with the other writers, resuming an existing active file (its size, its
//! age, a torn last line), the copy numbering of the day, reopening after a failure, and
//! starting again when someone else deleted or moved the active file.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64},
        Arc,
    },
    time::Duration,
};

use super::sync::Mutex;
use chrono::NaiveDate;

use super::{
    mode::{Mode, Spare},
    shared::{later, Held, Shared},
    worker::{self, Maintainer, Signal},
    Checked, Inner, Padded, State, Stats,
};
use crate::{
    clock::{duration_to_nanos, Clock, Zone},
    error::InitError,
    policy::{RotateAt, Settings},
    retention,
};

use super::merge::Merged;

impl Inner {
    pub(super) fn open(
        path: &Path,
        settings: Settings,
        clock: Clock,
    ) -> Result<Arc<Self>, InitError> {
        let log_name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) => n.to_string(),
            None => return Err(InitError::msg("the log path has no valid UTF-8 file name", path)),
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .map_err(|e| InitError::io("cannot create the log folder", &dir, e))?;
        let path = dir.join(&log_name);
        let shared = Shared::open(&dir, &log_name, settings.get_lock_wait()).map_err(|e| {
            InitError::io(
                "cannot open the log's shared state",
                dir.join(format!(".{log_name}.shm")),
                e,
            )
        })?;
        let maintenance_lock = dir.join(format!(".{log_name}.maintain.lock"));
        let maintenance_lock = super::shared::open_rw(&maintenance_lock)
            .map_err(|e| InitError::io("cannot open the log's lock file", maintenance_lock, e))?;
        let backup_dir = settings.backup_dir_for(&path);
        let archive_dir = settings.archive_dir_for(&path);
        let zone = settings.zone();
        let now = clock.now_nanos();

        // Under the rotation lock: no other writer rotates while this one finds its place.
        let held = shared.lock().map_err(|e| {
            InitError::io("cannot lock the log", dir.join(format!(".{log_name}.lock")), e)
        })?;
        let (file, disk, mut started) = open_active(&path, now)
            .map_err(|e| InitError::io("cannot open the log for appending", &path, e))?;
        let initialized = shared.initialized(&held);
        if !initialized {
            shared.reset(&held);
        }
        if initialized && disk > 0 {
            // Another writer (alive or not) started this file: its start is the one kept.
            started = shared.started().min(now);
        } else {
            shared.set_started(started, &held);
        }
        shared.size_at_least(disk, &held);
        let day = zone.day(started);
        let time_trigger = settings.get_rotate_at() != RotateAt::Never;
        let due_at = if time_trigger { zone.next_midnight(started) } else { i64::MAX };
        let last_copy = later(
            last_copy_of_day(&log_name, day, &backup_dir, &archive_dir, zone),
            shared.last_copy(),
        );
        shared.set_last_copy(last_copy, &held);
        shared.mark_initialized(&held);
        let generation = shared.generation();
        drop(held);
        let mode = Mode::new(settings.get_write_mode(), settings.get_buffer_capacity());
        let buf_cap = mode.buffer().map_or(0, |b| b.cap);
        let tick = if mode.buffer().is_some() {
            settings.get_flush_interval()
        } else {
            Duration::from_secs(1)
        };

        let signal = Arc::new(Signal::default());
        let merged = Mutex::new(Merged::new(settings.clone()));
        let maintainer = Arc::new(Maintainer {
            log_name: log_name.clone(),
            backup_dir: backup_dir.clone(),
            archive_dir: archive_dir.clone(),
            policy: Mutex::new(settings.retention_policy()),
            zone,
            clock: clock.clone(),
            lock: maintenance_lock,
        });
        let inner = Arc::new(Inner {
            path,
            log_name,
            backup_dir,
            archive_dir,
            zone,
            clock,
            rotate: !settings.get_rotation_disabled(),
            time_trigger: AtomicBool::new(time_trigger),
            max_bytes: AtomicU64::new(settings.get_max_bytes()),
            // An empty file never rotates, whatever the gate says.
            min_bytes: settings.get_min_rotate_bytes().max(1),
            min_age: duration_to_nanos(settings.get_min_rotate_age()),
            mode,
            state: Padded(Mutex::new(State {
                file: Some(Arc::new(file)),
                disk,
                buf: Vec::with_capacity(buf_cap),
                buf_events: 0,
                started,
                stepped_back: None,
                day,
                due_at,
                retry_at: i64::MIN,
                detached: false,
                last_copy,
                checked: Checked { len: disk, events: 0 },
                generation,
                stats: Stats::default(),
            })),
            signal,
            maintainer,
            worker: Mutex::new(None),
            shared,
            merged,
        });
        let handle = worker::spawn(&inner, tick)
            .map_err(|e| InitError::io("cannot start the background thread", &inner.path, e))?;
        *inner.worker.lock() = Some(handle);
        inner.update_hints(&inner.state.lock());
        Ok(inner)
    }

    /// Reopens the active file after an earlier failure to open one.
    pub(super) fn reopen(&self, st: &mut State) {
        if let Ok(file) = open_append(&self.path) {
            st.disk = file.metadata().map(|m| m.len()).unwrap_or(0);
            st.file = Some(Arc::new(file));
            st.checked = Checked { len: st.disk, events: st.stats.events_written };
        }
    }

    /// Checks that the open file is still the one at the log's path, and if someone else
    /// deleted or moved it, starts a new active file there.
    ///
    /// Called under the state lock, at each rotation and by the background thread once a
    /// second: never per event. Takes the io lock (so no flush is in flight) for its
    /// whole length. `held` is the rotation lock when the caller holds it; without it, a
    /// file gone from its path is dealt with only if the lock is free now (another writer
    /// may be rotating it: then this one follows).
    pub(super) fn check_active(&self, st: &mut State, now: i64, held: Option<&Held<'_>>) -> Active {
        let io = self.quiesce(st);
        // Detached: writing on into the copy on purpose, until a new file can be opened.
        let Some(file) = st.file.clone().filter(|_| !st.detached) else {
            return Active::Unknown;
        };
        let placed = placed_events(st, io.as_deref());
        match whereabouts(&file, &self.path) {
            Ok(Whereabouts::InPlace { len }) => {
                st.checked = Checked { len, events: placed };
                Active::InPlace
            }
            Ok(gone) => {
                let taken;
                let held = match held {
                    Some(held) => held,
                    None => match self.shared.try_lock() {
                        Ok(Some(h)) => {
                            taken = h;
                            &taken
                        }
                        // Another writer is at it: look again at the next check.
                        Ok(None) | Err(_) => return Active::Unknown,
                    },
                };
                let generation = self.shared.generation();
                if generation != st.generation {
                    // Another writer rotated: not gone, followed.
                    drop(io);
                    self.follow(st, generation);
                    return Active::Followed;
                }
                self.start_again(st, io.as_deref(), file, gone, now, held)
            }
            // Cannot tell (a folder we may not read): keep writing where we are.
            Err(_) => Active::Unknown,
        }
    }

    /// Moves to the active file another writer (another process) started: its rotation,
    /// or its new file after someone deleted the old one. What this writer wrote since
    /// then went into the old file (now a copy), once. Cold: a generation change.
    #[cold]
    pub(super) fn follow(&self, st: &mut State, generation: u64) {
        let io = self.quiesce(st); // no flush in flight into the old file
        match open_append(&self.path) {
            Ok(file) => {
                st.disk = file.metadata().map_or(0, |m| m.len());
                st.file = Some(Arc::new(file));
                st.started = self.shared.started();
                st.day = self.zone.day(st.started);
                st.due_at = if self.time_trigger() {
                    self.zone.next_midnight(st.started)
                } else {
                    i64::MAX
                };
                st.retry_at = i64::MIN;
                st.detached = false;
                st.last_copy = later(st.last_copy, self.shared.last_copy());
                st.checked = Checked { len: st.disk, events: placed_events(st, io.as_deref()) };
                st.stats.followed += 1;
            }
            Err(e) => {
                // Keep writing into the old file (a copy now: nothing is lost); the next
                // rotation or check tries again.
                st.stats.rotation_errors += 1;
                st.stats.last_error = Some(format!(
                    "opening {} after another writer rotated it: {e}",
                    self.path.display()
                ));
            }
        }
        st.generation = generation;
        drop(io);
        self.update_hints(st);
    }

    /// Starts a new active file at the path after the open one was deleted or moved away.
    /// A deleted file's tail, written since it was last seen in place, is copied into the
    /// new file (in the buffered modes, its events may still have been in memory when the
    /// file was deleted): nothing written to a deleted file is lost unless that copy
    /// fails, and then it is counted. A moved file keeps what was written into it.
    fn start_again(
        &self,
        st: &mut State,
        io: Option<&Spare>,
        old: Arc<File>,
        gone: Whereabouts,
        now: i64,
        held: &Held<'_>,
    ) -> Active {
        let placed = placed_events(st, io);
        let path = self.path.display();
        // A deleted file's tail, written since it was last seen in place.
        let tail = (gone == Whereabouts::Deleted).then(|| read_whole_tail(&old, st.checked.len));
        // Windows keeps a file deleted without POSIX semantics at its name until its last
        // handle is closed: close ours (its tail is read) before starting the new one.
        #[cfg(windows)]
        let old = if gone == Whereabouts::Deleted {
            st.file = None;
            drop(old);
            None
        } else {
            Some(old)
        };
        let opened = self
            .path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| open_active(&self.path, now));
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
                    let events = placed.saturating_sub(st.checked.events);
                    st.stats.write_errors += 1;
                    st.stats.lost_events += events;
                    st.stats.events_written = st.stats.events_written.saturating_sub(events);
                }
                self.rotation_failed(
                    st,
                    now,
                    format!("{path} was deleted or moved away; starting a new one: {e}"),
                );
                return Active::Gone;
            }
        };
        let fresh = disk == 0;
        let mut note = match gone {
            Whereabouts::Deleted => {
                format!("{path} was deleted by someone else; started a new one")
            }
            _ => format!("{path} was moved away by someone else; started a new one"),
        };
        if let Some(tail) = tail {
            let read = tail.as_ref().map_or(0, |t| t.len() as u64);
            let copied = tail.and_then(|t| {
                super::mode::write_whole(&file, &t, &[])?;
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
                        let events = placed.saturating_sub(st.checked.events);
                        st.stats.write_errors += 1;
                        st.stats.lost_events += events;
                        st.stats.events_written = st.stats.events_written.saturating_sub(events);
                        st.stats.bytes_written = st.stats.bytes_written.saturating_sub(read);
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
            st.started = started;
            st.day = self.zone.day(started);
            st.due_at =
                if self.time_trigger() { self.zone.next_midnight(started) } else { i64::MAX };
        }
        st.file = Some(Arc::new(file));
        st.disk = disk;
        st.retry_at = i64::MIN;
        st.checked = Checked { len: disk, events: placed_events(st, io) };
        st.stats.reopens += 1;
        st.stats.last_error = Some(note);
        // The other writers follow to the new file.
        self.shared.set_size(disk, held);
        self.shared.set_started(st.started, held);
        st.generation = self.shared.bump(held);
        self.update_hints(st);
        Active::StartedAgain
    }
}

/// What [`Inner::check_active`] found.
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

/// Events this writer has put into its files (not counting failed writes or flushes).
/// Exact when no flush is in flight: under the state lock, with the io lock (`io`).
pub(super) fn placed_events(st: &State, io: Option<&Spare>) -> u64 {
    st.stats.events_written.saturating_sub(io.map_or(0, |io| io.lost_events))
}

/// Where the open active file is, compared with the log's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Whereabouts {
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
fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
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
fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
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
fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
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
fn open_active(path: &Path, now: i64) -> io::Result<(File, u64, i64)> {
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
fn last_copy_of_day(
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
