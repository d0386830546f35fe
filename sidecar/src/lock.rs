//! The exclusive OS lock on `data/.sidecar.lock`: one changing run at a time. The lock is
//! released by the OS when the process dies, so a killed run never blocks the next one.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{Read, Seek, SeekFrom, Write},
    path::Path,
};

use anyhow::{Context, Result};

use crate::error::LockedError;

/// Holds the lock until dropped.
pub struct Lock {
    _file: File,
}

/// Takes the lock on `<data>/.sidecar.lock`, writing our pid into it; a held lock is a
/// [`LockedError`] naming the holder's pid.
pub fn acquire(data_dir: &Path) -> Result<Lock> {
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let path = data_dir.join(".sidecar.lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
            return Err(LockedError { path, pid }.into());
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    let write_pid = (|| {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    })();
    write_pid.with_context(|| format!("writing our pid into {}", path.display()))?;
    Ok(Lock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).err().unwrap();
        let locked = err.downcast_ref::<LockedError>().unwrap();
        assert_eq!(locked.pid, Some(std::process::id()));
        drop(first);
        assert!(acquire(dir.path()).is_ok());
    }
}
