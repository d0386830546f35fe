//! Opening a log: the per-log OS lock, resuming an existing active file (its size, its
//! age, a torn last line), the copy numbering of the day, reopening after a failure, and
//! starting again when someone else deleted or moved the active file.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use chrono::NaiveDate;
use parking_lot::Mutex;

use super::{
    mode::{Mode, Spare},
    worker::{self, Maintainer, Signal},
    Checked, Inner, Padded, State, Stats,
};
use crate::{
    clock::{duration_to_nanos, Clock, Zone},
    error::InitError,
    policy::{RotateAt, Settings},
    retention::{self, Policy},
};

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
        let lock = take_lock(&dir, &log_name)?;
        let backup_dir = settings.backup_dir_for(&path);
        let archive_dir = settings.archive_dir_for(&path);
        let zone = settings.zone();
        let now = clock.now_nanos();

        let (file, disk, started) = open_active(&path, now)
            .map_err(|e| InitError::io("cannot open the log for appending", &path, e))?;
        let day = zone.day(started);
        let time_trigger = settings.get_rotate_at() != RotateAt::Never;
        let due_at = if time_trigger { zone.next_midnight(started) } else { i64::MAX };
        let last_copy = last_copy_of_day(&log_name, day, &backup_dir, &archive_dir, zone);
        let mode = Mode::new(settings.get_write_mode(), settings.get_buffer_capacity());
        let buf_cap = mode.buffer().map_or(0, |b| b.cap);
        let tick = if mode.buffer().is_some() {
            settings.get_flush_interval()
        } else {
            Duration::from_secs(1)
        };

        let signal = Arc::new(Signal::default());
        let maintainer = Arc::new(Maintainer {
            log_name: log_name.clone(),
            backup_dir: backup_dir.clone(),
            archive_dir: archive_dir.clone(),
            policy: Policy::from_settings(&settings),
            zone,
            clock: clock.clone(),
        });
        let inner = Arc::new(Inner {
            path,
            log_name,
            backup_dir,
            archive_dir,
            zone,
            clock,
            rotate: !settings.get_rotation_disabled(),
            time_trigger,
            max_bytes: settings.get_max_bytes(),
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
                day,
                due_at,
                retry_at: i64::MIN,
                detached: false,
                last_copy,
                checked: Checked { len: disk, events: 0 },
                stats: Stats::default(),
            })),
            signal,
            maintainer,
            worker: Mutex::new(None),
            _lock: lock,
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
    /// whole length.
    pub(super) fn check_active(&self, st: &mut State, now: i64) -> Active {
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
            Ok(gone) => self.start_again(st, io.as_deref(), &file, gone, now, placed),
            // Cannot tell (a folder we may not read): keep writing where we are.
            Err(_) => Active::Unknown,
        }
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
        old: &File,
        gone: Whereabouts,
        now: i64,
        placed: u64,
    ) -> Active {
        let path = self.path.display();
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
                // rotations after `RETRY_AFTER`.
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
        if gone == Whereabouts::Deleted {
            let end = old.metadata().map_or(st.checked.len, |m| m.len());
            let tail = end.saturating_sub(st.checked.len);
            if tail > 0 {
                match copy_tail(old, st.checked.len, &file) {
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
                        st.stats.bytes_written = st.stats.bytes_written.saturating_sub(tail);
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
            st.due_at = if self.time_trigger { self.zone.next_midnight(started) } else { i64::MAX };
        }
        st.file = Some(Arc::new(file));
        st.disk = disk;
        st.retry_at = i64::MIN;
        st.checked = Checked { len: disk, events: placed_events(st, io) };
        st.stats.reopens += 1;
        st.stats.last_error = Some(note);
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
    #[cfg_attr(not(unix), allow(dead_code))] // the fallback cannot tell
    Moved,
    /// Unlinked: what is written to it now is lost when it is closed.
    Deleted,
}

/// Compares the open file's identity with the path's: `(dev, ino)`, and the link count to
/// tell a deleted file from a moved one.
#[cfg(unix)]
fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(at_path) if (at_path.dev(), at_path.ino()) == (open.dev(), open.ino()) => {
            Ok(Whereabouts::InPlace { len: open.len() })
        }
        Ok(_) | Err(_) if open.nlink() == 0 => Ok(Whereabouts::Deleted),
        Ok(_) => Ok(Whereabouts::Moved),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Whereabouts::Moved),
        Err(e) => Err(e),
    }
}

/// The portable fallback, without a file identity on stable Rust: a missing path means the
/// file was deleted (a moved one then has its last second of lines in both places); a
/// file put at the path in its place goes unnoticed.
#[cfg(not(unix))]
fn whereabouts(file: &File, path: &Path) -> io::Result<Whereabouts> {
    let open = file.metadata()?;
    match fs::metadata(path) {
        Ok(_) => Ok(Whereabouts::InPlace { len: open.len() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Whereabouts::Deleted),
        Err(e) => Err(e),
    }
}

/// Appends `from`'s bytes after `offset` to `to`.
fn copy_tail(from: &File, offset: u64, to: &File) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut from = from;
    from.seek(SeekFrom::Start(offset))?;
    io::copy(&mut from, &mut { to })
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
        let mut f = &file;
        if f.write_all(b"\n").is_ok() {
            disk += 1;
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
    OpenOptions::new().read(true).create(true).append(true).open(path)
}

/// Takes the exclusive lock that makes this process the log's only writer.
fn take_lock(dir: &Path, log_name: &str) -> Result<File, InitError> {
    let lock_path = dir.join(format!(".{log_name}.lock"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| InitError::io("cannot open the log's lock file", &lock_path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another writer".to_string()
            } else {
                format!("process {holder}")
            };
            return Err(InitError::msg(
                format!("{log_name} is already being written by {who}; a log has one writer (give each process its own file)"),
                lock_path,
            ));
        }
        Err(fs::TryLockError::Error(e)) => {
            return Err(InitError::io("cannot lock the log", lock_path, e))
        }
    }
    let _ =
        file.set_len(0).and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
    Ok(file)
}

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
