//! The object store behind a copy: S3-compatible storage or a folder, through the
//! `object_store` crate, driven by a tokio runtime that lives only as long as one remote
//! operation (the rest of the sidecar has no async code). Every error leaving here says
//! in words what went wrong and carries no secret. What is written into a folder store
//! goes through [`super::folder`] (owner-only files); S3 is written by `object_store`.

use std::{fmt, io, sync::Arc, time::Duration};

use anyhow::{anyhow, Result};
use bytes::Bytes;
use futures::{stream::BoxStream, StreamExt};
use object_store::{
    aws::AmazonS3Builder, local::LocalFileSystem, path::Path as Key, BackoffConfig, ClientOptions,
    MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
};
use tokio::runtime::Runtime;

use super::config::{names, Config, Target};
use super::folder;
use crate::error::usage;

/// An open store and the runtime that drives it.
pub struct Store {
    rt: Runtime,
    inner: Arc<dyn ObjectStore>,
    /// The same store when it is a folder: its writes are our own (owner-only files).
    folder: Option<Arc<LocalFileSystem>>,
    /// The key prefix (empty for a folder, whose root is the folder itself).
    prefix: String,
    /// The settings (with the secrets to scrub from messages).
    pub config: Config,
}

/// One object under the prefix.
#[derive(Clone, Debug)]
pub struct Object {
    /// Its key relative to the prefix.
    pub name: String,
    /// What the store reports about it.
    pub meta: ObjectMeta,
}

impl Store {
    /// Opens the store the settings name. Nothing is sent yet.
    pub fn open(config: Config) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mhm-remote")
            .enable_all()
            .build()
            .map_err(|e| anyhow!("starting the network runtime: {e}"))?;
        let mut folder = None;
        let (inner, prefix): (Arc<dyn ObjectStore>, String) = match &config.target {
            Target::Folder(dir) => {
                if !dir.is_dir() {
                    return Err(usage(format!(
                        "{} names the folder {}, which does not exist (is the disk mounted?); create it first",
                        names::URL,
                        dir.display()
                    )));
                }
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| anyhow!("opening the folder {}: {e}", dir.display()))?;
                let fs = Arc::new(fs);
                folder = Some(Arc::clone(&fs));
                (fs, String::new())
            }
            Target::S3 { bucket, prefix } => {
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(&config.region)
                    // The parts are not hashed again for the signature: what the store
                    // holds is confirmed by its size and ETag (the MD5s computed while
                    // sending), and TLS guards the way to any server but a local one.
                    .with_unsigned_payload(true)
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig {
                            init_backoff: Duration::from_millis(100),
                            max_backoff: Duration::from_secs(2),
                            base: 2.0,
                        },
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_timeout(Duration::from_secs(300))
                            .with_allow_http(
                                config
                                    .endpoint
                                    .as_deref()
                                    .is_some_and(|e| e.starts_with("http://")),
                            ),
                    );
                if let Some(e) = &config.endpoint {
                    b = b.with_endpoint(e);
                }
                if let Some(k) = &config.access_key_id {
                    b = b.with_access_key_id(k);
                }
                if let Some(k) = &config.secret_access_key {
                    b = b.with_secret_access_key(k);
                }
                if let Some(t) = &config.session_token {
                    b = b.with_token(t);
                }
                let s3 = b.build().map_err(|e| {
                    usage(format!(
                        "the S3 settings are not usable: {}",
                        config.secrets.scrub(&e.to_string())
                    ))
                })?;
                (Arc::new(s3), prefix.clone())
            }
        };
        Ok(Self { rt, inner, folder, prefix, config })
    }

    /// The full key of `name` (relative to the prefix).
    pub fn key(&self, name: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Runs a future to its end.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Starts a future on the runtime's worker threads.
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(f)
    }

    /// Every object directly under the prefix.
    pub fn list(&self) -> Result<Vec<Object>> {
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let listed = self.block_on(self.inner.list_with_delimiter(prefix.as_ref()));
        let listed = listed.map_err(|e| self.explain("listing", "the copies", &e))?;
        let cut = if self.prefix.is_empty() { 0 } else { self.prefix.len() + 1 };
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.as_ref().get(cut..)?.to_string();
                Some(Object { name, meta })
            })
            .collect())
    }

    /// What the store reports about `name`, or `None` when it is not there.
    pub fn head(&self, name: &str) -> Result<Option<ObjectMeta>> {
        match self.block_on(self.inner.head(&self.key(name))) {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.explain("reading the size of", name, &e)),
        }
    }

    /// A small object, whole.
    pub fn get_small(&self, name: &str) -> Result<Bytes> {
        let key = self.key(name);
        self.block_on(async { self.inner.get(&key).await?.bytes().await })
            .map_err(|e| self.explain("reading", name, &e))
    }

    /// Writes a small object in one request (into a folder: an owner-only file).
    pub fn put_small(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        if let Some(dest) = self.folder_path(name)? {
            return folder::put(&dest, &bytes)
                .map_err(|e| anyhow!("writing {} in {}: {e}", name, self.config.describe()));
        }
        self.block_on(self.inner.put(&self.key(name), PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.explain("writing", name, &e))
    }

    /// Where `name` lies on disk when the store is a folder.
    fn folder_path(&self, name: &str) -> Result<Option<std::path::PathBuf>> {
        let Some(fs) = &self.folder else { return Ok(None) };
        fs.path_to_filesystem(&self.key(name))
            .map(Some)
            .map_err(|e| self.explain("writing", name, &e))
    }

    /// Deletes `name` (an object that is already gone is not an error).
    pub fn delete(&self, name: &str) -> Result<()> {
        match self.block_on(self.inner.delete(&self.key(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.explain("deleting", name, &e)),
        }
    }

    /// Starts a multipart upload of `name` (into a folder: an owner-only file).
    pub fn multipart(&self, name: &str) -> Result<Box<dyn MultipartUpload>> {
        if let Some(dest) = self.folder_path(name)? {
            return folder::upload(&dest).map(|u| Box::new(u) as Box<dyn MultipartUpload>).map_err(
                |e| anyhow!("starting the upload of {} in {}: {e}", name, self.config.describe()),
            );
        }
        self.block_on(self.inner.put_multipart(&self.key(name)))
            .map_err(|e| self.explain("starting the upload of", name, &e))
    }

    /// A blocking reader of `name`'s bytes as they arrive.
    pub fn reader(&self, name: &str) -> Result<BlockingRead<'_>> {
        let key = self.key(name);
        let got = self
            .block_on(self.inner.get(&key))
            .map_err(|e| self.explain("downloading", name, &e))?;
        Ok(BlockingRead { store: self, stream: got.into_stream(), chunk: Bytes::new() })
    }

    /// An object-store error in words: what we were doing, to what, what went wrong, and
    /// the store's own message, with every secret blanked out.
    pub fn explain(&self, doing: &str, what: &str, e: &object_store::Error) -> anyhow::Error {
        let detail = self.config.secrets.scrub(&e.to_string());
        let where_ = self.config.describe();
        let lower = detail.to_ascii_lowercase();
        let why = if let object_store::Error::NotFound { .. } = e {
            "not found".to_string()
        } else if detail.contains("NoSuchBucket") || lower.contains("bucket does not exist") {
            match &self.config.target {
                Target::S3 { bucket, .. } => {
                    format!("the bucket {bucket:?} does not exist (check {})", names::URL)
                }
                Target::Folder(_) => "not found".to_string(),
            }
        } else if detail.contains("InvalidAccessKeyId")
            || detail.contains("SignatureDoesNotMatch")
            || detail.contains("AccessDenied")
            || detail.contains("403 Forbidden")
            || detail.contains("401 Unauthorized")
        {
            format!(
                "the server refused the credentials (check {} and {})",
                names::ACCESS_KEY_ID,
                names::SECRET_ACCESS_KEY
            )
        } else if lower.contains("error sending request")
            || lower.contains("connection refused")
            || lower.contains("dns error")
            || lower.contains("timed out")
            || lower.contains("connection reset")
            || lower.contains("connection closed")
        {
            "the server cannot be reached or stopped answering".to_string()
        } else {
            "the store refused or failed".to_string()
        };
        let detail: String = detail.chars().take(600).collect();
        anyhow!("{doing} {what} in {where_}: {why} ({detail})")
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the client: its Debug shows the access key id and the endpoint.
        f.debug_struct("Store").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// A blocking [`io::Read`] over an object's byte stream.
pub struct BlockingRead<'a> {
    store: &'a Store,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl fmt::Debug for BlockingRead<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRead").field("buffered", &self.chunk.len()).finish_non_exhaustive()
    }
}

impl io::Read for BlockingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.store.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => {
                    let msg = self.store.explain("downloading", "a copy", &e);
                    return Err(io::Error::other(format!("{msg:#}")));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
