//! What the store holds: each record read and trusted only for the object of its own
//! name, each copy's object compared with its record; everything else is listed as not a
//! copy (an upload never confirmed, a record not trusted, a file not ours).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::{record, store, Copy, Listing, Record, Remote, Status, Unfinished};

impl Remote {
    pub(super) fn list_inner(&self) -> Result<Listing> {
        let objects = self.store.list()?;
        let by_name: BTreeMap<&str, &store::Object> =
            objects.iter().map(|o| (o.name.as_str(), o)).collect();
        let mut listing = Listing::default();
        let mut claimed = std::collections::BTreeSet::new();
        let mut held = std::collections::BTreeSet::new();
        for o in &objects {
            let Some(name) = record::name_of_record(&o.name) else { continue };
            let rec = self
                .store
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
