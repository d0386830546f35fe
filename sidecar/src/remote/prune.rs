//! Retention in the store, per kind as for local backups; never the newest whole copy,
//! nor the newest whole one holding user data; uploads that never finished go a day old.

use anyhow::Result;

use super::list::{self, Copy, Status};
use super::record;
use super::store::Store;
use crate::{
    backup::{Kind, PruneResult, PruneStep},
    Ctx,
};

/// Retention for copies in the store.
#[derive(Clone, Copy, Debug)]
pub struct PrunePolicy {
    /// Copies this many days old or older go.
    pub retention_days: u64,
    /// At most this many copies of each kind stay.
    pub max_count: u64,
}

/// An unfinished upload's object is deleted by prune once it is this old.
pub const UNFINISHED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Deletes the copies in `store` past `policy` (see [`super::Remote::prune`]).
pub(super) fn prune(
    store: &Store,
    ctx: &Ctx,
    policy: PrunePolicy,
    dry_run: bool,
) -> Result<Vec<PruneStep>> {
    let listing = list::listing(store)?;
    let now = ctx.now.fixed_offset();
    let mut doomed: Vec<(&Copy, String)> = Vec::new();
    for kind in [Kind::Weekly, Kind::Manual, Kind::Safety] {
        let of_kind = listing.copies.iter().rev().filter(|c| c.kind == kind);
        for (i, c) in of_kind.enumerate() {
            let age = now.signed_duration_since(c.created_at);
            // A retention past what a time span can hold keeps every copy (saturated,
            // as local prune does), never wraps to a negative one that deletes them.
            let limit = i64::try_from(policy.retention_days)
                .ok()
                .and_then(chrono::TimeDelta::try_days)
                .unwrap_or(chrono::TimeDelta::MAX);
            let why = if age >= limit {
                format!("older than {} days", policy.retention_days)
            } else if i as u64 >= policy.max_count {
                format!("more than {} {kind:?} copies", policy.max_count).to_lowercase()
            } else {
                continue;
            };
            doomed.push((c, why));
        }
    }
    let whole = |c: &&Copy| c.status == Status::Ok;
    if let Some(keep) = listing.copies.iter().rev().find(whole) {
        doomed.retain(|(c, _)| c.name != keep.name);
    }
    if let Some(keep) = listing.copies.iter().rev().filter(|c| c.record.includes.users).find(whole)
    {
        doomed.retain(|(c, _)| c.name != keep.name);
    }
    let mut steps = Vec::new();
    for (c, why) in doomed {
        let result = if dry_run {
            PruneResult::WouldDelete
        } else {
            // The record first: from then on the object is not a copy, whatever happens.
            let deleted =
                store.delete(&record::record_name(&c.name)).and_then(|()| store.delete(&c.object));
            match deleted {
                Ok(()) => {
                    tracing::info!(target: "mhm::sidecar", "remote prune: deleted {} ({why})", c.name);
                    PruneResult::Deleted
                }
                Err(e) => PruneResult::Failed(store.config.secrets.scrub(&format!("{e:#}"))),
            }
        };
        steps.push(PruneStep { name: c.name.clone(), why, result });
    }
    for u in &listing.unfinished {
        let stale = ctx.now.signed_duration_since(u.last_modified) >= UNFINISHED_AFTER;
        if !stale || u.keep || record::name_of_object(&u.object).is_none() {
            continue;
        }
        let why = "an upload that never finished, a day old".to_string();
        let result = if dry_run {
            PruneResult::WouldDelete
        } else {
            match store.delete(&u.object) {
                Ok(()) => PruneResult::Deleted,
                Err(e) => PruneResult::Failed(store.config.secrets.scrub(&format!("{e:#}"))),
            }
        };
        steps.push(PruneStep { name: u.object.clone(), why, result });
    }
    Ok(steps)
}
