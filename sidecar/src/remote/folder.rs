//! What the tool writes into a folder store (`file:///path`), owner-only: a copy's object
//! and its record hold a backup (encrypted or not: `--no-encrypt` stores it as it is), so
//! on unix each file is created `0600` (and a folder it has to make `0700`), never made
//! readable by more users than the backup it came from (SPEC section 8). `object_store`'s
//! own folder store creates files with the process's default mode (`0644` under the usual
//! umask), so its writes are replaced here; reads, listings and deletes stay its own.
//!
//! The layout is the one `object_store` uses, so that what it lists (and skips) is the
//! same: an object is written under the staging name `<object>#<n>` and renamed into place
//! once whole; an upload cut short leaves only the staging file, which no listing shows.
//! S3 stores are not touched by any of this.

use std::{
    fs::File,
    io::{self, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use futures::FutureExt;
use object_store::{MultipartUpload, PutPayload, PutResult, UploadPart};

/// Writes `bytes` as the file `dest` (owner-only), replacing what is there, through a
/// staging file renamed into place.
pub(super) fn put(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let (mut file, staged) = stage(dest)?;
    let written = (|| {
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&staged, dest)?;
        crate::files::sync_dir(dest);
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    written
}

/// Starts an upload of `dest`: its parts are written into an owner-only staging file,
/// renamed to `dest` when the upload completes.
pub(super) fn upload(dest: &Path) -> io::Result<Upload> {
    let (file, staged) = stage(dest)?;
    let state = Arc::new(State { file: Mutex::new(Some(file)) });
    Ok(Upload { state, staged: Some(staged), dest: dest.to_path_buf(), offset: 0 })
}

/// Creates the first free staging file `<dest>#<n>` (owner-only), making the folders
/// above it when missing (owner-only too).
fn stage(dest: &Path) -> io::Result<(File, PathBuf)> {
    let mut n = 1u32;
    loop {
        let mut staged = dest.as_os_str().to_owned();
        staged.push(format!("#{n}"));
        let staged = PathBuf::from(staged);
        match crate::files::create_new(&staged, true) {
            Ok(f) => return Ok((f, staged)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => match dest.parent() {
                Some(parent) if !parent.as_os_str().is_empty() && !parent.exists() => {
                    private_dirs(parent)?;
                }
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
}

fn private_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The staging file of one upload, shared by the parts being written.
#[derive(Debug)]
struct State {
    /// `None` once completed or aborted.
    file: Mutex<Option<File>>,
}

impl State {
    fn write_at(&self, offset: u64, data: &PutPayload) -> io::Result<()> {
        let mut guard =
            self.file.lock().map_err(|_| io::Error::other("a part's write panicked"))?;
        let file = guard.as_mut().ok_or_else(|| io::Error::other("the upload has ended"))?;
        file.seek(SeekFrom::Start(offset))?;
        data.iter().try_for_each(|chunk| file.write_all(chunk))
    }

    fn take(&self) -> io::Result<File> {
        let mut guard =
            self.file.lock().map_err(|_| io::Error::other("a part's write panicked"))?;
        guard.take().ok_or_else(|| io::Error::other("the upload has ended"))
    }
}

/// One upload into a folder store (see [`upload`]).
#[derive(Debug)]
pub(super) struct Upload {
    state: Arc<State>,
    /// The staging file, until the upload completes or is abandoned.
    staged: Option<PathBuf>,
    dest: PathBuf,
    /// Where the next part starts.
    offset: u64,
}

fn error(e: io::Error) -> object_store::Error {
    object_store::Error::Generic { store: "folder", source: Box::new(e) }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> object_store::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(error),
        Err(e) => Err(error(io::Error::other(format!("a write task failed: {e}")))),
    }
}

#[async_trait::async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        self.offset += data.content_length() as u64;
        let state = Arc::clone(&self.state);
        blocking(move || state.write_at(offset, &data)).boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let staged =
            self.staged.take().ok_or_else(|| error(io::Error::other("the upload has ended")))?;
        let state = Arc::clone(&self.state);
        let dest = self.dest.clone();
        blocking(move || {
            let file = state.take()?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&staged, &dest)?;
            crate::files::sync_dir(&dest);
            Ok(())
        })
        .await?;
        // The store's ETag is read from the file by `head`, as the push confirms it.
        Ok(PutResult { e_tag: None, version: None, extensions: Default::default() })
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        let Some(staged) = self.staged.take() else { return Ok(()) };
        let state = Arc::clone(&self.state);
        blocking(move || {
            drop(state.take());
            std::fs::remove_file(&staged)
        })
        .await
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Abandoned without `complete` or `abort` (an error on the way): the staging file
        // goes, as object_store's own folder upload does.
        if let Some(staged) = self.staged.take() {
            if let Ok(mut guard) = self.state.file.lock() {
                guard.take();
            }
            let _ = std::fs::remove_file(staged);
        }
    }
}
