//! `remote verify` and `remote pull`: download a copy, decrypt it as it arrives into an
//! owner-only temporary file, check it byte for byte against its record, then run the same
//! check as `backup verify` (which reads the zip's central directory, so it needs the file
//! on disk). A pull writes it in `data/backups/` and renames it into place, never over an
//! existing file. A verify (and a pull's `--dry-run`) changes nothing in the root: it
//! writes in a private temporary folder of the system's (`TMPDIR`; `0700` on unix),
//! removed with everything in it when the check ends, whatever the outcome.

use std::{io, path::PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use super::{crypt, push::Hashing, record::Record, store::Store};
use crate::{backup::manifest::Manifest, files, verify, Ctx};

/// A copy fetched into a temporary file and checked.
pub(crate) struct Fetched {
    /// The temporary file (removed when dropped without a commit).
    pub file: files::Atomic,
    /// The result of the check `backup verify` makes.
    pub report: verify::Report<Manifest>,
    /// The private folder holding `file` when it is not in the root (removed when
    /// dropped; declared after `file`, so the file is closed first).
    _private: Option<tempfile::TempDir>,
}

/// Where a fetched copy is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dest {
    /// `data/backups/`, to be placed there (`remote pull`).
    Backups,
    /// A private temporary folder outside the root, to be checked and thrown away
    /// (`remote verify`, a pull's `--dry-run`).
    Private,
}

/// Downloads and checks the copy `rec` describes.
pub(crate) fn fetch(
    ctx: &Ctx,
    store: &Store,
    rec: &Record,
    keys: &[age::x25519::Identity],
    dest: Dest,
) -> Result<Fetched> {
    let (dir, private) = match dest {
        Dest::Backups => {
            let dir = ctx.backups_dir();
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("creating {}", ctx.show(&dir)))?;
            (dir, None)
        }
        Dest::Private => {
            let tmp = tempfile::Builder::new()
                .prefix("mhm-sidecar-verify-")
                .tempdir()
                .with_context(|| {
                    let var = if cfg!(windows) { "TMP" } else { "TMPDIR" };
                    format!(
                        "making a private temporary folder in {} to check the copy in (set \
                         {var} to a folder with room for one backup)",
                        std::env::temp_dir().display()
                    )
                })?;
            (tmp.path().to_path_buf(), Some(tmp))
        }
    };
    let target: PathBuf = dir.join(format!("{}.zip", rec.name));
    let mut file = files::Atomic::create_private(&target)
        .with_context(|| format!("creating a temporary file in {}", ctx.show(&dir)))?;
    let bar = ctx.progress.start(&format!("fetch {}", rec.name), rec.stored_size);
    let mut stored = Hashing::new(crate::report::BarReader {
        inner: store.reader(&rec.object)?,
        bar: bar.as_ref(),
    });
    let mut out = HashingWriter { inner: file.file(), sha: Sha256::new(), size: 0 };
    let copied: Result<()> = (|| {
        if rec.encrypted {
            let mut plain = crypt::decrypt(&mut stored, keys)?;
            io::copy(&mut plain, &mut out).map_err(|e| damaged(&rec.object, e))?;
        } else {
            io::copy(&mut stored, &mut out).map_err(|e| damaged(&rec.object, e))?;
        }
        // Whatever follows the end of the age stream is part of the object too.
        io::copy(&mut stored, &mut io::sink()).map_err(|e| damaged(&rec.object, e))?;
        Ok(())
    })();
    bar.finish();
    copied?;
    let (plain_size, plain_sha) = (out.size, files::hex(&out.sha.finalize()));
    if stored.size != rec.stored_size || stored.hex() != rec.stored_sha256 {
        bail!(
            "the copy in the store was changed: {} holds {} bytes with another SHA-256 than the {} bytes pushed",
            rec.object,
            stored.size,
            rec.stored_size
        );
    }
    if plain_size != rec.plain_size || plain_sha != rec.plain_sha256 {
        bail!("{} decrypts to other bytes than the backup that was pushed", rec.object);
    }
    file.file().sync_all().with_context(|| format!("syncing {}", ctx.show(file.temp())))?;
    let mut report = crate::backup::verify::backup(file.temp());
    // Name the backup, not the temporary file, in what the check found.
    // (Problems with the file as a whole name no path.)
    for p in &mut report.problems {
        if p.path.is_none() {
            p.path = Some(format!("{}.zip", rec.name));
        }
    }
    Ok(Fetched { file, report, _private: private })
}

fn damaged(object: &str, e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::InvalidData {
        anyhow!("the copy in the store was changed or is damaged: {object} does not decrypt ({e})")
    } else {
        anyhow!("downloading {object}: {e}")
    }
}

struct HashingWriter<'a> {
    inner: &'a mut std::fs::File,
    sha: Sha256,
    size: u64,
}

impl io::Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
