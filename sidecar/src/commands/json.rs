//! The `--json` envelope: a command records its result, the run prints it once at the end.

use std::io::{self, Write};

use anyhow::{Context as _, Result};
use mhm_sidecar::Ctx;

use crate::exit_codes::ExitCode;

/// Records `value` as the command's JSON result: printed once, at the end of the run, in
/// the envelope every command's `--json` shares ([`emit_json`]).
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let value = serde_json::to_value(value).context("encoding JSON")?;
    *PENDING.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    Ok(())
}

/// The JSON result recorded by [`print_json`], until [`emit_json`] prints it.
static PENDING: std::sync::Mutex<Option<serde_json::Value>> = std::sync::Mutex::new(None);

/// Prints the run's JSON as one object (SPEC section 7, "JSON is a contract"):
/// `{"command": "backup list", "ok": true, ...}` with the command's own fields beside (a
/// list goes under the name [`list_key`] gives it), or `"error"` when the run failed
/// before it had a result. A closed stdout (`| head`) is not an error.
pub fn emit_json(command: &str, code: ExitCode, error: Option<&str>) -> Result<()> {
    use serde_json::{Map, Value};
    let result = PENDING.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut out = Map::new();
    out.insert("command".into(), Value::from(command));
    out.insert("ok".into(), Value::from(code == ExitCode::Success));
    match result {
        Some(Value::Object(fields)) => {
            for (k, v) in fields {
                // A report's own `ok` (a check's verdict) stays the envelope's.
                if k != "command" && k != "ok" {
                    out.insert(k, v);
                }
            }
        }
        Some(list @ Value::Array(_)) => {
            out.insert(list_key(command).into(), list);
        }
        Some(other) => {
            out.insert("result".into(), other);
        }
        None => {}
    }
    if let Some(e) = error {
        out.insert("exit_code".into(), Value::from(code.code()));
        out.insert("error".into(), Value::from(e));
    }
    let mut text = serde_json::to_string_pretty(&Value::Object(out)).context("encoding JSON")?;
    text.push('\n');
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if crate::out::closed(&e) => Ok(()),
        other => other.context("writing JSON to stdout"),
    }
}

/// The field a command's list goes under in its JSON object.
fn list_key(command: &str) -> &'static str {
    match command {
        "backup list" => "backups",
        "backup prune" | "remote prune" => "steps",
        "logs list" => "logs",
        "maintain" => "jobs",
        "snapshot list" => "snapshots",
        "remote push" => "pushed",
        _ => "items",
    }
}

/// `items` as JSON with the path field `key` of each replaced by the path as every output
/// shows it ([`Ctx::show`]: relative to the root with `/` when under it), not as the
/// platform wrote it.
pub fn with_shown_paths<T: serde::Serialize>(
    ctx: &Ctx,
    items: &[T],
    key: &str,
    path: impl Fn(&T) -> &std::path::Path,
) -> Result<serde_json::Value> {
    let mut value = serde_json::to_value(items).context("encoding JSON")?;
    if let Some(array) = value.as_array_mut() {
        for (v, item) in array.iter_mut().zip(items) {
            if let Some(obj) = v.as_object_mut() {
                obj.insert(key.to_string(), ctx.show(path(item)).into());
            }
        }
    }
    Ok(value)
}
