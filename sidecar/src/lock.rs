//! The exclusive OS lock on `data/.sidecar.lock`: one changing run at a time. The lock is
//! released by the OS when the process dies, so a killed run never blocks the next one.
//!
//! The holder writes its pid into the file, and a second run reads it to name the holder.
//! On unix the lock is `flock`, which is advisory: the file stays readable. On Windows a
//! lock is mandatory for the bytes it covers, so the lock is taken on one byte far beyond
//! the pid (as SQLite does), leaving the pid readable.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
};

use anyhow::{Context, Result};

use crate::{error::LockedError, Ctx};

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Takes the lock on `<root>/data/.sidecar.lock`, writing our pid into it; a held lock is
/// a [`LockedError`] naming the holder's pid. Messages name the file `data/.sidecar.lock`.
pub fn acquire(ctx: &Ctx) -> Result<Lock> {
    let data_dir = ctx.data_dir();
    fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", ctx.show(&data_dir)))?;
    let path = data_dir.join(".sidecar.lock");
    // Never through a link planted at its name (a root's cron would truncate whatever file
    // it points to), and owner-only: no other user can hold it.
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    let mut file = mhm_fsx::open_no_follow(&mut opts, &path, true)
        .with_context(|| format!("opening the lock file {}", ctx.show(&path)))?;
    match try_lock(&file) {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
            return Err(LockedError { path: ctx.show(&path), pid }.into());
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", ctx.show(&path)));
        }
    }
    let write_pid = (|| {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    })();
    write_pid.with_context(|| format!("writing our pid into {}", ctx.show(&path)))?;
    Ok(Lock { _file: file })
}

/// `File::try_lock` where a lock leaves the file readable (unix).
#[cfg(not(windows))]
fn try_lock(file: &File) -> Result<(), TryLockError> {
    file.try_lock()
}

/// Where the Windows lock lies: one byte at 1 TiB, far beyond any pid.
#[cfg(windows)]
const LOCK_OFFSET: u64 = 1 << 40;

/// An exclusive lock on one byte at [`LOCK_OFFSET`] (Windows locks the bytes it covers
/// against reading too, so the pid at the start stays unlocked).
#[cfg(windows)]
fn try_lock(file: &File) -> Result<(), TryLockError> {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::{
        Foundation::ERROR_LOCK_VIOLATION,
        Storage::FileSystem::{LockFileEx, LOCKFILE_EXCLUSIVE_LOCK, LOCKFILE_FAIL_IMMEDIATELY},
        System::IO::OVERLAPPED,
    };
    // SAFETY: OVERLAPPED is plain data, valid all zero.
    let mut at: OVERLAPPED = unsafe { std::mem::zeroed() };
    at.Anonymous.Anonymous.Offset = LOCK_OFFSET as u32;
    at.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
    let flags = LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY;
    // SAFETY: the handle is open for the duration of the call (the file is borrowed), and
    // `at` outlives it; the handle is synchronous, so the call completes before returning.
    let ok = unsafe { LockFileEx(file.as_raw_handle(), flags, 0, 1, 0, &mut at) };
    if ok != 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(ERROR_LOCK_VIOLATION as i32) {
        Err(TryLockError::WouldBlock)
    } else {
        Err(TryLockError::Error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder_and_the_lock_file_relative_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = Ctx::new(dir.path(), chrono::Utc::now()).unwrap();
        let first = acquire(&ctx).unwrap();
        let err = acquire(&ctx).err().unwrap();
        let locked = err.downcast_ref::<LockedError>().unwrap();
        assert_eq!(locked.pid, Some(std::process::id()));
        assert_eq!(locked.path, "data/.sidecar.lock");
        assert_eq!(
            err.to_string(),
            format!(
                "another mhm-sidecar run (pid {}) holds the lock on data/.sidecar.lock; \
                 try again when it is done",
                std::process::id()
            )
        );
        drop(first);
        assert!(acquire(&ctx).is_ok());
    }
}
