//! The remote settings (SPEC section 10), read once per run from flags, the environment
//! and `.env`, and the list of secrets that must never leave the process in a message.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    error::usage,
    settings::{BadSetting, Lookup},
    Ctx,
};

/// Where copies go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `s3://bucket/prefix`: S3-compatible object storage.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix ("" for the bucket's top).
        prefix: String,
    },
    /// `file:///path`: another folder (an external disk). It must exist: an unmounted
    /// disk is an error, not a reason to fill a folder on the disk being protected.
    Folder(PathBuf),
}

/// What the command line can set instead of the environment and `.env`.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Instead of `MHM_REMOTE_URL`.
    pub url: Option<String>,
    /// Instead of `MHM_REMOTE_RECIPIENT`.
    pub recipient: Option<String>,
    /// Instead of `MHM_REMOTE_IDENTITY_FILE`.
    pub identity_file: Option<PathBuf>,
}

/// Every remote setting of one run.
#[derive(Clone)]
pub struct Config {
    /// `MHM_REMOTE_URL`, parsed.
    pub target: Target,
    /// The URL as the user gave it (holds no credentials: those are refused).
    pub url: String,
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<String>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<String>,
    /// `AWS_REGION` (default `us-east-1`).
    pub region: String,
    /// `AWS_ENDPOINT_URL`: a server other than AWS (MinIO, SeaweedFS, R2, ...).
    pub endpoint: Option<String>,
    /// `MHM_REMOTE_RECIPIENT`: the age public key copies are encrypted to.
    pub recipient: Option<String>,
    /// `MHM_REMOTE_IDENTITY_FILE`: the age private key file, for verify and pull.
    pub identity_file: Option<PathBuf>,
    /// `REMOTE_RETENTION_DAYS` (90).
    pub retention_days: u64,
    /// `REMOTE_MAX_COUNT` (20), per kind.
    pub max_count: u64,
    /// What must never appear in a message.
    pub secrets: Secrets,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys, even in a debug dump.
        f.debug_struct("Config")
            .field("target", &self.target)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("recipient", &self.recipient)
            .field("identity_file", &self.identity_file)
            .finish_non_exhaustive()
    }
}

/// The setting names, in one place.
pub mod names {
    /// Where copies go.
    pub const URL: &str = "MHM_REMOTE_URL";
    /// S3 access key id.
    pub const ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
    /// S3 secret key.
    pub const SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
    /// S3 session token (temporary credentials).
    pub const SESSION_TOKEN: &str = "AWS_SESSION_TOKEN";
    /// S3 region.
    pub const REGION: &str = "AWS_REGION";
    /// S3 endpoint other than AWS.
    pub const ENDPOINT: &str = "AWS_ENDPOINT_URL";
    /// The age public key.
    pub const RECIPIENT: &str = "MHM_REMOTE_RECIPIENT";
    /// The age private key file.
    pub const IDENTITY_FILE: &str = "MHM_REMOTE_IDENTITY_FILE";
    /// Copies this many days old or older are pruned.
    pub const RETENTION_DAYS: &str = "REMOTE_RETENTION_DAYS";
    /// At most this many copies per kind.
    pub const MAX_COUNT: &str = "REMOTE_MAX_COUNT";
}

/// Whether off-site copies are configured (`MHM_REMOTE_URL` set and not empty, or on a
/// `.env` line that does not parse: the push is then not run, naming it, rather than
/// forgotten).
pub fn configured(ctx: &Ctx) -> bool {
    ctx.setting(names::URL).is_some_and(|v| !v.trim().is_empty()) || ctx.settings.is_bad(names::URL)
}

impl Config {
    /// Reads every remote setting; a bad or missing one is a usage error naming it.
    /// Secret values are never part of a message.
    pub fn from_ctx(ctx: &Ctx, over: &Overrides) -> Result<Self> {
        let get =
            |name: &str| ctx.setting(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut secrets = Secrets::default();
        let access_key_id = get(names::ACCESS_KEY_ID);
        let secret_access_key = get(names::SECRET_ACCESS_KEY);
        let session_token = get(names::SESSION_TOKEN);
        for s in [&access_key_id, &secret_access_key, &session_token].into_iter().flatten() {
            secrets.add(s);
        }
        let (url, from) = match &over.url {
            Some(u) => (u.trim().to_string(), "--url".to_string()),
            None => match get(names::URL) {
                Some(u) => (u, ctx.setting_source(names::URL)),
                None => {
                    return Err(usage(format!(
                        "{} is not set: give s3://bucket/prefix or file:///path (flag --url, the environment or .env)",
                        names::URL
                    )))
                }
            },
        };
        let target = check_url(&url, &from).map_err(usage)?;
        let endpoint = get(names::ENDPOINT);
        if let Some(e) = &endpoint {
            check_endpoint(e, &ctx.setting_source(names::ENDPOINT)).map_err(usage)?;
        }
        if matches!(target, Target::S3 { .. }) {
            match (&access_key_id, &secret_access_key) {
                (Some(_), Some(_)) => {}
                (None, _) => {
                    return Err(usage(format!(
                        "{} is not set (needed for {url})",
                        names::ACCESS_KEY_ID
                    )))
                }
                (_, None) => {
                    return Err(usage(format!(
                        "{} is not set (needed for {url})",
                        names::SECRET_ACCESS_KEY
                    )))
                }
            }
        }
        let recipient = over.recipient.clone().or_else(|| get(names::RECIPIENT));
        // The flag is relative to the current directory, the setting to the root (as
        // LOG_BACKUP_DIR is).
        let identity_file = match &over.identity_file {
            Some(p) => Some(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            None => get(names::IDENTITY_FILE).map(|v| ctx.root.join(v)),
        };
        Ok(Self {
            target,
            url,
            access_key_id,
            secret_access_key,
            session_token,
            region: get(names::REGION).unwrap_or_else(|| "us-east-1".to_string()),
            endpoint,
            recipient,
            identity_file,
            retention_days: ctx.settings.remote_retention_days.get()?,
            max_count: ctx.settings.remote_max_count.get()?,
            secrets,
        })
    }

    /// Where copies go, for messages: the URL, and the endpoint when there is one.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} at {e}", self.url),
            None => self.url.clone(),
        }
    }
}

/// The off-site settings whose value does not parse, read from `lookup` (the environment,
/// then `.env`) when the context is made, so that they are named with every other bad
/// setting (SPEC.md section 7) and stop only the push: `MHM_REMOTE_URL`,
/// `AWS_ENDPOINT_URL` and `MHM_REMOTE_RECIPIENT`, checked as [`Config::from_ctx`] and the
/// push check them. Nothing is sent: whether the store is there is for the commands that
/// use it to find out.
pub(crate) fn bad_settings(lookup: Lookup<'_>) -> Vec<BadSetting> {
    let get = |name: &str| {
        lookup(name).map(|(v, from)| (v.trim().to_string(), from)).filter(|(v, _)| !v.is_empty())
    };
    let mut bad = Vec::new();
    let mut push = |name: &str, what: Result<(), String>| {
        if let Err(what) = what {
            bad.push(BadSetting { name: name.to_string(), what });
        }
    };
    // Without a URL there are no off-site copies: the other settings are not used, and a
    // placeholder left in `.env` (or an `AWS_ENDPOINT_URL` another tool set) is no fault.
    let Some((url, from)) = get(names::URL) else { return bad };
    push(names::URL, check_url(&url, &from).map(drop));
    if let Some((endpoint, from)) = get(names::ENDPOINT) {
        push(names::ENDPOINT, check_endpoint(&endpoint, &from));
    }
    if let Some((recipient, from)) = get(names::RECIPIENT) {
        let parsed = super::crypt::recipient(&recipient);
        push(names::RECIPIENT, parsed.map(drop).map_err(|e| format!("{e:#} (from {from})")));
    }
    bad
}

/// `MHM_REMOTE_URL` (from `from`: a flag, the environment, `.env`) as a target; the error
/// names the setting and where it came from, never credentials.
fn check_url(url: &str, from: &str) -> Result<Target, String> {
    parse_url(url).map_err(|why| {
        format!("invalid value {} for {} (from {from}): {why}", shown(url), names::URL)
    })
}

/// Fails unless `AWS_ENDPOINT_URL` is `http(s)://host[:port]` without credentials.
fn check_endpoint(endpoint: &str, from: &str) -> Result<(), String> {
    let ok = url::Url::parse(endpoint).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.username().is_empty()
            && u.password().is_none()
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid value {} for {} (from {from}): expected http(s)://host[:port], without credentials",
            shown(endpoint),
            names::ENDPOINT,
        ))
    }
}

/// A value shown in a message, unless it might hold credentials (`user:pass@`).
fn shown(value: &str) -> String {
    if value.contains('@') {
        "(not shown: it holds an '@')".to_string()
    } else {
        format!("{value:?}")
    }
}

/// `s3://bucket[/prefix]` or `file:///absolute/path`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "credentials do not belong in the URL: use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                .into(),
        );
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err("a query or fragment is not allowed".into());
    }
    match parsed.scheme() {
        "s3" => {
            let bucket = parsed.host_str().unwrap_or("").to_string();
            let valid = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && !bucket.starts_with(['-', '.'])
                && !bucket.ends_with(['-', '.']);
            if !valid {
                return Err("expected s3://bucket/prefix with a bucket name of 3 to 63 lowercase letters, digits, '-' or '.'".into());
            }
            let prefix = parsed.path().trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") {
                return Err("the prefix must not hold '.', '..' or empty parts".into());
            }
            Ok(Target::S3 { bucket, prefix })
        }
        "file" => {
            let path =
                parsed.to_file_path().map_err(|()| "expected file:///absolute/path".to_string())?;
            Ok(Target::Folder(path))
        }
        other => Err(format!("the scheme {other:?} is not supported: use s3:// or file://")),
    }
}

/// Strings that must never appear in output, logs or error messages: the S3 credentials
/// and any age private key read during the run.
#[derive(Clone, Default)]
pub struct Secrets(Vec<String>);

/// How many, never what they are.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

impl Secrets {
    /// One more secret (ignored when too short to be one, so that no common word is
    /// blanked out of every message).
    pub fn add(&mut self, secret: &str) {
        if secret.len() >= 4 && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_string());
            // Longest first, so a secret holding another is blanked whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret, and anything shaped like an age private key, replaced
    /// by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[redacted]");
            }
        }
        scrub_age_keys(&out)
    }

    /// An error with its whole chain scrubbed; a usage error stays one (exit code 2).
    pub fn scrub_error(&self, err: anyhow::Error) -> anyhow::Error {
        let text = self.scrub(&format!("{err:#}"));
        if err.downcast_ref::<crate::UsageError>().is_some() {
            usage(text)
        } else {
            anyhow::Error::msg(text)
        }
    }
}

/// Replaces `AGE-SECRET-KEY-1...` (any case) by `[redacted]`.
fn scrub_age_keys(text: &str) -> String {
    const MARK: &str = "AGE-SECRET-KEY-1";
    let upper = text.to_ascii_uppercase();
    if !upper.contains(MARK) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while let Some(at) = upper[i..].find(MARK) {
        let start = i + at;
        out.push_str(&text[i..start]);
        let end = start
            + MARK.len()
            + text[start + MARK.len()..].bytes().take_while(u8::is_ascii_alphanumeric).count();
        out.push_str("[redacted]");
        i = end;
    }
    out.push_str(&text[i..]);
    out
}

/// The identity file's path for messages (never its content): relative to the MHM `root`
/// where it lies under it ([`crate::paths::show`]).
pub fn show_path(root: &Path, path: &Path) -> String {
    crate::paths::show(root, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("s3://my-bucket/a/b/").unwrap(),
            Target::S3 { bucket: "my-bucket".into(), prefix: "a/b".into() }
        );
        assert_eq!(
            parse_url("s3://my-bucket").unwrap(),
            Target::S3 { bucket: "my-bucket".into(), prefix: String::new() }
        );
        #[cfg(unix)]
        assert_eq!(
            parse_url("file:///mnt/disk/mhm").unwrap(),
            Target::Folder("/mnt/disk/mhm".into())
        );
        assert!(parse_url("s3://Bad_Bucket/x").is_err());
        assert!(parse_url("s3://key:secret@bucket/x").unwrap_err().contains("credentials"));
        assert!(parse_url("http://bucket/x").is_err());
        assert!(parse_url("/just/a/path").is_err());
        // URLs are normalised as browsers do: `..` never escapes the bucket.
        assert_eq!(
            parse_url("s3://bucket/a/../../b").unwrap(),
            Target::S3 { bucket: "bucket".into(), prefix: "b".into() }
        );
    }

    #[test]
    fn scrubbing() {
        let mut s = Secrets::default();
        s.add("hunter2hunter2");
        s.add("ab"); // too short to blank out
        assert_eq!(s.scrub("key hunter2hunter2 ab"), "key [redacted] ab");
        assert_eq!(
            s.scrub("x AGE-SECRET-KEY-1QQQ9ZZ y age-secret-key-1abc."),
            "x [redacted] y [redacted]."
        );
    }
}
