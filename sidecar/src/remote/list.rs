//! What the store holds: each record read and trusted only for the object of its own
//! name, each copy's object compared with its record; everything else is listed as not a
//! copy (an upload never confirmed, a record not trusted, a file not ours).

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Serialize;

use super::record::{self, Record};
use super::store::{self, Store};
use crate::backup::Kind;

/// How a copy in the store looks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Its object is there with the size (and ETag) recorded when it was confirmed.
    Ok,
    /// Its object is gone.
    Missing,
    /// Its object's size or ETag is not what was recorded.
    Changed,
}

/// One copy in the store.
#[derive(Clone, Debug, Serialize)]
pub struct Copy {
    /// The backup's name.
    pub name: String,
    /// Its retention group.
    pub kind: Kind,
    /// When the backup was made.
    pub created_at: DateTime<FixedOffset>,
    /// When it was pushed.
    pub pushed_at: DateTime<FixedOffset>,
    /// The backup's size.
    pub size: u64,
    /// The object's size in the store.
    pub stored_size: u64,
    /// Whether the object is encrypted.
    pub encrypted: bool,
    /// The object's key relative to the prefix.
    pub object: String,
    /// Whether its object is as recorded.
    pub status: Status,
    /// The record.
    #[serde(skip)]
    pub record: Record,
}

/// An object that is not part of a whole copy: an upload cut short before its record was
/// written, or a record that cannot be read.
#[derive(Clone, Debug, Serialize)]
pub struct Unfinished {
    /// The key relative to the prefix.
    pub object: String,
    /// Its size.
    pub size: u64,
    /// When the store last changed it.
    pub last_modified: DateTime<Utc>,
    /// Why it is not a copy.
    pub why: String,
    /// Never deleted by prune: the object of a record that cannot be trusted or read.
    #[serde(skip)]
    pub keep: bool,
}

/// What the store holds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Listing {
    /// The copies, oldest first.
    pub copies: Vec<Copy>,
    /// Objects that are not copies.
    pub unfinished: Vec<Unfinished>,
}

/// The copies in `store`, and what is there that is not a copy.
pub(super) fn listing(store: &Store) -> Result<Listing> {
    let objects = store.list()?;
    let by_name: BTreeMap<&str, &store::Object> =
        objects.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut listing = Listing::default();
    let mut claimed = std::collections::BTreeSet::new();
    let mut held = std::collections::BTreeSet::new();
    for o in &objects {
        let Some(name) = record::name_of_record(&o.name) else { continue };
        let rec = store
            .get_small(&o.name)
            .and_then(|b| serde_json::from_slice::<Record>(&b).context("not a valid record"));
        // A record speaks only for the object of its own name: one naming another
        // copy, or another copy's object, is not trusted (its prune would delete that
        // copy's data). A record that is not trusted or cannot be read keeps the
        // objects of its name: reported, never taken for an upload that never finished.
        let rec = match rec {
            Ok(r)
                if r.format == record::FORMAT
                    && r.name == name
                    && r.object == record::object_name(name, r.encrypted) =>
            {
                r
            }
            Ok(r) => {
                let why = if r.name != name {
                    "a record that names another copy: not trusted; its copy is kept"
                } else {
                    "a record whose object is not its own: not trusted; its copy is kept"
                };
                listing.unfinished.push(unfinished(o, why));
                held.extend([true, false].map(|enc| record::object_name(name, enc)));
                continue;
            }
            Err(e) => {
                listing.unfinished.push(unfinished(
                    o,
                    &format!("a record that cannot be read ({e:#}): its copy is kept"),
                ));
                held.extend([true, false].map(|enc| record::object_name(name, enc)));
                continue;
            }
        };
        claimed.insert(rec.object.clone());
        let status = match by_name.get(rec.object.as_str()) {
            None => Status::Missing,
            Some(obj) => {
                let etag_changed = match (
                    rec.etag.as_deref().and_then(record::md5_etag),
                    obj.meta.e_tag.as_deref().and_then(record::md5_etag),
                ) {
                    (Some(a), Some(b)) => !a.eq_ignore_ascii_case(b),
                    _ => false,
                };
                if obj.meta.size != rec.stored_size || etag_changed {
                    Status::Changed
                } else {
                    Status::Ok
                }
            }
        };
        listing.copies.push(Copy {
            name: rec.name.clone(),
            kind: rec.kind(),
            created_at: rec.created_at,
            pushed_at: rec.pushed_at,
            size: rec.plain_size,
            stored_size: rec.stored_size,
            encrypted: rec.encrypted,
            object: rec.object.clone(),
            status,
            record: rec,
        });
    }
    for o in &objects {
        if record::name_of_record(&o.name).is_none() && !claimed.contains(&o.name) {
            if held.contains(&o.name) {
                let mut u = unfinished(o, "the object of a record that is not trusted: kept");
                u.keep = true;
                listing.unfinished.push(u);
                continue;
            }
            let why = if record::name_of_object(&o.name).is_some() {
                "an upload that was never confirmed (no record): not a copy; the next push replaces it"
            } else {
                "not written by mhm-sidecar"
            };
            listing.unfinished.push(unfinished(o, why));
        }
    }
    listing.copies.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    Ok(listing)
}

pub(super) fn unfinished(o: &store::Object, why: &str) -> Unfinished {
    Unfinished {
        object: o.name.clone(),
        size: o.meta.size,
        last_modified: o.meta.last_modified,
        why: why.to_string(),
        keep: false,
    }
}
