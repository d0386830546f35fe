//! `system validate`: `data/user_index.json` is a JSON object, every user it lists has a
//! folder, every JSON file under `data/users/` parses, and every name there is UTF-8 (a
//! backup cannot store any other).

use std::{
    fs::{self, File},
    io::{self, BufReader},
    path::Path,
};

use serde::Serialize;

use crate::Problem;

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

/// Checks the data folder `data` (`<root>/data`).
pub fn check(data: &Path) -> Report {
    let mut report = Report::default();
    let index_path = data.join("user_index.json");
    let users_dir = data.join("users");
    match read_json(&index_path) {
        Err(e) => report.problems.push(Problem::at(index_path.display(), e)),
        Ok(serde_json::Value::Object(map)) => {
            for id in map.keys().filter(|k| k.as_str() != "last_updated") {
                report.users_listed += 1;
                if !crate::paths::is_folder_name(id) {
                    report.problems.push(Problem::at(
                        index_path.display(),
                        format!("user id {id:?} is not a folder name"),
                    ));
                } else if !users_dir.join(id).is_dir() {
                    report.problems.push(Problem::at(
                        index_path.display(),
                        format!(
                            "user {id} is listed but {} is missing",
                            users_dir.join(id).display()
                        ),
                    ));
                }
            }
        }
        Ok(other) => report.problems.push(Problem::at(
            index_path.display(),
            format!("expected a JSON object, found {}", kind(&other)),
        )),
    }
    if users_dir.exists() {
        walk_json(&users_dir, &mut report);
    }
    report
}

fn walk_json(dir: &Path, report: &mut Report) {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            report
                .problems
                .push(Problem::at(dir.display(), format!("cannot read the folder: {e}")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_str().is_none() {
            report.problems.push(Problem::at(
                path.display(),
                "name is not valid UTF-8: backups cannot store it (rename it)",
            ));
        }
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk_json(&path, report);
        } else if ft.is_file() && path.extension().is_some_and(|e| e == "json") {
            report.json_files += 1;
            if let Err(e) = read_json(&path) {
                report.problems.push(Problem::at(path.display(), e));
            }
        }
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, String> {
    let file = File::open(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => "missing".to_string(),
        _ => format!("cannot open: {e}"),
    })?;
    serde_json::from_reader(BufReader::new(file)).map_err(|e| format!("not valid JSON: {e}"))
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_problem() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path();
        fs::create_dir_all(data.join("users/u1")).unwrap();
        fs::write(data.join("user_index.json"), r#"{"u1": {}, "u2": {}, "last_updated": "x"}"#)
            .unwrap();
        fs::write(data.join("users/u1/account.json"), "{").unwrap();
        let report = check(data);
        assert_eq!(report.users_listed, 2);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        fs::write(data.join("users/u1/account.json"), "{}").unwrap();
        fs::create_dir_all(data.join("users/u2")).unwrap();
        assert!(check(data).ok());
        fs::write(data.join("user_index.json"), "[]").unwrap();
        assert!(check(data).problems[0].what.contains("expected a JSON object"));
    }
}
