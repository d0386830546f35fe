//! `remote push | list | verify | pull | prune | keygen` and `maintain`'s daily push,
//! against a real S3 server (SeaweedFS, started per test) and a `file://` folder.
//! Every output and `logs/sidecar.log` is searched for the credentials and keys.

use crate::common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Output,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use common::{seaweed::Weed, *};
use mhm_sidecar::{
    remote::{self, Overrides, PushOptions, PushResult, Remote},
    Bar, Ctx, FailPoint, Faults, Progress,
};

/// A root with settings in its `.env` and a key pair; every output is kept so that the
/// secrets can be searched for at the end.
struct Case {
    root: tempfile::TempDir,
    keys: tempfile::TempDir,
    outputs: Vec<String>,
    secrets: Vec<String>,
}

impl Case {
    fn new(settings: &[(String, String)]) -> Self {
        let root = make_root();
        let keys = tempfile::tempdir().unwrap();
        let mut case = Case { root, keys, outputs: Vec::new(), secrets: Vec::new() };
        let key = case.keys.path().join("key.txt");
        let out = case.run(&["remote", "keygen", key.to_str().unwrap()]);
        assert_code(&out, 0);
        let public = stdout(&out).trim().to_string();
        assert!(public.starts_with("age1"), "{public}");
        case.remember_key(&key);
        let mut s = settings.to_vec();
        s.push(("MHM_REMOTE_RECIPIENT".into(), public));
        s.push(("MHM_REMOTE_IDENTITY_FILE".into(), key.display().to_string()));
        for (k, v) in settings {
            if k.starts_with("AWS_ACCESS") || k.starts_with("AWS_SECRET") {
                case.secrets.push(v.clone());
            }
        }
        case.set_env(&s);
        case
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn remember_key(&mut self, key: &Path) {
        let text = fs::read_to_string(key).unwrap();
        let secret = text.lines().find(|l| l.starts_with("AGE-SECRET-KEY-1")).unwrap();
        self.secrets.push(secret.to_string());
    }

    /// Rewrites `.env`: the root's own lines, then `settings`.
    fn set_env(&self, settings: &[(String, String)]) {
        let mut text = String::from("# config\nAPP_MODE=test\n");
        for (k, v) in settings {
            text.push_str(&format!("{k}={v}\n"));
        }
        fs::write(self.path().join(".env"), text).unwrap();
    }

    /// Replaces (or adds) one setting in `.env`.
    fn set(&self, key: &str, value: &str) {
        let text = fs::read_to_string(self.path().join(".env")).unwrap();
        let mut lines: Vec<String> =
            text.lines().filter(|l| !l.starts_with(&format!("{key}="))).map(String::from).collect();
        lines.push(format!("{key}={value}"));
        fs::write(self.path().join(".env"), lines.join("\n") + "\n").unwrap();
    }

    fn run(&mut self, args: &[&str]) -> Output {
        let out = run(self.root.path(), args);
        self.outputs.push(format!("{args:?}\n{}\n{}", stdout(&out), stderr(&out)));
        out
    }

    fn json(&mut self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.run(&a);
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}\n{}", stdout(&out), stderr(&out)))
    }

    fn backup(&mut self, name: &str, now: &str) -> PathBuf {
        assert_code(&self.run(&["--now", now, "backup", "create", "--name", name]), 0);
        self.path().join("data/backups").join(format!("{name}.zip"))
    }

    fn copies(&mut self) -> Vec<serde_json::Value> {
        self.json(&["remote", "list"])["copies"].as_array().unwrap().clone()
    }

    fn ctx(&self, faults: Vec<FailPoint>) -> Ctx {
        Ctx::new(self.path(), chrono::Utc::now()).unwrap().with_faults(Faults(faults))
    }

    /// No secret in any output, nor in the sidecar's log.
    #[track_caller]
    fn assert_no_secret(&self) {
        assert!(!self.secrets.is_empty());
        let log = fs::read_to_string(self.path().join("logs/sidecar.log")).unwrap_or_default();
        for s in &self.secrets {
            for o in &self.outputs {
                assert!(!o.contains(s.as_str()), "a secret appears in an output:\n{o}");
            }
            assert!(!log.contains(s.as_str()), "a secret appears in logs/sidecar.log");
        }
    }
}

fn folder_settings(dir: &Path) -> Vec<(String, String)> {
    let url = format!("file://{}", dir.display());
    vec![("MHM_REMOTE_URL".into(), url)]
}

fn names_of(copies: &[serde_json::Value]) -> Vec<String> {
    copies.iter().map(|c| c["name"].as_str().unwrap().to_string()).collect()
}

/// No temporary file left in data/backups.
#[track_caller]
fn no_temp_files(root: &Path) {
    let left: Vec<String> =
        names(&root.join("data/backups")).into_iter().filter(|n| n.starts_with(".tmp-")).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The whole life of copies: push (dry run, real, again), list, verify, pull (refused
/// over a file, then placed byte for byte), prune (dry run, by count, by age).
fn round_trip(case: &mut Case, confirmed_by: &str) {
    let r = case.path().to_path_buf();
    let first = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    case.backup("weekly_backup_20260302_000000", "2026-03-02T00:00:00Z");
    let original = fs::read(&first).unwrap();

    let out = case.run(&["--dry-run", "remote", "push"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).matches("would push").count(), 2, "{}", stdout(&out));
    assert!(case.copies().is_empty());

    let before = snapshot(&r.join("data/backups"));
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).matches("pushed").count(), 2, "{}", stdout(&out));
    assert!(stdout(&out).contains("encrypted"), "{}", stdout(&out));
    // S3 confirms by the multipart ETag computed while sending; a folder by reading back.
    let confirmed = format!("confirmed by {confirmed_by}");
    assert_eq!(stdout(&out).matches(&confirmed).count(), 2, "{}", stdout(&out));
    assert_same(&before, &snapshot(&r.join("data/backups")));
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).matches("already there").count(), 2, "{}", stdout(&out));

    let copies = case.copies();
    assert_eq!(names_of(&copies), ["mhm_backup_20260301_000000", "weekly_backup_20260302_000000"]);
    for c in &copies {
        assert_eq!(c["status"], "ok", "{c}");
        assert_eq!(c["encrypted"], true, "{c}");
    }
    assert_eq!(copies[0]["size"], original.len());
    assert_eq!(copies[1]["kind"], "weekly");

    let out = case.run(&["remote", "verify", "mhm_backup_20260301_000000"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("valid"), "{}", stdout(&out));
    no_temp_files(&r);

    // A pull never replaces a backup.
    let out = case.run(&["remote", "pull", "mhm_backup_20260301_000000"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(fs::read(&first).unwrap(), original);
    fs::remove_file(&first).unwrap();
    let out = case.run(&["remote", "pull", "mhm_backup_20260301_000000.zip"]);
    assert_code(&out, 0);
    assert_eq!(fs::read(&first).unwrap(), original, "pulled back byte for byte");
    no_temp_files(&r);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&first).unwrap().permissions().mode() & 0o777, 0o600);
    }

    // Prune: per kind, by count, then by age; never the newest whole copy.
    case.backup("mhm_backup_20260303_000000", "2026-03-03T00:00:00Z");
    assert_code(&case.run(&["remote", "push", "mhm_backup_20260303_000000"]), 0);
    let out = case.run(&[
        "--now",
        "2026-03-04T00:00:00Z",
        "--dry-run",
        "remote",
        "prune",
        "--max-count",
        "1",
    ]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        "would delete mhm_backup_20260301_000000 (more than 1 manual copies)"
    );
    assert_eq!(case.copies().len(), 3, "a dry run deletes nothing");
    let out = case.run(&["--now", "2026-03-04T00:00:00Z", "remote", "prune", "--max-count", "1"]);
    assert_code(&out, 0);
    assert_eq!(
        names_of(&case.copies()),
        ["weekly_backup_20260302_000000", "mhm_backup_20260303_000000"]
    );
    let out = case.run(&["--now", "2027-01-01T00:00:00Z", "remote", "prune"]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("deleted weekly_backup_20260302_000000 (older than 90 days)"));
    assert_eq!(names_of(&case.copies()), ["mhm_backup_20260303_000000"], "the newest stays");
    case.assert_no_secret();
}

#[test]
fn folder_push_list_verify_pull_prune() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    round_trip(&mut case, "read-back");
    // The store holds only ciphertext: no zip signature, no file name from the backup.
    for n in names(store.path()) {
        let bytes = fs::read(store.path().join(&n)).unwrap();
        if n.ends_with(".age") {
            assert!(bytes.starts_with(b"age-encryption.org/v1"), "{n}");
            assert!(!bytes.windows(4).any(|w| w == b"PK\x03\x04"), "{n} holds zip data");
        }
    }
}

#[test]
fn s3_push_list_verify_pull_prune() {
    let weed = Weed::start();
    let mut case = Case::new(&weed.env("mhm/offsite"));
    round_trip(&mut case, "etag");
}

#[test]
fn no_encrypt_stores_the_zip_as_it_is() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let path = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    let out = case.run(&["remote", "push", "--no-encrypt"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("--no-encrypt"), "{}", stderr(&out));
    assert_eq!(
        fs::read(store.path().join("mhm_backup_20260301_000000.zip")).unwrap(),
        fs::read(&path).unwrap()
    );
    assert_eq!(case.copies()[0]["encrypted"], false);
    // Without a recipient and without --no-encrypt, nothing is pushed unencrypted.
    case.set("MHM_REMOTE_RECIPIENT", "");
    case.backup("mhm_backup_20260302_000000", "2026-03-02T00:00:00Z");
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("MHM_REMOTE_RECIPIENT"), "{}", stderr(&out));
    assert_eq!(case.copies().len(), 1);
    assert_code(&case.run(&["remote", "verify", "mhm_backup_20260301_000000"]), 0);
}

/// A progress hook that kills the server once `at` bytes of the backup were read.
struct KillAt {
    weed: Arc<Mutex<Weed>>,
    at: u64,
    seen: AtomicU64,
    killed: AtomicBool,
}

struct KillBar(Arc<KillAt>);

struct KillProgress(Arc<KillAt>);

impl Progress for KillProgress {
    fn start(&self, _what: &str, _total: u64) -> Box<dyn Bar> {
        Box::new(KillBar(self.0.clone()))
    }
}

impl Bar for KillBar {
    fn inc(&self, n: u64) {
        let seen = self.0.seen.fetch_add(n, Ordering::SeqCst) + n;
        if seen >= self.0.at && !self.0.killed.swap(true, Ordering::SeqCst) {
            self.0.weed.lock().unwrap().kill();
        }
    }
    fn finish(&self) {}
}

/// Adds `mb` MiB of incompressible data to user u1, so a backup spans several parts.
fn add_bulk(root: &Path, mb: usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let bytes: Vec<u8> = (0..mb << 17).flat_map(|_| rng.next().to_le_bytes()).collect();
    write(&root.join("data/users/u1/bulk.bin"), bytes);
}

/// The smallest part S3 takes (SeaweedFS enforces it too).
const SMALL_PARTS: PushOptions = PushOptions { encrypt: true, part_size: 5 << 20, dry_run: false };

#[test]
fn s3_server_killed_mid_upload_then_rerun_completes() {
    let weed = Arc::new(Mutex::new(Weed::start()));
    let settings = weed.lock().unwrap().env("killed");
    let mut case = Case::new(&settings);
    add_bulk(case.path(), 7);
    let path = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    let before = snapshot(&case.path().join("data/backups"));
    let hook = Arc::new(KillAt {
        weed: weed.clone(),
        at: 6 << 20,
        seen: AtomicU64::new(0),
        killed: AtomicBool::new(false),
    });
    let ctx = case.ctx(Vec::new()).with_progress(Arc::new(KillProgress(hook.clone())));
    let remote = Remote::open(&ctx, &Overrides::default()).unwrap();
    let started = std::time::Instant::now();
    let items = remote.push(&ctx, &[], SMALL_PARTS).unwrap();
    assert!(hook.killed.load(Ordering::SeqCst), "the server was killed mid-upload");
    let PushResult::Failed { error } = &items[0].result else { panic!("{items:?}") };
    assert!(error.contains("cannot be reached"), "{error}");
    assert!(started.elapsed().as_secs() < 60, "gave up in {:?}", started.elapsed());
    for s in &case.secrets {
        assert!(!error.contains(s.as_str()), "{error}");
    }
    assert_same(&before, &snapshot(&case.path().join("data/backups")));

    // The server comes back: the cut upload is not a copy; a rerun pushes it whole.
    let settings = {
        let mut w = weed.lock().unwrap();
        w.restart();
        w.env("killed")
    };
    let recipient = fs::read_to_string(case.path().join(".env")).unwrap();
    case.set_env(&settings);
    for line in recipient
        .lines()
        .filter(|l| l.starts_with("MHM_REMOTE_RECIPIENT") || l.starts_with("MHM_REMOTE_IDENTITY"))
    {
        let (k, v) = line.split_once('=').unwrap();
        case.set(k, v);
    }
    assert!(case.copies().is_empty(), "nothing incomplete is listed as a copy");
    let ctx = case.ctx(Vec::new());
    let remote = Remote::open(&ctx, &Overrides::default()).unwrap();
    let items = remote.push(&ctx, &[], SMALL_PARTS).unwrap();
    assert!(matches!(items[0].result, PushResult::Pushed { .. }), "{items:?}");
    let copies = case.copies();
    assert_eq!(copies.len(), 1);
    assert!(copies[0]["stored_size"].as_u64().unwrap() > fs::metadata(&path).unwrap().len());
    assert_code(&case.run(&["remote", "verify", "mhm_backup_20260301_000000"]), 0);
    assert_same(&before, &snapshot(&case.path().join("data/backups")));
    case.assert_no_secret();
}

/// A push stopped dead after its first part (as a killed process would stop), and one
/// stopped after the upload but before its record: neither is a copy; a rerun is.
fn interrupted(case: &mut Case) {
    add_bulk(case.path(), 6);
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    let before = snapshot(&case.path().join("data/backups"));
    for point in [FailPoint::RemoteMidUpload, FailPoint::RemoteBeforeRecord] {
        let ctx = case.ctx(vec![point]);
        let remote = Remote::open(&ctx, &Overrides::default()).unwrap();
        let items = remote.push(&ctx, &[], SMALL_PARTS).unwrap();
        let PushResult::Failed { error } = &items[0].result else { panic!("{point:?}: {items:?}") };
        assert!(error.contains("injected"), "{error}");
        let listing = remote.list().unwrap();
        assert!(listing.copies.is_empty(), "{point:?}: {listing:?}");
        if point == FailPoint::RemoteBeforeRecord {
            assert_eq!(listing.unfinished.len(), 1, "{listing:?}");
            let out = case.run(&["remote", "list"]);
            assert!(stderr(&out).contains("never confirmed"), "{}", stderr(&out));
            assert!(stdout(&out).contains("no copies"), "{}", stdout(&out));
        }
        assert_same(&before, &snapshot(&case.path().join("data/backups")));
    }
    // An unconfirmed object is left alone for a day, then pruned.
    let object = "mhm_backup_20260301_000000.zip.age";
    let out = case.run(&["remote", "prune"]);
    assert_eq!(stdout(&out).trim(), "nothing to prune");
    let later = (chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339();
    let out = case.run(&["--now", &later, "remote", "prune"]);
    assert_code(&out, 0);
    assert_eq!(
        stdout(&out).trim(),
        format!("deleted {object} (an upload that never finished, a day old)")
    );
    let ctx = case.ctx(Vec::new());
    assert!(Remote::open(&ctx, &Overrides::default())
        .unwrap()
        .list()
        .unwrap()
        .unfinished
        .is_empty());
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 0);
    let ctx = case.ctx(Vec::new());
    let listing = Remote::open(&ctx, &Overrides::default()).unwrap().list().unwrap();
    assert_eq!(listing.copies.len(), 1);
    assert!(listing.unfinished.is_empty(), "{listing:?}");
    assert_code(&case.run(&["remote", "verify", "mhm_backup_20260301_000000"]), 0);
    case.assert_no_secret();
}

#[test]
fn folder_interrupted_push_then_rerun() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    interrupted(&mut case);
}

#[test]
fn s3_interrupted_push_then_rerun() {
    let weed = Weed::start();
    let mut case = Case::new(&weed.env("interrupted"));
    interrupted(&mut case);
}

#[test]
fn s3_wrong_keys_missing_bucket_unreachable_server() {
    let mut weed = Weed::start();
    let mut case = Case::new(&weed.env("errors"));
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    let before = snapshot(&case.path().join("data/backups"));

    // A wrong secret key.
    let wrong = "WrongSecretKeyThatMustNeverShow42";
    case.secrets.push(wrong.to_string());
    case.set("AWS_SECRET_ACCESS_KEY", wrong);
    for args in [
        &["remote", "list"][..],
        &["remote", "push"],
        &["remote", "verify", "mhm_backup_20260301_000000"],
    ] {
        let out = case.run(args);
        assert_code(&out, 1);
        assert!(stderr(&out).contains("refused the credentials"), "{args:?}: {}", stderr(&out));
    }
    case.set("AWS_SECRET_ACCESS_KEY", &weed.secret_key);

    // A bucket that does not exist.
    case.set("MHM_REMOTE_URL", "s3://no-such-bucket/x");
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("\"no-such-bucket\" does not exist"), "{}", stderr(&out));
    case.set("MHM_REMOTE_URL", &format!("s3://{}/errors", common::seaweed::BUCKET));

    // A wrong private key.
    let other = case.keys.path().join("other.txt");
    assert_code(&case.run(&["remote", "keygen", other.to_str().unwrap()]), 0);
    case.remember_key(&other);
    let out = case.run(&[
        "remote",
        "verify",
        "mhm_backup_20260301_000000",
        "--identity",
        other.to_str().unwrap(),
    ]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wrong key"), "{}", stderr(&out));

    // A server that is gone.
    weed.kill();
    case.backup("mhm_backup_20260302_000000", "2026-03-02T00:00:00Z");
    let before_push = snapshot(&case.path().join("data/backups"));
    let started = std::time::Instant::now();
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("cannot be reached"), "{}", stderr(&out));
    assert!(started.elapsed().as_secs() < 30, "took {:?}", started.elapsed());
    assert_same(&before_push, &snapshot(&case.path().join("data/backups")));
    assert!(before.keys().all(|k| before_push.contains_key(k)), "local backups untouched");
    case.assert_no_secret();
}

#[test]
fn an_object_changed_in_the_store_fails_verify_and_pull() {
    // In a folder: one byte flipped, same size.
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let path = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    let object = store.path().join("mhm_backup_20260301_000000.zip.age");
    let mut bytes = fs::read(&object).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    fs::write(&object, &bytes).unwrap();
    let out = case.run(&["remote", "verify", "mhm_backup_20260301_000000"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("changed"), "{}", stderr(&out));
    fs::remove_file(&path).unwrap();
    let out = case.run(&["remote", "pull", "mhm_backup_20260301_000000"]);
    assert_code(&out, 1);
    assert!(!path.exists(), "a changed copy is never placed");
    no_temp_files(case.path());
    case.assert_no_secret();

    // In S3: the object replaced by other bytes of the same size.
    let weed = Weed::start();
    let mut case = Case::new(&weed.env("changed"));
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    let ctx = case.ctx(Vec::new());
    let config = remote::Config::from_ctx(&ctx, &Overrides::default()).unwrap();
    let store = remote::store::Store::open(config).unwrap();
    let name = "changed/mhm_backup_20260301_000000.zip.age";
    let name = name.strip_prefix("changed/").unwrap();
    let mut bytes = store.get_small(name).unwrap().to_vec();
    let last = bytes.len() - 10;
    bytes[last] ^= 1;
    store.put_small(name, bytes).unwrap();
    let copies = case.copies();
    assert_eq!(copies[0]["status"], "changed", "the ETag gave it away");
    let out = case.run(&["remote", "verify", "mhm_backup_20260301_000000"]);
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("INVALID") || stderr(&out).contains("changed"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    case.assert_no_secret();
}

#[test]
fn maintain_pushes_once_a_day_and_retries_a_failed_push() {
    let mut weed = Weed::start();
    let mut case = Case::new(&weed.env("daily"));
    let keys_env: Vec<(String, String)> = fs::read_to_string(case.path().join(".env"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("MHM_REMOTE_RECIPIENT") || l.starts_with("MHM_REMOTE_IDENTITY"))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    weed.kill();
    // First run: the weekly backup is made; the push fails (the server is down).
    let v = case.json(&["--now", "2026-03-20T03:30:00Z", "maintain"]);
    let job = |v: &serde_json::Value, name: &str| {
        listed(v).iter().find(|j| j["name"] == name).cloned().unwrap_or_default()
    };
    assert_eq!(job(&v, "remote_push")["ran"], true, "{v}");
    assert_eq!(job(&v, "remote_push")["ok"], false, "{v}");
    assert!(
        job(&v, "remote_push")["detail"].as_str().unwrap().contains("cannot be reached"),
        "{v}"
    );
    let backup = case.path().join("data/backups/weekly_backup_20260320_033000.zip");
    assert!(backup.is_file());
    let kept = fs::read(&backup).unwrap();
    let status = case.json(&["--now", "2026-03-20T03:31:00Z", "status"]);
    assert_eq!(status["jobs"]["remote_push"]["ok"], false, "{status}");

    // The next run retries it (no waiting for tomorrow), and it works.
    weed.restart();
    let mut settings = weed.env("daily");
    settings.extend(keys_env);
    case.set_env(&settings);
    let v = case.json(&["--now", "2026-03-20T03:45:00Z", "maintain"]);
    assert_eq!(job(&v, "remote_push")["ran"], true, "{v}");
    assert_eq!(job(&v, "remote_push")["ok"], true, "{v}");
    assert_eq!(job(&v, "weekly_backup")["ran"], false, "{v}");
    assert_eq!(names_of(&case.copies()), ["weekly_backup_20260320_033000"]);
    assert_eq!(fs::read(&backup).unwrap(), kept, "the local backup is untouched");

    // Not again the same day.
    let before = snapshot(case.path());
    let v = case.json(&["--now", "2026-03-20T23:00:00Z", "maintain"]);
    assert_eq!(job(&v, "remote_push")["ran"], false, "{v}");
    assert_same(&before, &snapshot(case.path()));

    // The next day after 03:00 it runs again: nothing new to push.
    let v = case.json(&["--now", "2026-03-21T03:10:00Z", "maintain"]);
    assert_eq!(job(&v, "remote_push")["ran"], true, "{v}");
    assert!(
        job(&v, "remote_push")["detail"].as_str().unwrap().starts_with("0 pushed, 1 already there"),
        "{v}"
    );
    case.assert_no_secret();
}

#[test]
fn keygen_and_bad_settings() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let key = case.keys.path().join("key.txt");
    // Never over an existing key file.
    let before = fs::read(&key).unwrap();
    let out = case.run(&["remote", "keygen", key.to_str().unwrap()]);
    assert_code(&out, 2);
    assert_eq!(fs::read(&key).unwrap(), before);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    for (k, v, expect) in [
        ("MHM_REMOTE_URL", "ftp://host/x", "MHM_REMOTE_URL"),
        ("MHM_REMOTE_URL", "s3://AKIA:hunter2secret@bucket/x", "MHM_REMOTE_URL"),
        ("REMOTE_MAX_COUNT", "many", "REMOTE_MAX_COUNT"),
        ("MHM_REMOTE_RECIPIENT", "age1notakey", "MHM_REMOTE_RECIPIENT"),
    ] {
        let saved = fs::read(case.path().join(".env")).unwrap();
        case.set(k, v);
        let out = case.run(&["remote", "push"]);
        assert_code(&out, 2);
        assert!(stderr(&out).contains(expect), "{k}={v}: {}", stderr(&out));
        assert!(!stderr(&out).contains("hunter2secret"), "{}", stderr(&out));
        fs::write(case.path().join(".env"), saved).unwrap();
    }
    // A folder that is not there (an unmounted disk) is not created.
    let gone = store.path().join("not-mounted");
    case.set("MHM_REMOTE_URL", &format!("file://{}", gone.display()));
    let out = case.run(&["remote", "list"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    assert!(!gone.exists());
    case.assert_no_secret();
}

/// The process is killed by the OS in the middle of its upload, at a point the test sets:
/// a file size limit (`RLIMIT_FSIZE`) of 1 MiB, far under the 12 MiB object, so the write
/// that reaches it raises SIGXFSZ, whose default action ends the process as a kill does.
/// Nothing else the push writes comes near 1 MiB. (On Windows, where no such limit exists,
/// the same stop is injected through the library: `FailPoint::RemoteMidUpload`.)
#[cfg(unix)]
#[test]
fn folder_process_killed_mid_upload_then_rerun() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    add_bulk(case.path(), 12);
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    let before = snapshot(&case.path().join("data/backups"));
    let mut cmd = bin();
    cmd.arg("--root").arg(case.path()).args(["remote", "push"]);
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    // SAFETY: setrlimit is async-signal-safe and touches only the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit { rlim_cur: 1 << 20, rlim_max: 1 << 20 };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = cmd.launch_status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGXFSZ), "ended mid-upload: {status:?}");
    // The folder store writes an upload under a staging name (`<object>#<n>`) until it
    // completes: the kill left one.
    let staged: Vec<String> = names(store.path()).into_iter().filter(|n| n.contains('#')).collect();
    assert!(!staged.is_empty(), "no upload under way at the kill: {:?}", names(store.path()));
    // Owner-only from its first byte, as every file the tool writes in a folder store.
    for n in &staged {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(store.path().join(n)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{n}");
    }
    assert!(case.copies().is_empty(), "a killed upload is not a copy");
    assert_same(&before, &snapshot(&case.path().join("data/backups")));
    let out = case.run(&["remote", "push"]);
    assert_code(&out, 0);
    assert_eq!(names_of(&case.copies()), ["mhm_backup_20260301_000000"]);
    assert_code(&case.run(&["remote", "verify", "mhm_backup_20260301_000000"]), 0);
    case.assert_no_secret();
}

/// The service's folder backups and `maintain` (issue 20): the first night's push took
/// `weekly_backup_<...>/` and refused it as "no such backup", and every `maintain` after it
/// failed. Unnamed, a folder backup is skipped with the reason (not a failure); named, it is
/// packed into a verified zip and pushed; `maintain` with off-site copies on exits 0 twice
/// and the second run changes nothing.
#[test]
fn folder_backups_are_skipped_unless_named_and_maintain_stays_green() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let folder = case.path().join("data/backups/weekly_backup_2026-11-28_01-00-00");
    write(
        &folder.join("manifest.json"),
        r#"{"backup_name": "weekly_backup_2026-11-28_01-00-00", "format": "directory",
            "created_at": "2026-11-28 01:00:00", "includes": {"users": true, "config": true}}"#,
    );
    write(&folder.join("users/u1/account.json"), r#"{"user": "u1"}"#);
    write(&folder.join("config/.env"), "APP_MODE=folder\n");
    let out = case.json(&["--now", "2026-11-30T03:00:00Z", "remote", "push"]);
    let items = listed(&out).clone();
    let folder_item = items.iter().find(|i| i["name"] == "weekly_backup_2026-11-28_01-00-00");
    assert!(folder_item.is_some_and(|i| i.to_string().contains("skipped")), "{out}");
    assert!(case.copies().is_empty(), "nothing pushed: only the folder was there");
    // maintain, twice: exit 0 both times (the push ran and skipped the folder; the weekly
    // backup is not due: the folder is 2 days old); the second changes nothing but its
    // log lines.
    for n in 0..2 {
        let before = snapshot(case.path());
        let out = case.run(&["--now", "2026-11-30T04:00:00Z", "--json", "maintain"]);
        assert_code(&out, 0);
        let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let push = listed(&jobs).iter().find(|j| j["name"] == "remote_push").unwrap();
        assert_eq!(
            (push["ran"].as_bool(), push["ok"].as_bool()),
            (Some(n == 0), Some(true)),
            "{jobs}"
        );
        if n == 1 {
            let mut after = snapshot(case.path());
            let mut before = before;
            for s in [&mut before, &mut after] {
                s.retain(|p, _| !p.starts_with("logs"));
            }
            assert_same(&before, &after);
        }
    }
    assert!(case.copies().is_empty());
    // Named: packed into a zip and pushed; verified in the store; no temporary left.
    let out = case.run(&["remote", "push", "weekly_backup_2026-11-28_01-00-00"]);
    assert_code(&out, 0);
    assert!(names_of(&case.copies()).contains(&"weekly_backup_2026-11-28_01-00-00".to_string()));
    assert_code(&case.run(&["remote", "verify", "weekly_backup_2026-11-28_01-00-00"]), 0);
    no_temp_files(case.path());
    case.assert_no_secret();
}

/// The fire drill (issue 20): the machine is lost; an empty folder, the private key and the
/// store are all there is. One command brings back users (with their message archives), the
/// user index and the config files, byte for byte as pushed, and validates them.
#[test]
fn remote_restore_brings_an_empty_machine_back_in_one_command() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    write(
        &case
            .path()
            .join("data/users/u1/messages/archives/sent_messages_archive_20260101_000000.json"),
        r#"{"metadata": {"version": "2.0"}, "messages": []}"#,
    );
    case.backup("weekly_backup_20260301_010000", "2026-03-01T01:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    let users = snapshot(&case.path().join("data/users"));
    let files = ["data/user_index.json", ".env", "requirements.txt"];
    let config: Vec<Vec<u8>> =
        files.iter().map(|f| fs::read(case.path().join(f)).unwrap()).collect();
    // A new, empty machine: a folder that does not exist yet; settings from the environment.
    let new = tempfile::tempdir().unwrap();
    let root = new.path().join("mhm");
    let key = case.keys.path().join("key.txt");
    let out = fire_drill(&root, store.path(), &key);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("restored weekly_backup_20260301_010000"), "{}", stdout(&out));
    assert!(stdout(&out).contains("system validate: ok"), "{}", stdout(&out));
    assert_same(&users, &snapshot(&root.join("data/users")));
    for (f, want) in files.iter().zip(&config) {
        assert_eq!(&fs::read(root.join(f)).unwrap(), want, "{f}");
    }
    // A folder that holds something but is not an MHM root is still refused.
    let other = tempfile::tempdir().unwrap();
    write(&other.path().join("photo.jpg"), "x");
    let out =
        bin().arg("--root").arg(other.path()).args(["remote", "restore"]).launch_output().unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains("not an MHM root"), "{}", stderr(&out));
}

/// Issue 21 (7): a retention past what a time span holds wrapped to a negative one, and
/// `remote prune` deleted every copy but the newest. It saturates: nothing is old enough.
#[test]
fn a_huge_remote_retention_keeps_every_copy() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    case.backup("mhm_backup_20260302_000000", "2026-03-02T00:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    for days in ["18446744073709551615", "106751991167301"] {
        let out = case.run(&[
            "--now",
            "2026-06-01T00:00:00Z",
            "remote",
            "prune",
            "--retention-days",
            days,
        ]);
        assert_code(&out, 0);
        assert_eq!(case.copies().len(), 2, "{days}: {}", stdout(&out));
    }
    case.assert_no_secret();
}

/// Issue 20: while off-site copies are configured, local prune never removes the only copy
/// of a backup that was never pushed (a failed push must not make it go away); it says so,
/// and `status` warns. Once pushed, the rule applies again.
#[test]
fn prune_keeps_a_backup_that_never_reached_the_store() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let url = format!("file://{}", store.path().display());
    case.set("MHM_REMOTE_URL", &format!("{url}/unmounted")); // the store unreachable
    case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    case.backup("mhm_backup_20260420_000000", "2026-04-20T00:00:00Z");
    let out =
        case.json(&["--now", "2026-04-21T00:00:00Z", "backup", "prune", "--retention-days", "30"]);
    let steps = listed(&out);
    assert!(
        steps.iter().any(|s| s["name"] == "mhm_backup_20260301_000000" && s["result"] == "kept"),
        "{out}"
    );
    assert!(case.path().join("data/backups/mhm_backup_20260301_000000.zip").is_file());
    case.set("MHM_REMOTE_URL", &url);
    let st = case.json(&["--now", "2026-04-21T00:00:00Z", "status"]);
    assert!(st["warnings"].to_string().contains("not yet pushed off-site"), "{st}");
    // Pushed: the rule applies.
    assert_code(&case.run(&["remote", "push"]), 0);
    let out =
        case.json(&["--now", "2026-04-21T00:00:00Z", "backup", "prune", "--retention-days", "30"]);
    assert!(
        listed(&out)
            .iter()
            .any(|s| s["name"] == "mhm_backup_20260301_000000" && s["result"] == "deleted"),
        "{out}"
    );
    case.assert_no_secret();
}

/// Issue 21: a record is trusted only for the object of its own name, and a record that
/// cannot be read keeps its object (reported, never deleted as an unfinished upload).
#[test]
fn a_forged_or_unreadable_record_never_costs_another_copy() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let names =
        ["mhm_backup_20260301_000000", "mhm_backup_20260302_000000", "mhm_backup_20260303_000000"];
    for (i, name) in names.iter().enumerate() {
        case.backup(name, &format!("2026-03-0{}T00:00:00Z", i + 1));
    }
    assert_code(&case.run(&["remote", "push"]), 0);
    let s = store.path();
    let object = |name: &str| s.join(format!("{name}.zip.age"));
    let record = |name: &str| s.join(format!("{name}.remote.json"));
    for n in names {
        assert!(object(n).is_file() && record(n).is_file(), "{n}");
    }
    // The oldest record claims the newest copy's object; the middle one is unreadable.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&fs::read(record(names[0])).unwrap()).unwrap();
    forged["object"] = format!("{}.zip.age", names[2]).into();
    fs::write(record(names[0]), serde_json::to_vec(&forged).unwrap()).unwrap();
    fs::write(record(names[1]), b"{ not json").unwrap();
    let newest = fs::read(object(names[2])).unwrap();
    // Long after: every copy is past the retention, and unfinished uploads are a day old.
    let out =
        case.run(&["--now", "2026-06-01T00:00:00Z", "remote", "prune", "--retention-days", "1"]);
    assert_eq!(fs::read(object(names[2])).unwrap(), newest, "{}", stdout(&out));
    assert!(object(names[1]).is_file(), "an unreadable record keeps its object: {}", stdout(&out));
    assert!(object(names[0]).is_file(), "a forged record keeps its own object: {}", stdout(&out));
    let listing = case.json(&["remote", "list"]);
    assert_eq!(names_of(listing["copies"].as_array().unwrap()), [names[2]]);
    let text = listing["unfinished"].to_string();
    assert!(text.contains(&format!("{}.remote.json", names[0])), "{listing}");
    assert!(text.contains(&format!("{}.remote.json", names[1])), "{listing}");
    // The newest copy is whole and comes back.
    assert!(text.contains("the object of a record that is not trusted: kept"), "{listing}");
    assert_code(&case.run(&["remote", "verify", names[2]]), 0);
    case.assert_no_secret();
}

/// Every path under `root` (the lock and `logs/sidecar.log` included) with its kind, size,
/// contents, modification time and mode: what "creates and changes no file" is checked
/// against.
fn stat_tree(root: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, map: &mut std::collections::BTreeMap<PathBuf, String>) {
        for e in fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            #[cfg(unix)]
            let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
            #[cfg(not(unix))]
            let mode = meta.permissions().readonly() as u32;
            let contents =
                if meta.is_file() { sha256_hex(&fs::read(&path).unwrap()) } else { String::new() };
            let line = format!(
                "{:?} {} bytes, mode {mode:o}, modified {:?} {contents}",
                meta.file_type(),
                meta.len(),
                meta.modified().unwrap()
            );
            map.insert(path.strip_prefix(root).unwrap().to_path_buf(), line);
            if meta.is_dir() {
                walk(root, &path, map);
            }
        }
    }
    let mut map = std::collections::BTreeMap::new();
    walk(root, root, &mut map);
    map
}

/// Names each path whose entry differs between two [`stat_tree`]s.
#[track_caller]
fn assert_unchanged(
    before: &std::collections::BTreeMap<PathBuf, String>,
    after: &std::collections::BTreeMap<PathBuf, String>,
    what: &str,
) {
    let keys: std::collections::BTreeSet<&PathBuf> = before.keys().chain(after.keys()).collect();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| format!("{}: {:?} -> {:?}", k.display(), before.get(k), after.get(k)))
        .collect();
    assert!(changed.is_empty(), "{what} changed the root:\n{}", changed.join("\n"));
}

// regression: `remote verify` took the lock (its pid written into data/.sidecar.lock),
// appended to logs/sidecar.log and decrypted into data/backups/.tmp-<pid>-NAME.zip; `remote
// pull --dry-run` changed data/backups' modification time. Read-only commands and dry runs
// create and change no file in the root; verify checks the copy in a private folder of
// TMPDIR's, gone afterwards.
#[test]
fn remote_verify_list_and_dry_runs_change_nothing_in_the_root() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let zip = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    case.backup("mhm_backup_20260302_000000", "2026-03-02T00:00:00Z");
    assert_code(&case.run(&["remote", "push"]), 0);
    // The pull below would have something to place; a folder backup, named, is only
    // checked by a dry-run push (never packed in data/backups/).
    fs::remove_file(&zip).unwrap();
    let folder = case.path().join("data/backups/weekly_backup_2026-11-28_01-00-00");
    write(
        &folder.join("manifest.json"),
        r#"{"backup_name": "weekly_backup_2026-11-28_01-00-00", "format": "directory",
            "created_at": "2026-11-28 01:00:00", "includes": {"users": true, "config": true}}"#,
    );
    write(&folder.join("users/u1/account.json"), r#"{"user": "u1"}"#);
    // Let a second pass, so that a changed modification time shows on any file system.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let tmp = tempfile::tempdir().unwrap();
    let before = stat_tree(case.path());
    let name = "mhm_backup_20260301_000000";
    let runs: [&[&str]; 8] = [
        &["remote", "verify", name],
        &["--json", "remote", "verify", name],
        &["remote", "list"],
        &["remote", "verify", "nosuch"],
        &["--dry-run", "remote", "pull", name],
        &["--dry-run", "remote", "push"],
        &["--dry-run", "remote", "push", "weekly_backup_2026-11-28_01-00-00"],
        &["--dry-run", "remote", "prune", "--max-count", "1"],
    ];
    for args in runs {
        let out = bin()
            .arg("--root")
            .arg(case.path())
            .args(args)
            .env("TMPDIR", tmp.path())
            .env("TMP", tmp.path())
            .env("TEMP", tmp.path())
            .launch_output()
            .unwrap();
        case.outputs.push(format!("{args:?}\n{}\n{}", stdout(&out), stderr(&out)));
        let want = if args.contains(&"nosuch") { 1 } else { 0 };
        assert_eq!(code(&out), want, "{args:?}\n{}\n{}", stdout(&out), stderr(&out));
        assert_unchanged(&before, &stat_tree(case.path()), &format!("{args:?}"));
        assert!(names(tmp.path()).is_empty(), "{args:?} left {:?}", names(tmp.path()));
    }
    assert!(case.outputs.iter().any(|o| o.contains("the copy is valid")));
    // A failed check removes its private folder too.
    fs::write(store.path().join(format!("{name}.zip.age")), b"not what was pushed").unwrap();
    let out = bin()
        .arg("--root")
        .arg(case.path())
        .args(["remote", "verify", name])
        .env("TMPDIR", tmp.path())
        .env("TMP", tmp.path())
        .env("TEMP", tmp.path())
        .launch_output()
        .unwrap();
    assert_code(&out, 1);
    assert_unchanged(&before, &stat_tree(case.path()), "a failed verify");
    assert!(names(tmp.path()).is_empty(), "left {:?}", names(tmp.path()));
    case.assert_no_secret();
}

// regression: in a folder store the copy's object and record were created 0644 (readable
// by every user of the machine) while the backup they came from is 0600.
#[cfg(unix)]
#[test]
fn a_folder_store_holds_owner_only_files() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    let zip = case.backup("mhm_backup_20260301_000000", "2026-03-01T00:00:00Z");
    assert_eq!(mode(&zip), 0o600);
    assert_code(&case.run(&["remote", "push"]), 0);
    case.backup("mhm_backup_20260302_000000", "2026-03-02T00:00:00Z");
    assert_code(&case.run(&["remote", "push", "--no-encrypt"]), 0);
    let held = names(store.path());
    assert_eq!(held.len(), 4, "{held:?}");
    for n in &held {
        assert_eq!(mode(&store.path().join(n)), 0o600, "{n}");
    }
    assert_eq!(case.copies().len(), 2);
    // What comes back is owner-only too: a pull, and a restore's pulled backup.
    fs::remove_file(&zip).unwrap();
    assert_code(&case.run(&["remote", "pull", "mhm_backup_20260301_000000"]), 0);
    assert_eq!(mode(&zip), 0o600);
    let new = tempfile::tempdir().unwrap();
    let root = new.path().join("mhm");
    let out = fire_drill(&root, store.path(), &case.keys.path().join("key.txt"));
    assert_code(&out, 0);
    let pulled = root.join("data/backups/mhm_backup_20260302_000000.zip");
    assert_eq!(mode(&pulled), 0o600, "{}", stdout(&out));
    for f in [".env", "data/user_index.json"] {
        let source = mode(&case.path().join(f));
        assert_eq!(mode(&root.join(f)) & !source, 0, "{f} is more readable than its source");
    }
    case.assert_no_secret();
}

// regression: `remote verify nosuch` and `remote pull nosuch` said only "no copy of nosuch
// in file:///...": the error names the copies that are there and the command listing them.
#[test]
fn a_copy_not_in_the_store_is_answered_with_the_ones_that_are() {
    let store = tempfile::tempdir().unwrap();
    let mut case = Case::new(&folder_settings(store.path()));
    for cmd in ["verify", "pull"] {
        let out = case.run(&["remote", cmd, "nosuch"]);
        assert_code(&out, 1);
        assert!(stderr(&out).contains("no copies there yet"), "{}", stderr(&out));
        assert!(stderr(&out).contains("mhm-sidecar remote push"), "{}", stderr(&out));
    }
    for day in 1..=7 {
        let name = format!("mhm_backup_2026030{day}_000000");
        case.backup(&name, &format!("2026-03-0{day}T00:00:00Z"));
    }
    assert_code(&case.run(&["remote", "push"]), 0);
    for cmd in ["verify", "pull"] {
        let out = case.run(&["remote", cmd, "nosuch"]);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert!(err.contains("no copy of nosuch in file://"), "{err}");
        assert!(
            err.contains(
                "the newest there: mhm_backup_20260307_000000, mhm_backup_20260306_000000, \
                 mhm_backup_20260305_000000, mhm_backup_20260304_000000, \
                 mhm_backup_20260303_000000 and 2 more; `mhm-sidecar remote list` shows them all"
            ),
            "{err}"
        );
        assert!(!err.contains("mhm_backup_20260301_000000"), "{err}");
    }
    case.assert_no_secret();
}
