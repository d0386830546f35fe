//! `system validate`: `data/user_index.json` is a JSON object, every user it lists has a
//! folder, every JSON file under `data/users/` parses, and every name there is UTF-8 (a
//! backup cannot store any other).

use std::{
    collections::BTreeSet,
    fs::{self, File},
    io::{self, BufReader},
    path::Path,
};

use serde::{
    de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer, Serialize,
};

use crate::{Ctx, Problem};

/// What the check found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Users listed in the index.
    pub users_listed: usize,
    /// JSON files checked under `data/users/`.
    pub json_files: usize,
    /// Every problem, each naming its file.
    pub problems: Vec<Problem>,
}

impl Report {
    /// No problems.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the data folder of `ctx`'s root (`<root>/data`).
pub fn check(ctx: &Ctx) -> Report {
    let data = ctx.data_dir();
    let mut report = Report::default();
    let index_path = data.join("user_index.json");
    let users_dir = data.join("users");
    match read_json::<TopLevel>(&index_path) {
        Err(e) => report.problems.push(Problem::at(ctx.show(&index_path), e)),
        Ok(TopLevel::Object(ids)) => {
            for id in &ids {
                let id = id.as_str();
                report.users_listed += 1;
                if !crate::paths::is_folder_name(id) {
                    report.problems.push(Problem::at(
                        ctx.show(&index_path),
                        format!("user id {id:?} is not a folder name"),
                    ));
                } else if !users_dir.join(id).is_dir() {
                    report.problems.push(Problem::at(
                        ctx.show(&index_path),
                        format!(
                            "user {id} is listed but {} is missing",
                            ctx.show(&users_dir.join(id))
                        ),
                    ));
                }
            }
        }
        Ok(TopLevel::Other(kind)) => report.problems.push(Problem::at(
            ctx.show(&index_path),
            format!("expected a JSON object, found {kind}"),
        )),
    }
    if users_dir.exists() {
        walk_json(ctx, &users_dir, &mut report);
    }
    report
}

fn walk_json(ctx: &Ctx, dir: &Path, report: &mut Report) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            report
                .problems
                .push(Problem::at(ctx.show(dir), format!("cannot read the folder: {e}")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_str().is_none() {
            report.problems.push(Problem::at(
                ctx.show(&path),
                "name is not valid UTF-8: backups cannot store it (rename it)",
            ));
        }
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk_json(ctx, &path, report);
        } else if ft.is_file() && path.extension().is_some_and(|e| e == "json") {
            report.json_files += 1;
            if let Err(e) = read_json::<IgnoredAny>(&path) {
                report.problems.push(Problem::at(ctx.show(&path), e));
            }
        }
    }
}

/// Parses the JSON file at `path` as it streams (a file of any size costs a buffer, plus
/// whatever `T` keeps: nothing for [`IgnoredAny`], the keys for [`TopLevel`]).
fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "missing".to_string(),
        _ => format!("cannot open: {e}"),
    })?;
    serde_json::from_reader(BufReader::with_capacity(1 << 16, file))
        .map_err(|e| format!("not valid JSON: {e}"))
}

/// An index's top level: the user ids it lists (everything else read and dropped), or what
/// else it is.
///
/// The ids, whichever shape the index has (SPEC.md, "The real MHM's files"): today lookup
/// keys map to ids (`"alice": "<uuid>"`, `"email:...": "<uuid>"`), so the ids are the
/// string values; an older shape holds `"users": {"<uuid>": {...}}`; the oldest maps each
/// id to its record. `last_updated` is never a user.
enum TopLevel {
    Object(BTreeSet<String>),
    Other(&'static str),
}

/// One value of an index, as much of it as the ids need.
enum IndexValue {
    /// A string: an id (a lookup key's target).
    Id(String),
    /// An object: its keys (for `users`, the ids).
    Keys(Vec<String>),
    /// Anything else.
    Other,
}

impl<'de> Deserialize<'de> for IndexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IndexValue;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_str<E>(self, s: &str) -> Result<IndexValue, E> {
                Ok(IndexValue::Id(s.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<IndexValue, A::Error> {
                let mut keys = Vec::new();
                while let Some((k, IgnoredAny)) = map.next_entry::<String, IgnoredAny>()? {
                    keys.push(k);
                }
                Ok(IndexValue::Keys(keys))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<IndexValue, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(IndexValue::Other)
            }

            fn visit_unit<E>(self) -> Result<IndexValue, E> {
                Ok(IndexValue::Other)
            }

            fn visit_bool<E>(self, _: bool) -> Result<IndexValue, E> {
                Ok(IndexValue::Other)
            }

            fn visit_i64<E>(self, _: i64) -> Result<IndexValue, E> {
                Ok(IndexValue::Other)
            }

            fn visit_u64<E>(self, _: u64) -> Result<IndexValue, E> {
                Ok(IndexValue::Other)
            }

            fn visit_f64<E>(self, _: f64) -> Result<IndexValue, E> {
                Ok(IndexValue::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = TopLevel;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON document")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut ids = BTreeSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    match (key.as_str(), map.next_value::<IndexValue>()?) {
                        ("last_updated", _) => {}
                        ("users", IndexValue::Keys(users)) => ids.extend(users),
                        (_, IndexValue::Id(id)) => {
                            ids.insert(id);
                        }
                        _ => {
                            ids.insert(key);
                        }
                    }
                }
                Ok(TopLevel::Object(ids))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other("an array"))
            }

            fn visit_unit<E>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("null"))
            }

            fn visit_bool<E>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a boolean"))
            }

            fn visit_i64<E>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_u64<E>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_f64<E>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_str<E>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a string"))
            }
        }
        d.deserialize_any(Top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // regression: today's lookup index read its keys as user ids (14 false problems)
    #[test]
    fn every_index_shape_lists_the_ids() {
        let ids = |text: &str| match serde_json::from_str::<TopLevel>(text).unwrap() {
            TopLevel::Object(ids) => ids.into_iter().collect::<Vec<_>>(),
            TopLevel::Other(what) => panic!("{what}"),
        };
        assert_eq!(
            ids(r#"{"last_updated": "x", "alice": "u-1", "email:a@x.org": "u-1",
                    "discord:42": "u-1", "phone:555": "u-1", "bob": "u-2"}"#),
            ["u-1", "u-2"]
        );
        assert_eq!(
            ids(r#"{"users": {"u-1": {"name": "a"}, "u-2": {}}, "last_updated": "x"}"#),
            ["u-1", "u-2"]
        );
        assert_eq!(ids(r#"{"u-1": {"name": "a"}, "last_updated": "x"}"#), ["u-1"]);
    }

    #[test]
    fn finds_each_problem() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        fs::create_dir_all(data.join("users/u1")).unwrap();
        fs::write(data.join("user_index.json"), r#"{"u1": {}, "u2": {}, "last_updated": "x"}"#)
            .unwrap();
        fs::write(data.join("users/u1/account.json"), "{").unwrap();
        let ctx = Ctx::new(dir.path(), chrono::Utc::now()).unwrap();
        let report = check(&ctx);
        assert_eq!(report.users_listed, 2);
        let shown: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(
            shown[0],
            "data/user_index.json: user u2 is listed but data/users/u2 is missing"
        );
        assert!(shown[1].starts_with("data/users/u1/account.json: "), "{shown:?}");
        fs::write(data.join("users/u1/account.json"), "{}").unwrap();
        fs::create_dir_all(data.join("users/u2")).unwrap();
        assert!(check(&ctx).ok());
        fs::write(data.join("user_index.json"), "[]").unwrap();
        assert!(check(&ctx).problems[0].what.contains("expected a JSON object"));
    }
}
