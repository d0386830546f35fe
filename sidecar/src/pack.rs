//! Writing sources into a zip: each file streamed through SHA-256 into a deflated entry
//! (ZIP64 when large, links as links), on every core when there is enough data, with
//! memory and temporary disk use bounded however large the data. Backups and snapshots
//! are both written here; what surrounds the zip (temp name, verify, rename) is theirs.

use std::{
    fs::{self, File},
    io::{self, BufWriter, Seek, SeekFrom, Write},
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::{write::SimpleFileOptions, CompressionMethod, ZipWriter};

use crate::{collect::Source, files, paths, report::Bar};

/// One stored file, as manifests list it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    /// Its path in the archive.
    pub path: String,
    /// Its uncompressed size (for a link: the length of its target).
    pub size: u64,
    /// The SHA-256 of its content (for a link: of its target), lowercase hex.
    pub sha256: String,
    /// For a symlink: where it points (relative, inside its part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// What was stored: an entry per file, and the files gone since they were listed.
#[derive(Debug, Default)]
pub(crate) struct Stored {
    /// The entries written, in order.
    pub files: Vec<FileEntry>,
    /// Listed files that were gone when their turn came (the service removed them, or
    /// replaced them by a rename that had not landed yet): skipped, the rest stored.
    pub vanished: Vec<PathBuf>,
}

impl Stored {
    /// Adds what [`store`] returned for `src`.
    fn push(&mut self, src: &Source, stored: Option<FileEntry>) {
        match stored {
            Some(entry) => self.files.push(entry),
            None => self.vanished.push(src.path.clone()),
        }
    }
}

/// How a file gone since it was listed is reported.
pub(crate) const GONE: &str = "gone since it was listed (removed or replaced meanwhile), skipped";

/// Opens a listed source for reading: `None` when it is gone since it was listed.
pub(crate) fn open_source(root: &Path, src: &Source) -> Result<Option<File>> {
    match File::open(&src.path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("opening {}", paths::show(root, &src.path))),
    }
}

/// A zip being written to a file. Dropped unfinished (an error on the way), it writes
/// nothing more and prints nothing: the `zip` crate's own drop finishes the archive and
/// prints `ZipWriter drop failed: ...` on stderr when that fails (a full disk), which
/// would land in front of the sidecar's own error line. The file is the caller's to remove.
pub(crate) struct Zip {
    writer: Option<ZipWriter<Sink>>,
    discard: Arc<AtomicBool>,
    /// The MHM root, for naming files in messages ([`paths::show`]).
    root: PathBuf,
}

impl Zip {
    /// `path` as messages show it (relative to the root when under it).
    fn show(&self, path: &Path) -> String {
        paths::show(&self.root, path)
    }
}

impl Deref for Zip {
    type Target = ZipWriter<Sink>;

    fn deref(&self) -> &Self::Target {
        self.writer.as_ref().expect("present until finished")
    }
}

impl DerefMut for Zip {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.writer.as_mut().expect("present until finished")
    }
}

impl Drop for Zip {
    fn drop(&mut self) {
        // Whatever the zip crate's drop writes now goes nowhere (and cannot fail).
        self.discard.store(true, Ordering::Relaxed);
    }
}

/// The file under a [`Zip`]: buffered, and after an I/O error or once the zip is dropped
/// unfinished, a sink that keeps count of positions so the `zip` crate's last writes (in
/// its drop) succeed without touching the file.
pub(crate) struct Sink {
    inner: BufWriter<File>,
    discard: Arc<AtomicBool>,
    failed: bool,
    pos: u64,
    len: u64,
}

impl Sink {
    fn off(&self) -> bool {
        self.failed || self.discard.load(Ordering::Relaxed)
    }

    /// Notes an I/O error: from now on nothing reaches the file.
    fn check<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = if self.off() {
            buf.len()
        } else {
            let r = self.inner.write(buf);
            self.check(r)?
        };
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.off() {
            return Ok(());
        }
        let r = self.inner.flush();
        self.check(r)
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        if !self.off() {
            let r = self.inner.seek(to);
            self.pos = self.check(r)?;
            if let SeekFrom::End(d) = to {
                self.len = self.pos.checked_add_signed(-d).unwrap_or(self.pos);
            }
            self.len = self.len.max(self.pos);
            return Ok(self.pos);
        }
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

/// Starts a zip in the new file `path` (owner-only: backups hold `.env`); messages name
/// files relative to the MHM `root` where they lie under it.
pub(crate) fn create(root: &Path, path: &Path) -> Result<Zip> {
    let file = create_private(root, path)?;
    let discard = Arc::new(AtomicBool::new(false));
    let sink = Sink {
        inner: BufWriter::with_capacity(1 << 16, file),
        discard: discard.clone(),
        failed: false,
        pos: 0,
        len: 0,
    };
    Ok(Zip { writer: Some(ZipWriter::new(sink)), discard, root: root.to_path_buf() })
}

/// Writes every source into `zip`, in order, on several threads when there is enough
/// data; `tmp` (the zip's own path) names the shards written beside it.
pub(crate) fn write_all(
    zip: &mut Zip,
    tmp: &Path,
    sources: &[Source],
    bar: &dyn Bar,
) -> Result<Stored> {
    let total: u64 = sources.iter().map(|s| s.size).sum();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    if workers > 1 && total >= PARALLEL_FROM && sources.len() > 1 {
        store_parallel(zip, tmp, sources, workers, bar)
    } else {
        let mut buf = vec![0u8; 1 << 16];
        let mut stored = Stored::default();
        for src in sources {
            let entry = store(zip, src, &mut buf, bar)?;
            stored.push(src, entry);
        }
        Ok(stored)
    }
}

/// Writes `value` as the pretty JSON entry `name` (the manifest, last).
pub(crate) fn write_json(zip: &mut Zip, name: &str, value: &impl Serialize) -> Result<()> {
    zip.start_file(name, base_options()).with_context(|| format!("starting {name}"))?;
    serde_json::to_writer_pretty(&mut **zip, value).with_context(|| format!("writing {name}"))
}

/// Below this much data one thread does it all: sharding would cost more than it saves.
const PARALLEL_FROM: u64 = 4 << 20;

/// Entries at or above this size are written with ZIP64 headers (a file may grow while
/// it is read; the margin keeps a file just under 4 GiB safe).
const ZIP64_FROM: u64 = 0xFFFF_FFFF - (64 << 20);

/// Deflate at level 6, owner-only permissions: how every entry is stored.
pub(crate) fn base_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(6))
        .unix_permissions(0o600)
}

/// Stores one source in `zip`, streaming it through SHA-256; returns its manifest entry,
/// or `None` when the file is gone since it was listed (nothing written then).
pub(crate) fn store(
    zip: &mut Zip,
    src: &Source,
    buf: &mut [u8],
    bar: &dyn Bar,
) -> Result<Option<FileEntry>> {
    let base = base_options();
    if let Some(target) = &src.link {
        zip.add_symlink(src.name.as_str(), target.as_str(), base)
            .with_context(|| format!("storing link {}", zip.show(&src.path)))?;
        return Ok(Some(FileEntry {
            path: src.name.clone(),
            size: target.len() as u64,
            sha256: files::sha256_hex(target.as_bytes()),
            link: Some(target.clone()),
        }));
    }
    let Some(mut input) = open_source(&zip.root, src)? else { return Ok(None) };
    let meta = input.metadata().ok();
    let size_now = meta.as_ref().map(|m| m.len()).unwrap_or(src.size);
    let mut opts = base.large_file(size_now.max(src.size) >= ZIP64_FROM);
    // The file's own mode bits are recorded, and restore gives them back.
    #[cfg(unix)]
    if let Some(m) = &meta {
        use std::os::unix::fs::PermissionsExt;
        opts = opts.unix_permissions(m.permissions().mode() & 0o777);
    }
    if let Some(t) = meta.and_then(|m| m.modified().ok()).and_then(zip_time) {
        opts = opts.last_modified_time(t);
    }
    zip.start_file(src.name.as_str(), opts)
        .with_context(|| format!("starting entry {}", src.name))?;
    let mut hasher = Sha256::new();
    let size = files::read_chunks(&mut input, buf, |chunk| {
        hasher.update(chunk);
        bar.inc(chunk.len() as u64);
        zip.write_all(chunk)
    })
    .with_context(|| format!("storing {} in the archive", zip.show(&src.path)))?;
    Ok(Some(FileEntry {
        path: src.name.clone(),
        size,
        sha256: files::hex(&hasher.finalize()),
        link: None,
    }))
}

/// Finishes a zip and syncs its file.
pub(crate) fn finish(mut zip: Zip, path: &Path) -> Result<()> {
    let writer = zip.writer.take().expect("present until finished");
    let sink = writer.finish().with_context(|| format!("finishing {}", zip.show(path)))?;
    if sink.off() {
        anyhow::bail!("writing {}: an earlier write failed", zip.show(path));
    }
    let file = sink
        .inner
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", zip.show(path)))?;
    file.sync_all().with_context(|| format!("syncing {}", zip.show(path)))
}

/// Whether a source can be compressed in a shard and raw-copied: zip's raw copy loses the
/// link attribute, and writes a zeroed ZIP64 size for entries over 4 GiB (Info-ZIP then
/// reads them as empty), so links and huge files are stored by the merging thread.
fn shardable(src: &Source) -> bool {
    src.link.is_none() && src.size < ZIP64_FROM
}

/// Compresses the sources on `workers` threads and writes them into `zip` in order.
///
/// The sources are cut into chunks of consecutive files (at most [`CHUNK_FILES`] files or
/// [`CHUNK_BYTES`] bytes). Threads take chunks one at a time and compress each into its own
/// small zip beside `tmp`; this thread copies finished chunks, in order, into `zip` without
/// recompressing (a raw copy), then deletes them. Threads stay at most [`WINDOW`] chunks
/// ahead, so temporary disk use and memory stay bounded however large the data.
fn store_parallel(
    zip: &mut Zip,
    tmp: &Path,
    sources: &[Source],
    workers: usize,
    bar: &dyn Bar,
) -> Result<Stored> {
    use std::sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        mpsc, Condvar, Mutex,
    };
    let chunks = chunk(sources);
    let root = zip.root.clone();
    let chunk_path = |c: usize| {
        let mut s = tmp.as_os_str().to_owned();
        s.push(format!(".part{c}"));
        PathBuf::from(s)
    };
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let merged = (Mutex::new(0usize), Condvar::new());
    // Per chunk, what each of its shardable sources became (`None`: gone meanwhile).
    let (tx, rx) = mpsc::channel::<(usize, Result<Vec<Option<FileEntry>>>)>();
    let window = WINDOW.max(workers);
    let result = std::thread::scope(|scope| -> Result<Stored> {
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, failed, merged, chunks, root) = (&next, &failed, &merged, &chunks, &root);
            scope.spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let c = next.fetch_add(1, Ordering::SeqCst);
                    let Some(range) = chunks.get(c) else { break };
                    {
                        let mut m = merged.0.lock().unwrap_or_else(|e| e.into_inner());
                        while c >= *m + window && !failed.load(Ordering::SeqCst) {
                            m = merged.1.wait(m).unwrap_or_else(|e| e.into_inner());
                        }
                    }
                    if failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let path = chunk_path(c);
                    let mut run = || -> Result<Vec<Option<FileEntry>>> {
                        let mut part = create(root, &path)?;
                        let mut done = Vec::new();
                        for src in sources[range.clone()].iter().filter(|s| shardable(s)) {
                            done.push(store(&mut part, src, &mut buf, bar)?);
                        }
                        finish(part, &path)?;
                        Ok(done)
                    };
                    let r = run();
                    let stop = r.is_err();
                    let _ = tx.send((c, r));
                    if stop {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut merge = || -> Result<Stored> {
            let mut stored =
                Stored { files: Vec::with_capacity(sources.len()), ..Stored::default() };
            let mut pending = std::collections::BTreeMap::new();
            let mut buf = vec![0u8; 1 << 16];
            for c in 0..chunks.len() {
                let entries = loop {
                    if let Some(e) = pending.remove(&c) {
                        break e;
                    }
                    let (k, r) =
                        rx.recv().map_err(|_| anyhow::anyhow!("a compression thread stopped"))?;
                    pending.insert(k, r?);
                };
                let path = chunk_path(c);
                let show = |p: &Path| paths::show(&root, p);
                let f = File::open(&path).with_context(|| format!("opening {}", show(&path)))?;
                let mut part = zip::ZipArchive::new(io::BufReader::with_capacity(1 << 16, f))
                    .with_context(|| format!("reading {}", show(&path)))?;
                let mut entries = entries.into_iter();
                let mut j = 0;
                for src in &sources[chunks[c].clone()] {
                    if !shardable(src) {
                        let entry = store(zip, src, &mut buf, bar)?;
                        stored.push(src, entry);
                        continue;
                    }
                    let entry = entries
                        .next()
                        .ok_or_else(|| anyhow::anyhow!("{} was not compressed", show(&src.path)))?;
                    let Some(entry) = entry else {
                        stored.vanished.push(src.path.clone());
                        continue;
                    };
                    let raw =
                        part.by_index_raw(j).with_context(|| format!("reading {}", show(&path)))?;
                    zip.raw_copy_file(raw)
                        .with_context(|| format!("copying {} into the backup", entry.path))?;
                    stored.files.push(entry);
                    j += 1;
                }
                drop(part);
                let _ = fs::remove_file(&path);
                *merged.0.lock().unwrap_or_else(|e| e.into_inner()) = c + 1;
                merged.1.notify_all();
            }
            Ok(stored)
        };
        let result = merge();
        if result.is_err() {
            failed.store(true, Ordering::SeqCst);
            // Wake threads waiting for the window; take the lock so none misses it.
            let _guard = merged.0.lock().unwrap_or_else(|e| e.into_inner());
            merged.1.notify_all();
        }
        result
    });
    if result.is_err() {
        for c in 0..chunks.len() {
            let _ = fs::remove_file(chunk_path(c));
        }
    }
    result
}

/// At most this many files in one chunk.
const CHUNK_FILES: usize = 512;
/// At most about this many bytes in one chunk (a larger file is a chunk of its own).
const CHUNK_BYTES: u64 = 16 << 20;
/// Chunks the compressing threads may finish ahead of the merge.
const WINDOW: usize = 6;

/// Consecutive runs of sources, each at most [`CHUNK_FILES`] files and about [`CHUNK_BYTES`].
fn chunk(sources: &[Source]) -> Vec<std::ops::Range<usize>> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, s) in sources.iter().enumerate() {
        if i > start && (i - start >= CHUNK_FILES || bytes + s.size > CHUNK_BYTES) {
            chunks.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += s.size;
    }
    if start < sources.len() {
        chunks.push(start..sources.len());
    }
    chunks
}

/// A file time as a zip time (local, two-second precision); `None` outside 1980..2107.
fn zip_time(t: std::time::SystemTime) -> Option<zip::DateTime> {
    use chrono::{Datelike, Timelike};
    let t = chrono::DateTime::<chrono::Local>::from(t);
    zip::DateTime::from_date_and_time(
        u16::try_from(t.year()).ok()?,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
    )
    .ok()
}

/// Creates `path` (new, owner-only on unix); an error names it relative to the MHM `root`
/// where it lies under it.
pub(crate) fn create_private(root: &Path, path: &Path) -> Result<File> {
    files::create_new(path, true).with_context(|| format!("creating {}", paths::show(root, path)))
}

/// The folder form of [`write_all`] (a folder snapshot, a folder backup): `tmp` made, each
/// file copied into it (streamed through SHA-256) and synced; what surrounds it (the
/// manifest, verify, rename) is the caller's. Paths in errors are shown relative to `root`.
pub(crate) fn write_folder(
    root: &Path,
    tmp: &Path,
    sources: &[Source],
    bar: &dyn Bar,
) -> Result<Stored> {
    let show = |p: &Path| paths::show(root, p);
    fs::create_dir(tmp).with_context(|| format!("creating {}", show(tmp)))?;
    let mut stored = Stored::default();
    let mut buf = vec![0u8; 1 << 16];
    for s in sources {
        let dest = tmp.join(&s.name);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", show(parent)))?;
        }
        if let Some(target) = &s.link {
            link(root, target, &dest)?;
            stored.files.push(FileEntry {
                path: s.name.clone(),
                size: target.len() as u64,
                sha256: files::sha256_hex(target.as_bytes()),
                link: Some(target.clone()),
            });
            continue;
        }
        let Some(mut input) = open_source(root, s)? else {
            stored.vanished.push(s.path.clone());
            continue;
        };
        let mut out = create_private(root, &dest)?;
        let mut hasher = Sha256::new();
        let size = files::read_chunks(&mut input, &mut buf, |chunk| {
            hasher.update(chunk);
            bar.inc(chunk.len() as u64);
            io::Write::write_all(&mut out, chunk)
        })
        .with_context(|| format!("copying {} to {}", show(&s.path), show(&dest)))?;
        out.sync_all().with_context(|| format!("syncing {}", show(&dest)))?;
        stored.files.push(FileEntry {
            path: s.name.clone(),
            size,
            sha256: files::hex(&hasher.finalize()),
            link: None,
        });
    }
    Ok(stored)
}

#[cfg(unix)]
fn link(root: &Path, target: &str, dest: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, dest)
        .with_context(|| format!("creating link {}", paths::show(root, dest)))
}

#[cfg(not(unix))]
fn link(root: &Path, _target: &str, dest: &Path) -> Result<()> {
    anyhow::bail!(
        "{}: links in a folder snapshot need a unix system; use a zip snapshot",
        paths::show(root, dest)
    )
}
