//! The file operations that carry a [`plan`](super::plan) out: move, gzip (temp, sync,
//! verify, rename), delete; each safe to repeat after a crash or beside another process.

use std::{
    fs::{self, File},
    io::{self, BufReader, Read, Write},
    path::{Path, PathBuf},
};

use flate2::{read::MultiGzDecoder, write::GzEncoder, Compression};
use mhm_fsx::{move_file, sync_dir, Atomic};

use super::plan::Action;
use crate::naming::CopyName;

/// What [`execute`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done; the path the copy now has (or had, for a delete).
    Done(PathBuf),
    /// A `.gz` identical to the source was already in place (a crash between rename and
    /// removal, or another process compressing the same copy meanwhile): the source was
    /// removed.
    AlreadyDone(PathBuf),
    /// The source was gone when the step ran: another process (the writer beside the
    /// sidecar) moved, compressed or deleted it meanwhile. Nothing was done, nothing lost.
    Gone(PathBuf),
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Removes `path`; already gone is fine (another process finished with it).
fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if !not_found(&e) => Err(e),
        _ => {
            sync_dir(path);
            Ok(())
        }
    }
}

/// Carries out one step. `progress` is told how many source bytes were processed.
pub fn execute(action: &Action, progress: &mut dyn FnMut(u64)) -> io::Result<Outcome> {
    match action {
        Action::Delete { path } => match fs::remove_file(path) {
            Ok(()) => Ok(Outcome::Done(path.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Outcome::AlreadyDone(path.clone())),
            Err(e) => Err(e),
        },
        Action::Move { from, to } => {
            if to.exists() {
                let source = match checksum_plain(from) {
                    Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.clone())),
                    other => other?,
                };
                if checksum_plain(to).ok() == Some(source) {
                    // An earlier move got as far as a copy in place (across file systems).
                    remove_if_there(from)?;
                    return Ok(Outcome::AlreadyDone(to.clone()));
                }
            } else {
                // Only opened, not read: the usual move is a rename, and reading the whole
                // copy for a checksum nobody compares cost the background thread as much
                // reading as the writers wrote.
                match File::open(from) {
                    Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.clone())),
                    other => drop(other?),
                }
            }
            let to = free_name(to);
            match move_file(from, &to) {
                Err(e) if not_found(&e) && !from.exists() => Ok(Outcome::Gone(from.clone())),
                Err(e) => Err(e),
                Ok(()) => Ok(Outcome::Done(to)),
            }
        }
        Action::Gzip { from, to } => gzip_file(from, to, progress),
    }
}

/// The first name at or after `to` (same date, next numbers) that is taken neither
/// plain nor as `.gz` in its folder. Names that do not parse as copies are returned as is.
pub fn free_name(to: &Path) -> PathBuf {
    let (Some(dir), Some(name)) =
        (to.parent(), to.file_name().and_then(|n| n.to_str()).and_then(CopyName::parse))
    else {
        return to.to_path_buf();
    };
    let candidate = |n: Option<u64>| {
        let mut c = name.clone();
        c.seq = c.seq.saturating_add(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)));
        c
    };
    let taken = |c: &CopyName| {
        dir.join(c.plain().to_string()).exists()
            || dir.join(c.clone().gz(true).to_string()).exists()
    };
    dir.join(mhm_fsx::first_free(candidate, taken).to_string())
}

/// Compresses `from` into the `.gz` file `to` (temp, sync, verify, rename), then removes
/// `from`. When `to` exists already (before, or by the time the `.gz` is renamed into
/// place: another process compressing the same copy): if it holds exactly `from`'s bytes
/// the source is removed; else the next free copy number is used, so nothing is ever
/// overwritten. A source gone before it could be read (another process moved it) is
/// [`Outcome::Gone`]; one gone by the time it is removed is no loss: its `.gz` is whole.
pub fn gzip_file(from: &Path, to: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<Outcome> {
    let sum = match checksum_plain(from) {
        Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.to_path_buf())),
        other => other?,
    };
    let identical = |gz: &Path| matches!(checksum_gz(gz), Ok(s) if s == sum);
    let mut to = to.to_path_buf();
    if to.exists() {
        if identical(&to) {
            remove_if_there(from)?;
            return Ok(Outcome::AlreadyDone(to));
        }
        to = free_name(&to);
    }
    if let Some(dir) = to.parent() {
        fs::create_dir_all(dir)?;
    }
    let mut out = Atomic::create(&to)?;
    let src = match File::open(from) {
        Err(e) if not_found(&e) => return Ok(Outcome::Gone(from.to_path_buf())),
        other => other?,
    };
    // A `.gz` is never readable by more users than its source was.
    out.set_permissions_of(&src.metadata()?)?;
    let mut src = BufReader::with_capacity(1 << 16, src);
    let mut enc = GzEncoder::new(&mut out, Compression::default());
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let len = mhm_fsx::read_chunks(&mut src, &mut buf, |chunk| {
        hasher.update(chunk);
        progress(chunk.len() as u64);
        enc.write_all(chunk)
    })?;
    enc.finish()?;
    // The source must not have changed while we read it, and the .gz must decompress to it.
    if (len, hasher.finalize()) != sum {
        return Err(io::Error::other(format!(
            "{} changed while it was being compressed",
            from.display()
        )));
    }
    out.file().sync_all()?;
    let written = checksum_gz(out.temp())?;
    if written != sum {
        return Err(io::Error::other(format!(
            "verification of {} failed: it does not decompress to {}",
            out.temp().display(),
            from.display()
        )));
    }
    // Another process may have put a `.gz` at `to` meanwhile: the same copy is done; a
    // different one keeps its name and ours takes the next free number.
    loop {
        match out.commit_new_or_return()? {
            None => {
                remove_if_there(from)?;
                return Ok(Outcome::Done(to));
            }
            Some(back) if identical(back.path()) => {
                drop(back); // our temporary file goes
                remove_if_there(from)?;
                return Ok(Outcome::AlreadyDone(to));
            }
            Some(mut back) => {
                to = free_name(&to);
                back.set_path(&to);
                out = back;
            }
        }
    }
}

/// Length and CRC-32 of a plain file.
pub fn checksum_plain(path: &Path) -> io::Result<(u64, u32)> {
    checksum_reader(File::open(path)?)
}

/// Length and CRC-32 of a gzip file's content (all members); an error when it is corrupt.
pub fn checksum_gz(path: &Path) -> io::Result<(u64, u32)> {
    checksum_reader(MultiGzDecoder::new(BufReader::with_capacity(1 << 16, File::open(path)?)))
}

fn checksum_reader(mut r: impl Read) -> io::Result<(u64, u32)> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let len = mhm_fsx::read_chunks(&mut r, &mut buf, |chunk| {
        hasher.update(chunk);
        Ok(())
    })?;
    Ok((len, hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_verified_and_recovers_from_a_crash_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("app.log.2026-01-01");
        fs::write(&src, b"line one\nline two\n").unwrap();
        let to = dir.path().join("archive/app.log.2026-01-01.gz");
        // Simulate the crash: the .gz is whole and in place, the source still there.
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let mut enc = GzEncoder::new(File::create(&to).unwrap(), Compression::fast());
        enc.write_all(b"line one\nline two\n").unwrap();
        enc.finish().unwrap();
        assert_eq!(gzip_file(&src, &to, &mut |_| {}).unwrap(), Outcome::AlreadyDone(to.clone()));
        assert!(!src.exists());
        // A different file under the target name is never overwritten: next number.
        fs::write(&src, b"other\n").unwrap();
        let out = gzip_file(&src, &to, &mut |_| {}).unwrap();
        assert_eq!(out, Outcome::Done(dir.path().join("archive/app.log.2026-01-01.1.gz")));
        assert_eq!(checksum_gz(&to).unwrap().0, 18);
        let mut text = String::new();
        MultiGzDecoder::new(
            File::open(dir.path().join("archive/app.log.2026-01-01.1.gz")).unwrap(),
        )
        .read_to_string(&mut text)
        .unwrap();
        assert_eq!(text, "other\n");
        assert!(fs::read_dir(dir.path().join("archive")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp-")));
    }

    #[test]
    fn a_source_gone_meanwhile_is_no_failure() {
        // regression (issue 8): `logs archive` beside the writer failed with "No such file
        // or directory" for copies the writer had moved since they were listed.
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("backups/app.log.2026-01-01");
        let to = dir.path().join("archive/app.log.2026-01-01");
        let gz = dir.path().join("archive/app.log.2026-01-01.gz");
        let gone = Outcome::Gone(from.clone());
        let mut none = |_| {};
        for action in [
            Action::Move { from: from.clone(), to: to.clone() },
            Action::Gzip { from: from.clone(), to: gz.clone() },
        ] {
            assert_eq!(execute(&action, &mut none).unwrap(), gone, "{action:?}");
        }
        assert!(!dir.path().join("archive").exists());
    }

    #[test]
    #[cfg(unix)] // removing a file open for reading
    fn a_gz_that_appears_while_compressing_is_compared_not_a_failure() {
        // regression (issue 8): "...gz appeared while it was written" when the writer
        // compressed the same copy meanwhile.
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("app.log.2026-01-01");
        let to = dir.path().join("archive/app.log.2026-01-01.gz");
        let text = b"line one\nline two\n";
        let gz_of = |bytes: &[u8]| {
            let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
            enc.write_all(bytes).unwrap();
            enc.finish().unwrap()
        };
        // The same copy, compressed and its source removed by the writer meanwhile.
        fs::write(&from, text).unwrap();
        let mut writer = |_| {
            if !to.exists() {
                fs::create_dir_all(to.parent().unwrap()).unwrap();
                fs::write(&to, gz_of(text)).unwrap();
                fs::remove_file(&from).unwrap();
            }
        };
        assert_eq!(gzip_file(&from, &to, &mut writer).unwrap(), Outcome::AlreadyDone(to.clone()));
        assert_eq!(checksum_gz(&to).unwrap().0, text.len() as u64);
        // Another copy under that name meanwhile: kept, ours takes the next number.
        fs::remove_file(&to).unwrap();
        fs::write(&from, text).unwrap();
        let mut other = |_| {
            if !to.exists() {
                fs::write(&to, gz_of(b"another copy\n")).unwrap();
            }
        };
        let next = dir.path().join("archive/app.log.2026-01-01.1.gz");
        assert_eq!(gzip_file(&from, &to, &mut other).unwrap(), Outcome::Done(next.clone()));
        assert_eq!(checksum_gz(&to).unwrap().0, 13);
        assert_eq!(checksum_gz(&next).unwrap().0, text.len() as u64);
        assert!(!from.exists());
        let names: Vec<String> = fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp-")), "{names:?}");
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn stale_temps_of_dead_writers_go_live_ones_stay() {
        use mhm_fsx::remove_stale_temps;
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let mine = dir.path().join(format!(".tmp-{}-app.log.gz", std::process::id()));
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let dead = dir.path().join(".tmp-4194304-app.log.gz");
        let foreign = dir.path().join("app.log.2026-01-01");
        for p in [&mine, &dead, &foreign] {
            fs::write(p, "x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path(), Duration::from_secs(3600)), vec![dead.clone()]);
        assert!(mine.exists() && foreign.exists() && !dead.exists());
        // Past the age limit even a live writer's temp goes.
        assert_eq!(remove_stale_temps(dir.path(), Duration::ZERO), vec![mine]);
    }
}
