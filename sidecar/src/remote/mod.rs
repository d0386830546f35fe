//! Off-site copies (SPEC section 10): verified backups, encrypted on this machine with
//! [age](https://age-encryption.org) and copied to S3-compatible object storage (AWS S3,
//! MinIO, SeaweedFS, Backblaze B2, Cloudflare R2, ...) or to another folder (an external
//! disk); listed, verified, pulled back and pruned.
//!
//! | part | module |
//! |---|---|
//! | settings, secrets kept out of every message | [`config`] |
//! | the store (S3 or a folder) and its runtime | [`store`] |
//! | what is written into a folder store, owner-only | `folder` |
//! | encryption, keys | [`crypt`] |
//! | the record that makes an uploaded object a copy | [`record`] |
//! | push: stream, encrypt, upload in parts, confirm | `push` |
//! | verify and pull: download, decrypt, check | `fetch` |
//! | what the store holds: copies, and what is not one | `list` |
//! | retention in the store | `prune` |
//!
//! A copy is an object (`<name>.zip.age`) plus its record (`<name>.remote.json`), written
//! only once the object was uploaded whole and confirmed. An upload cut short (a dead
//! server, a killed process) leaves no record, so it is never counted, listed or pruned as
//! a copy; the next push starts it again from the beginning (age gives every encryption
//! a new key, so a half-sent encryption cannot be continued).
//!
//! ```
//! use mhm_sidecar::{remote, Ctx};
//!
//! let root = tempfile::tempdir()?;
//! let store = tempfile::tempdir()?;
//! std::fs::create_dir_all(root.path().join("data/backups"))?;
//! let ctx = Ctx::new(root.path(), chrono::Utc::now())?;
//! let over = remote::Overrides {
//!     url: Some(format!("file://{}", store.path().display())),
//!     ..Default::default()
//! };
//! # #[cfg(unix)] {
//! let remote = remote::Remote::open(&ctx, &over)?;
//! assert!(remote.list()?.copies.is_empty());
//! # }
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod config;
pub mod crypt;
mod fetch;
mod folder;
mod list;
mod prune;
mod push;
pub mod record;
pub mod store;

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result};
use serde::Serialize;

pub use self::config::{configured, Config, Overrides, Target};
pub use self::list::{Copy, Listing, Status, Unfinished};
pub use self::prune::{PrunePolicy, UNFINISHED_AFTER};
pub use self::push::{Confirmed, IN_FLIGHT, PART_SIZE};
use self::{record::Record, store::Store};
use crate::{
    backup::{self, PruneStep},
    error::usage,
    Ctx, Problem,
};

/// What `push` did with one backup.
#[derive(Clone, Debug, Serialize)]
pub struct PushItem {
    /// The backup's name.
    pub name: String,
    /// What happened (`result`: `pushed`, `already_there`, `would_push`, `refused`,
    /// `failed`, with its fields beside it).
    #[serde(flatten)]
    pub result: PushResult,
}

/// What happened to one backup `push` was given or found.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum PushResult {
    /// Uploaded, confirmed, recorded.
    Pushed {
        /// Bytes stored.
        stored_size: u64,
        /// Whether it was encrypted.
        encrypted: bool,
        /// How it was confirmed (`etag` or `read-back`).
        confirmed_by: String,
        /// How long it took.
        seconds: f64,
    },
    /// A whole copy is already in the store.
    AlreadyThere,
    /// A dry run: it would be pushed.
    WouldPush,
    /// The local backup does not verify (or is missing): not pushed.
    Refused {
        /// What is wrong with it.
        problems: Vec<Problem>,
    },
    /// The push failed; nothing was recorded, the next push tries again.
    Failed {
        /// Why.
        error: String,
    },
    /// Not pushed, by rule, and not a failure: a folder backup the service made, when no
    /// name was given (the sidecar's own weekly zip carries the same data). Named, it is
    /// packed into a zip and pushed.
    Skipped {
        /// Why.
        why: String,
    },
}

impl PushItem {
    /// Whether this backup is now (or was already) safely in the store, or would be.
    pub fn ok(&self) -> bool {
        matches!(
            self.result,
            PushResult::Pushed { .. }
                | PushResult::AlreadyThere
                | PushResult::WouldPush
                | PushResult::Skipped { .. }
        )
    }
}

/// How `push` works.
#[derive(Clone, Copy, Debug)]
pub struct PushOptions {
    /// Encrypt (the default; `--no-encrypt` turns it off).
    pub encrypt: bool,
    /// Bytes per uploaded part ([`PART_SIZE`]).
    pub part_size: usize,
    /// Say what would be pushed; push nothing.
    pub dry_run: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        Self { encrypt: true, part_size: PART_SIZE, dry_run: false }
    }
}

/// What `verify` or `pull` found.
#[derive(Debug, Serialize)]
pub struct Fetch {
    /// The backup's name.
    pub name: String,
    /// Entries checked.
    pub entries: usize,
    /// Every problem found; none means the copy is whole and valid.
    pub problems: Vec<Problem>,
    /// Where a pull placed the backup.
    pub placed: Option<String>,
}

/// What `remote restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreAll {
    /// The copy restored from.
    pub name: String,
    /// Whether it was downloaded now (false: an earlier pull's file was used).
    pub pulled: bool,
    /// The restore.
    pub outcome: crate::restore::Outcome,
    /// `system validate` afterwards.
    pub validate: crate::validate::Report,
}

impl Fetch {
    /// No problem.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The store the settings name, as backup prune asks it ([`backup::OffSite`]): configured
/// when its URL is set; its copies are the whole ones whose objects are as recorded.
#[derive(Clone, Copy, Debug, Default)]
pub struct FromSettings;

impl backup::OffSite for FromSettings {
    fn configured(&self, ctx: &Ctx) -> bool {
        configured(ctx)
    }

    fn copies(&self, ctx: &Ctx) -> Option<std::collections::BTreeSet<String>> {
        let listing = Remote::open(ctx, &Overrides::default()).and_then(|r| r.list()).ok()?;
        Some(
            listing.copies.into_iter().filter(|c| c.status == Status::Ok).map(|c| c.name).collect(),
        )
    }
}

/// The store, open for one run.
#[derive(Debug)]
pub struct Remote {
    store: Store,
}

impl Remote {
    /// Reads the settings (flags in `over` first) and opens the store. Nothing is sent.
    pub fn open(ctx: &Ctx, over: &Overrides) -> Result<Self> {
        let config = Config::from_ctx(ctx, over)?;
        let secrets = config.secrets.clone();
        let store = Store::open(config).map_err(|e| secrets.scrub_error(e))?;
        Ok(Self { store })
    }

    /// The settings in use.
    pub fn config(&self) -> &Config {
        &self.store.config
    }

    /// Runs `f`, blanking every secret out of its error.
    fn scrubbed<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        f().map_err(|e| self.store.config.secrets.scrub_error(e))
    }

    /// The copies in the store, and what is there that is not a copy.
    pub fn list(&self) -> Result<Listing> {
        self.scrubbed(|| list::listing(&self.store))
    }

    /// Pushes the named local backups (none named: every valid local backup without a
    /// whole copy in the store). An error is returned only when nothing could be tried
    /// (the store unreachable, a bad setting); each backup's own outcome is in its item.
    pub fn push(&self, ctx: &Ctx, names: &[String], opts: PushOptions) -> Result<Vec<PushItem>> {
        self.scrubbed(|| self.push_inner(ctx, names, opts))
    }

    fn push_inner(&self, ctx: &Ctx, names: &[String], opts: PushOptions) -> Result<Vec<PushItem>> {
        let recipient = if opts.encrypt {
            let Some(value) = &self.store.config.recipient else {
                return Err(usage(format!(
                    "{} is not set: copies are encrypted to it (make one with `mhm-sidecar remote keygen FILE`), or give --no-encrypt",
                    config::names::RECIPIENT
                )));
            };
            Some(crypt::recipient(value)?)
        } else {
            None
        };
        let listing = list::listing(&self.store)?;
        let whole: BTreeMap<&str, &Copy> = listing
            .copies
            .iter()
            .filter(|c| c.status == Status::Ok)
            .map(|c| (c.name.as_str(), c))
            .collect();
        let mut todo: Vec<(String, std::path::PathBuf)> = Vec::new();
        let mut items = Vec::new();
        if names.is_empty() {
            for b in backup::list(ctx)? {
                if b.includes.is_none() {
                    continue; // not a backup (another zip), or a per-user one of the service's
                }
                if b.path.is_dir() && !whole.contains_key(b.name.as_str()) {
                    items.push(PushItem {
                        name: b.name.clone(),
                        result: PushResult::Skipped {
                            why: "a folder backup: not pushed unless named (the weekly zip \
                                  carries the same data); `remote push NAME` packs it into a \
                                  zip and pushes that"
                                .to_string(),
                        },
                    });
                    continue;
                }
                todo.push((b.name.clone(), b.path.clone()));
            }
        } else {
            for n in names {
                let n = n.strip_suffix(".zip").unwrap_or(n);
                backup::check_name(n)?;
                let folder = ctx.backups_dir().join(n);
                let path = if backup::service::folder_manifest(&folder).is_some() {
                    folder
                } else {
                    ctx.backups_dir().join(format!("{n}.zip"))
                };
                todo.push((n.to_string(), path));
            }
        }
        for (name, path) in todo {
            if whole.contains_key(name.as_str()) {
                items.push(PushItem { name, result: PushResult::AlreadyThere });
                continue;
            }
            let result = self.push_path(ctx, &name, &path, recipient.as_ref(), opts);
            match &result {
                PushResult::Pushed { stored_size, confirmed_by, .. } => {
                    tracing::info!(target: "mhm::sidecar", "remote push: {name} stored as {stored_size} bytes in {} (confirmed by {confirmed_by})", self.store.config.url)
                }
                PushResult::Failed { error } => {
                    tracing::warn!(target: "mhm::sidecar", "remote push: {name} failed: {error}")
                }
                PushResult::Refused { problems } => {
                    tracing::warn!(target: "mhm::sidecar", "remote push: {name} refused: {} problem(s) in the local backup", problems.len())
                }
                _ => {}
            }
            items.push(PushItem { name, result });
        }
        Ok(items)
    }

    fn push_path(
        &self,
        ctx: &Ctx,
        name: &str,
        path: &Path,
        recipient: Option<&age::x25519::Recipient>,
        opts: PushOptions,
    ) -> PushResult {
        if path.is_dir() && opts.dry_run {
            // A dry run changes nothing in the root: the folder is checked, not packed.
            let report = backup::verify::backup(path);
            return if report.ok() {
                PushResult::WouldPush
            } else {
                PushResult::Refused { problems: report.problems }
            };
        }
        if path.is_dir() {
            // A folder backup, named: packed into a verified zip of ours first (in a
            // temporary folder beside it), and that is pushed under the folder's name.
            let packed = match push::pack_folder(ctx, name, path) {
                Ok(p) => p,
                Err(e) => {
                    return PushResult::Refused {
                        problems: vec![Problem::at(ctx.show(path), format!("{e:#}"))],
                    }
                }
            };
            let result = self.push_path(ctx, name, &packed.zip, recipient, opts);
            drop(packed);
            return result;
        }
        if !path.is_file() {
            return PushResult::Refused {
                problems: vec![Problem::at(ctx.show(path), "no such backup")],
            };
        }
        let manifest = match push::verified(path) {
            Ok(m) => m,
            Err(problems) => return PushResult::Refused { problems },
        };
        if opts.dry_run {
            return PushResult::WouldPush;
        }
        match push::push_one(ctx, &self.store, path, name, &manifest, recipient, opts.part_size) {
            Ok((rec, seconds)) => PushResult::Pushed {
                stored_size: rec.stored_size,
                encrypted: rec.encrypted,
                confirmed_by: rec.confirmed_by,
                seconds,
            },
            Err(e) => {
                PushResult::Failed { error: self.store.config.secrets.scrub(&format!("{e:#}")) }
            }
        }
    }

    /// The copy of `name` (a whole one, or the reason there is none).
    fn copy_of(&self, name: &str) -> Result<Copy> {
        let name = name.strip_suffix(".zip").unwrap_or(name);
        let listing = list::listing(&self.store)?;
        let copy = listing.copies.iter().find(|c| c.name == name).cloned();
        match copy {
            None => {
                // Name the next step: the copies there are (the newest few), and the
                // command that lists them all, as `backup verify` does for local backups.
                let there = if listing.copies.is_empty() {
                    "there are no copies there yet (`mhm-sidecar remote push` makes them)"
                        .to_string()
                } else {
                    let newest = listing.copies.iter().rev().map(|c| c.name.clone());
                    backup::newest_there(newest, "mhm-sidecar remote list")
                };
                anyhow::bail!("no copy of {name} in {}; {there}", self.store.config.describe())
            }
            Some(c) if c.status == Status::Missing => {
                anyhow::bail!(
                    "the copy of {name} is gone from the store: its object {} is missing",
                    c.object
                )
            }
            Some(c) => Ok(c),
        }
    }

    fn keys(
        &self,
        ctx: &Ctx,
        rec: &Record,
    ) -> Result<(Vec<age::x25519::Identity>, config::Secrets)> {
        let mut secrets = self.store.config.secrets.clone();
        if !rec.encrypted {
            return Ok((Vec::new(), secrets));
        }
        let Some(path) = &self.store.config.identity_file else {
            return Err(usage(format!(
                "{} is not set: the private key is needed to decrypt a copy",
                config::names::IDENTITY_FILE
            )));
        };
        let keys = crypt::identities(&ctx.root, path, &mut secrets)?;
        Ok((keys, secrets))
    }

    /// Downloads the copy of `name`, decrypts it and checks it as `backup verify` does;
    /// nothing is kept, and nothing in the root is created or changed (the copy is checked
    /// in a private temporary folder outside it).
    pub fn verify(&self, ctx: &Ctx, name: &str) -> Result<Fetch> {
        self.fetch(ctx, name, false)
    }

    /// Downloads the copy of `name`, decrypts and checks it, then places it in
    /// `data/backups/` (never over an existing file). An invalid copy is not placed.
    pub fn pull(&self, ctx: &Ctx, name: &str) -> Result<Fetch> {
        self.fetch(ctx, name, true)
    }

    fn fetch(&self, ctx: &Ctx, name: &str, place: bool) -> Result<Fetch> {
        let mut secrets = self.store.config.secrets.clone();
        let result = (|| {
            let copy = self.copy_of(name)?;
            let target = ctx.backups_dir().join(format!("{}.zip", copy.name));
            if place && crate::files::exists(&target) {
                anyhow::bail!(
                    "{} already exists: a pull never replaces a backup",
                    ctx.show(&target)
                );
            }
            let (keys, s) = self.keys(ctx, &copy.record)?;
            secrets = s;
            let mut problems = Vec::new();
            if copy.status == Status::Changed {
                problems.push(Problem::at(
                    &copy.object,
                    "its size or ETag in the store is not what was pushed",
                ));
            }
            let dest = if place { fetch::Dest::Backups } else { fetch::Dest::Private };
            let fetched = fetch::fetch(ctx, &self.store, &copy.record, &keys, dest)?;
            problems.extend(fetched.report.problems.iter().cloned());
            let mut placed = None;
            if place && problems.is_empty() {
                fetched
                    .file
                    .commit_new()
                    .with_context(|| format!("placing {}", ctx.show(&target)))?;
                tracing::info!(target: "mhm::sidecar", "remote pull: placed {}", ctx.show(&target));
                placed = Some(ctx.show(&target));
            }
            Ok(Fetch { name: copy.name, entries: fetched.report.entries, problems, placed })
        })();
        result.map_err(|e| secrets.scrub_error(e))
    }

    /// The way back after losing the machine (`remote restore`): on an empty or new root,
    /// pulls the newest whole copy holding user data (or `name`), then restores users (with
    /// their message archives), the user index and the config files from it, and checks the
    /// result as `system validate` does. A copy already pulled into `data/backups/` (a run
    /// cut short) is used as it is, after it verifies.
    pub fn restore_all(&self, ctx: &Ctx, name: Option<&str>) -> Result<RestoreAll> {
        self.scrubbed(|| {
            let listing = list::listing(&self.store)?;
            let copy = match name {
                Some(n) => self.copy_of(n)?,
                None => listing
                    .copies
                    .into_iter()
                    .rev()
                    .find(|c| c.status == Status::Ok && c.record.includes.users)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "no whole copy holding user data in {} (see `remote list`)",
                            self.store.config.describe()
                        )
                    })?,
            };
            let path = ctx.backups_dir().join(format!("{}.zip", copy.name));
            let pulled = if crate::files::exists(&path) {
                let report = backup::verify::backup(&path);
                if !report.ok() {
                    anyhow::bail!(
                        "{} is there from an earlier pull but does not verify: {}; move it \
                         away and run again",
                        ctx.show(&path),
                        report.problems_text()
                    );
                }
                false
            } else {
                let fetched = self.fetch(ctx, &copy.name, true)?;
                if !fetched.ok() {
                    anyhow::bail!(
                        "the copy of {} does not verify: {}",
                        copy.name,
                        fetched.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                    );
                }
                true
            };
            let scope = crate::restore::Scope { users: true, config: true, user: None };
            let outcome = crate::restore::restore(ctx, &path, &scope, false)?;
            let validate = crate::validate::check(ctx);
            tracing::info!(target: "mhm::sidecar", "remote restore: restored {} from {}", copy.name, self.store.config.url);
            Ok(RestoreAll { name: copy.name, pulled, outcome, validate })
        })
    }

    /// Deletes copies past the policy, per kind (weekly, manual, safety) as for local
    /// backups; never the newest whole copy, nor the newest whole one holding user data.
    /// Objects of uploads that never finished go once a day old.
    pub fn prune(&self, ctx: &Ctx, policy: PrunePolicy, dry_run: bool) -> Result<Vec<PruneStep>> {
        self.scrubbed(|| prune::prune(&self.store, ctx, policy, dry_run))
    }
}

/// The policy: flags when given, else `REMOTE_RETENTION_DAYS` (90) and `REMOTE_MAX_COUNT`
/// (20).
pub fn prune_policy(ctx: &Ctx, days: Option<u64>, max_count: Option<u64>) -> Result<PrunePolicy> {
    Ok(PrunePolicy {
        retention_days: ctx.settings.remote_retention_days.or_flag(days)?,
        max_count: ctx.settings.remote_max_count.or_flag(max_count)?,
    })
}

/// `maintain`'s job: pushes every valid backup not yet in the store. Returns whether
/// every one is there now, what was done, and what went wrong.
pub fn push_new(ctx: &Ctx) -> Result<(bool, String, Vec<Problem>)> {
    let remote = Remote::open(ctx, &Overrides::default())?;
    let items = remote.push(ctx, &[], PushOptions::default())?;
    let pushed = items.iter().filter(|i| matches!(i.result, PushResult::Pushed { .. })).count();
    let there = items.iter().filter(|i| i.result == PushResult::AlreadyThere).count();
    let skipped = items.iter().filter(|i| matches!(i.result, PushResult::Skipped { .. })).count();
    let mut problems = Vec::new();
    for i in items.iter().filter(|i| !i.ok()) {
        match &i.result {
            PushResult::Failed { error } => problems.push(Problem::at(&i.name, error.clone())),
            PushResult::Refused { problems: p } => problems.extend(p.iter().map(|p| {
                Problem::at(&i.name, format!("not pushed, the local backup does not verify: {p}"))
            })),
            _ => {}
        }
    }
    let failed = items.iter().filter(|i| !i.ok()).count();
    // The newest whole copy in the store, for `status` (REMOTE_MAX_AGE_DAYS): remembered in
    // the state file, so that `status` never needs the network.
    if let Ok(listing) = remote.list() {
        if let Some(newest) =
            listing.copies.iter().filter(|c| c.status == Status::Ok).map(|c| c.created_at).max()
        {
            if let Ok(mut st) = crate::state::load(ctx) {
                if st.remote_newest != Some(newest) {
                    st.remote_newest = Some(newest);
                    crate::state::save(ctx, &st)?;
                }
            }
        }
    }
    let detail = format!(
        "{pushed} pushed, {there} already there, {skipped} skipped, {failed} failed (to {})",
        remote.config().url
    );
    Ok((failed == 0, detail, problems))
}

/// Writes a new private key to `path` (owner-only, never over an existing file) and
/// returns the public key to put in `MHM_REMOTE_RECIPIENT`.
pub fn keygen(ctx: &Ctx, path: &Path) -> Result<String> {
    crypt::keygen(&ctx.root, path, &ctx.now_local().to_rfc3339())
}
