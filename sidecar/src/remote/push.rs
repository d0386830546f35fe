//! `remote push`: a verified local backup, encrypted as it streams, uploaded in parts,
//! confirmed, and only then recorded.
//!
//! Memory stays flat: one part is filled while at most [`IN_FLIGHT`] earlier parts are
//! being sent by the runtime's worker threads. The MD5 of each part and the SHA-256 of
//! everything sent are computed on the way, so that the upload can be confirmed against
//! what the store reports (its size, and its multipart ETag: the MD5 of the parts' MD5s
//! followed by `-N`) without downloading it; a store whose ETag is not of that form (a
//! folder, some providers) is confirmed by reading the object back and hashing it.

use std::{
    collections::VecDeque,
    fs::File,
    io::{self, BufReader, Read, Write},
    path::Path,
    time::Instant,
};

use anyhow::{anyhow, bail, Context, Result};
use md5::Md5;
use object_store::{MultipartUpload, PutPayload};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::{
    crypt,
    record::{self, Record},
    store::Store,
};
use crate::{backup::manifest::Manifest, files, report::BarReader, Ctx, FailPoint};

/// Parts being sent at once (besides the one being filled).
pub const IN_FLIGHT: usize = 3;
/// The part size: 8 MiB (S3 wants at least 5 MiB for every part but the last).
pub const PART_SIZE: usize = 8 << 20;

/// How one copy was confirmed after its upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirmed {
    /// The store's size and multipart ETag equal what was sent.
    ETag,
    /// The store's size equals what was sent, and reading the object back gave the same
    /// SHA-256.
    ReadBack,
}

impl Confirmed {
    /// As written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmed::ETag => "etag",
            Confirmed::ReadBack => "read-back",
        }
    }
}

/// Sends what is written to it as the parts of one multipart upload.
struct Parts<'a> {
    store: &'a Store,
    ctx: &'a Ctx,
    upload: Box<dyn MultipartUpload>,
    part_size: usize,
    buf: Vec<u8>,
    in_flight: VecDeque<JoinHandle<object_store::Result<()>>>,
    part_md5s: Md5,
    sha: Sha256,
    sent: u64,
    parts: u64,
}

impl Parts<'_> {
    fn send_part(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        // md-5 is on digest 0.11, sha2 on 0.10: name the trait.
        md5::Digest::update(&mut self.part_md5s, <Md5 as md5::Digest>::digest(&part));
        self.sha.update(&part);
        self.sent += part.len() as u64;
        self.parts += 1;
        let fut = self.upload.put_part(PutPayload::from(part));
        self.in_flight.push_back(self.store.spawn(fut));
        while self.in_flight.len() > IN_FLIGHT {
            self.wait_one()?;
        }
        if self.parts == 1 && self.ctx.fail_at(FailPoint::RemoteMidUpload).is_err() {
            // A test standing in for a kill: wait for the part, then stop dead.
            while !self.in_flight.is_empty() {
                self.wait_one()?;
            }
            return Err(io::Error::other("injected failure at RemoteMidUpload"));
        }
        Ok(())
    }

    fn wait_one(&mut self) -> io::Result<()> {
        if let Some(h) = self.in_flight.pop_front() {
            match self.store.block_on(h) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let msg = self.store.explain("uploading a part of", "the copy", &e);
                    return Err(io::Error::other(format!("{msg:#}")));
                }
                Err(e) => return Err(io::Error::other(format!("an upload task failed: {e}"))),
            }
        }
        Ok(())
    }

    /// Sends the last part, waits for every part, completes the upload.
    fn finish(mut self) -> Result<Sent> {
        if !self.buf.is_empty() || self.parts == 0 {
            self.send_part()?;
        }
        while !self.in_flight.is_empty() {
            self.wait_one()?;
        }
        let done = self.store.block_on(self.upload.complete());
        let done =
            done.map_err(|e| self.store.explain("completing the upload of", "the copy", &e))?;
        let md5s = md5::Digest::finalize(self.part_md5s);
        Ok(Sent {
            size: self.sent,
            sha256: files::hex(&self.sha.finalize()),
            etag: format!("{}-{}", files::hex(&md5s), self.parts),
            parts: self.parts,
            reported_etag: done.e_tag,
        })
    }

    /// Gives up: waits for the parts under way, then asks the store to drop the parts.
    fn abort(mut self) {
        for h in self.in_flight.drain(..) {
            let _ = self.store.block_on(h);
        }
        let _ = self.store.block_on(self.upload.abort());
    }
}

impl Write for Parts<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (self.part_size - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part_size {
            self.send_part()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What was sent.
struct Sent {
    size: u64,
    sha256: String,
    etag: String,
    parts: u64,
    reported_etag: Option<String>,
}

/// A reader that hashes and counts what passes through it.
pub(crate) struct Hashing<R> {
    pub inner: R,
    pub sha: Sha256,
    pub size: u64,
}

impl<R> Hashing<R> {
    pub(super) fn new(inner: R) -> Self {
        Self { inner, sha: Sha256::default(), size: 0 }
    }

    pub(super) fn hex(&self) -> String {
        files::hex(&self.sha.clone().finalize())
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Uploads the verified backup at `path` (whose manifest is `manifest`) and writes its
/// record. Returns the record and how long the upload took.
pub(crate) fn push_one(
    ctx: &Ctx,
    store: &Store,
    path: &Path,
    name: &str,
    manifest: &Manifest,
    recipient: Option<&age::x25519::Recipient>,
    part_size: usize,
) -> Result<(Record, f64)> {
    let started = Instant::now();
    let object = record::object_name(name, recipient.is_some());
    // A record left by an earlier copy of this name that is no longer whole goes first:
    // from here until the new record is written, nothing claims the copy is whole.
    store.delete(&record::record_name(name))?;
    let file = File::open(path).with_context(|| format!("opening {}", ctx.show(path)))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = ctx.progress.start(&format!("push {name}"), size);
    let mut plain = Hashing::new(BarReader {
        inner: BufReader::with_capacity(1 << 16, file),
        bar: bar.as_ref(),
    });
    let upload = store.multipart(&object)?;
    let mut parts = Parts {
        store,
        ctx,
        upload,
        part_size: part_size.max(1),
        buf: Vec::with_capacity(part_size),
        in_flight: VecDeque::new(),
        part_md5s: Md5::default(),
        sha: Sha256::default(),
        sent: 0,
        parts: 0,
    };
    let copied: Result<()> = (|| {
        match recipient {
            Some(to) => {
                let mut enc = crypt::encrypt(to, &mut parts)?;
                io::copy(&mut plain, &mut enc).map_err(|e| anyhow!("{e}"))?;
                enc.finish().map_err(|e| anyhow!("{e}"))?;
            }
            None => {
                io::copy(&mut plain, &mut parts).map_err(|e| anyhow!("{e}"))?;
            }
        }
        Ok(())
    })();
    bar.finish();
    if let Err(e) = copied {
        if ctx.fail_at(FailPoint::RemoteMidUpload).is_err() {
            // As a killed process would: the parts stay on the server, never completed.
            return Err(e.context(format!("pushing {name}")));
        }
        parts.abort();
        return Err(e.context(format!(
            "pushing {name} (the upload was abandoned; nothing is recorded, run push again)"
        )));
    }
    let sent = parts.finish().with_context(|| format!("pushing {name}"))?;
    let confirmed =
        confirm(store, &object, &sent).with_context(|| format!("confirming the copy of {name}"))?;
    ctx.fail_at(FailPoint::RemoteBeforeRecord)?;
    let rec = Record {
        format: record::FORMAT.to_string(),
        version: 1,
        name: name.to_string(),
        created_at: chrono::DateTime::parse_from_rfc3339(&manifest.created_at)
            .unwrap_or_else(|_| ctx.now_local()),
        includes: manifest.includes,
        object: object.clone(),
        encrypted: recipient.is_some(),
        recipient: recipient.map(ToString::to_string),
        plain_size: plain.size,
        plain_sha256: plain.hex(),
        stored_size: sent.size,
        stored_sha256: sent.sha256.clone(),
        etag: sent.reported_etag.clone(),
        parts: sent.parts,
        confirmed_by: confirmed.as_str().to_string(),
        pushed_at: ctx.now_local(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let json = serde_json::to_vec_pretty(&rec).context("encoding the record")?;
    store.put_small(&record::record_name(name), json)?;
    Ok((rec, started.elapsed().as_secs_f64()))
}

/// Checks what the store holds against what was sent.
fn confirm(store: &Store, object: &str, sent: &Sent) -> Result<Confirmed> {
    let meta = store
        .head(object)?
        .ok_or_else(|| anyhow!("the store does not list {object} after the upload"))?;
    if meta.size != sent.size {
        bail!("the store holds {} bytes of {object} but {} were sent", meta.size, sent.size);
    }
    let etag = meta.e_tag.as_deref().or(sent.reported_etag.as_deref()).and_then(record::md5_etag);
    if let Some(etag) = etag {
        if etag.contains('-') {
            if etag.eq_ignore_ascii_case(&sent.etag) {
                return Ok(Confirmed::ETag);
            }
            bail!("the store's ETag for {object} is {etag}, but what was sent gives {}", sent.etag);
        }
    }
    // No multipart ETag to compare: read it back.
    let mut back = Hashing::new(store.reader(object)?);
    io::copy(&mut back, &mut io::sink()).with_context(|| format!("reading {object} back"))?;
    if back.size != sent.size || back.hex() != sent.sha256 {
        bail!("{object} read back from the store differs from what was sent ({} bytes)", back.size);
    }
    Ok(Confirmed::ReadBack)
}

/// The full local check before a push: the backup verifies, and its manifest.
pub(crate) fn verified(path: &Path) -> Result<Manifest, Vec<crate::Problem>> {
    let report = crate::backup::verify::backup(path);
    if !report.ok() {
        return Err(report.problems);
    }
    report.manifest.ok_or_else(|| vec![crate::Problem::general("the manifest could not be read")])
}

/// A folder backup packed into a zip of ours for pushing; the temporary folder holding it
/// goes when this is dropped.
pub(crate) struct Packed {
    dir: std::path::PathBuf,
    /// The zip (`<dir>/<name>.zip`), verified.
    pub zip: std::path::PathBuf,
}

impl Drop for Packed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Packs the folder backup `folder` (the service's shape, or ours from `--format
/// directory`) into `data/backups/.tmp-<pid>-push-<name>/<name>.zip`: its `users/`,
/// `config/`, `logs/` and `code/` with a manifest of ours, written and verified as every
/// backup is. The folder is verified first (a folder that does not verify is not pushed).
pub(crate) fn pack_folder(ctx: &Ctx, name: &str, folder: &Path) -> anyhow::Result<Packed> {
    use crate::backup::{create, service};
    let report = crate::backup::verify::backup(folder);
    if !report.ok() {
        anyhow::bail!("the folder backup does not verify: {}", report.problems_text());
    }
    let includes = service::folder_manifest(folder)
        .map(|m| m.includes())
        .ok_or_else(|| anyhow::anyhow!("no manifest.json: not a folder backup"))?;
    let dir = crate::files::temp_path(&ctx.backups_dir().join(format!("push-{name}")));
    std::fs::create_dir_all(&dir)?;
    let packed = Packed { zip: dir.join(format!("{name}.zip")), dir };
    let mut sources = Vec::new();
    let mut skipped = crate::collect::Skipped::default();
    for part in ["users", "config", "logs", "code"] {
        let sub = folder.join(part);
        if sub.is_dir() {
            let tree = crate::collect::Tree { ctx, root: &sub, label: part };
            tree.walk(&sub, part, &mut sources, &mut skipped)?;
        }
    }
    if let Some(p) = skipped.left_out.first() {
        anyhow::bail!("it holds files a zip cannot: {p}");
    }
    let options = create::Options { includes, format: create::Format::Zip };
    let (_, _, vanished) = create::write(ctx, &packed.dir, name, &options, sources)?;
    if let Some(p) = vanished.first() {
        anyhow::bail!("a file of the backup went while it was packed: {p}");
    }
    Ok(packed)
}
