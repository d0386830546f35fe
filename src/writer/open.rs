//! Opening a log: the per-log OS lock, resuming an existing active file (its size, its
//! age, a torn last line), the copy numbering of the day, and reopening after a failure.

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
    mode::Mode,
    worker::{self, Maintainer, Signal},
    Inner, Padded, State, Stats,
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

        let file = open_append(&path)
            .map_err(|e| InitError::io("cannot open the log for appending", &path, e))?;
        let meta = file
            .metadata()
            .map_err(|e| InitError::io("cannot read the log's metadata", &path, e))?;
        let mut disk = meta.len();
        // A process killed inside a write(2) can leave a partial last line (the kernel
        // checks for a fatal signal between pages). End it, so the next event starts on a
        // line of its own; the fragment itself was never acknowledged to anyone.
        if disk > 0 && last_byte(&path).is_some_and(|b| b != b'\n') {
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
        }
    }
}

fn last_byte(path: &Path) -> Option<u8> {
    use std::io::{Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b).ok()?;
    Some(b[0])
}

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
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
