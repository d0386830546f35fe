//! Findings of the attack campaign of issue 8: hostile backups, broken zips, a clock that
//! jumped, leftovers of killed runs, races with the log writer, and unclear messages.

use crate::common;

use std::{fs, path::Path};

use common::*;

// === links that resolve outside on restore ===

/// `users/u1/a/b/.../j` (ten folders): deep enough that eleven `..` reach `users/`.
const DEEP: &str = "a/b/c/d/e/f/g/h/i/j";

/// Asserts that `backup verify NAME` exits 1 saying `says`, and that `backup restore NAME
/// [args]` exits 1 and changes nothing under the root (no safety backup either: the
/// verification comes first).
#[track_caller]
fn refused_by_verify_and_restore(r: &Path, name: &str, says: &str, args: &[&str]) {
    let out = run(r, &["backup", "verify", name]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains(says), "verify {name}: {}", stdout(&out));
    let before = snapshot(r);
    let mut restore = vec!["backup", "restore", name];
    restore.extend_from_slice(args);
    let out = run(r, &restore);
    assert_code(&out, 1);
    assert!(stderr(&out).contains(says), "restore {name}: {}", stderr(&out));
    assert_same(&before, &snapshot(r));
}

#[test]
fn a_link_chain_that_resolves_outside_is_refused_by_verify_and_restore() {
    // regression (issue 8): `l1 -> ../..(×11)/u2` looks inside; `preferences.json ->
    // a/.../j/l1/../..(×12)/etc/passwd` reads as `users/etc/passwd` as text, but once `l1`
    // exists on disk it resolves to /etc/passwd.
    let root = make_root();
    let r = root.path();
    let l1 = format!("users/u1/{DEEP}/l1");
    let l1_target = format!("{}u2", "../".repeat(11));
    let prefs_target = format!("{DEEP}/l1/{}etc/passwd", "../".repeat(12));
    crafted_backup(
        &r.join("data/backups/chain.zip"),
        &[("users/u1/account.json", b"{}"), ("users/u2/account.json", b"{}")],
        &[(&l1, &l1_target), ("users/u1/preferences.json", &prefs_target)],
    );
    refused_by_verify_and_restore(r, "chain", "outside", &[]);
    // The same link alone, with nothing earlier to pass through, stays inside: valid.
    crafted_backup(
        &r.join("data/backups/plain.zip"),
        &[("users/u1/account.json", b"{}"), ("users/u2/account.json", b"{}")],
        &[(&l1, &l1_target)],
    );
    assert_code(&run(r, &["backup", "verify", "plain"]), 0);
}

#[test]
fn a_link_through_another_link_or_under_one_is_refused() {
    // Two hops, each inside as text: `up -> ..` (users/u1 -> users) then
    // `x -> up/../../.env`, which after `up` is `users/../../.env`, two levels above users/.
    let root = make_root();
    let r = root.path();
    crafted_backup(
        &r.join("data/backups/hops.zip"),
        &[("users/u1/account.json", b"{}")],
        &[("users/u1/up", ".."), ("users/u1/x", "up/../../.env")],
    );
    refused_by_verify_and_restore(r, "hops", "outside", &[]);
    // An entry stored under a stored link: restore refuses it, so verify does too.
    crafted_backup(
        &r.join("data/backups/under.zip"),
        &[("users/u1/account.json", b"{}"), ("users/u1/dir/file.json", b"{}")],
        &[("users/u1/dir", "../u2")],
    );
    refused_by_verify_and_restore(r, "under", "under the link", &[]);
}

#[test]
fn links_under_config_are_refused() {
    // regression (issue 8): `config/.env -> ../config/outside.env` stays in `config/` as
    // text, but is restored as the root's `.env`, where it points outside the root.
    let root = make_root();
    let r = root.path();
    crafted_backup(
        &r.join("data/backups/conf.zip"),
        &[("users/u1/account.json", b"{}")],
        &[("config/.env", "../config/outside.env")],
    );
    refused_by_verify_and_restore(r, "conf", "config/.env", &["--config"]);
    assert!(!r.join(".env").symlink_metadata().unwrap().file_type().is_symlink());
}

/// `../u2/x/x/x/x/x/x/` then seven `..`: as text (x a folder) `users/etc/passwd`; with
/// `users/u2/x -> .` on disk, seven levels above `users/u2`.
#[cfg(unix)]
fn through_dot_links() -> String {
    format!("../u2/{}{}etc/passwd", "x/".repeat(6), "../".repeat(7))
}

#[cfg(unix)]
#[test]
fn backup_create_follows_links_on_disk_before_storing_one() {
    // regression (issue 8): a link was judged by its text only, so one passing through
    // another live link (`users/u2/x -> .`) was stored although it leads outside.
    let root = make_root();
    let r = root.path();
    std::os::unix::fs::symlink(".", r.join("data/users/u2/x")).unwrap();
    std::os::unix::fs::symlink(through_dot_links(), r.join("data/users/u1/l")).unwrap();
    let out = run(r, &["backup", "create", "--name", "b"]);
    assert!(stderr(&out).contains("u1/l"), "{}", stderr(&out));
    let z = zip::ZipArchive::new(fs::File::open(r.join("data/backups/b.zip")).unwrap()).unwrap();
    assert!(z.index_for_name("users/u2/x").is_some(), "an inside link is stored");
    assert!(z.index_for_name("users/u1/l").is_none(), "a link leading outside is stored");
}

#[cfg(unix)]
#[test]
fn a_restored_link_leading_outside_through_live_links_is_rolled_back() {
    // The backup alone is sound (as text, and through its own links); with the live
    // `users/u2/x -> .` beside it, the restored `users/u1/l` would lead outside.
    let root = make_root();
    let r = root.path();
    crafted_backup(
        &r.join("data/backups/sideways.zip"),
        &[("users/u1/account.json", b"{\"restored\": true}")],
        &[("users/u1/l", &through_dot_links())],
    );
    assert_code(&run(r, &["backup", "verify", "sideways"]), 0);
    std::os::unix::fs::symlink(".", r.join("data/users/u2/x")).unwrap();
    let before = snapshot(&r.join("data/users"));
    let out = run(r, &["backup", "restore", "sideways", "--user", "u1"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("leads outside data/users"), "{}", stderr(&out));
    assert!(stderr(&out).contains("put back"), "{}", stderr(&out));
    assert_same(&before, &snapshot(&r.join("data/users")));
}

// === zips that lie about themselves ===

/// A zip written byte by byte, so that it can lie: entries are (name, local header offset)
/// pairs pointing into `data`, each claiming `stored` (method, crc, compressed, size).
struct HandZip {
    data: Vec<u8>,
    central: Vec<u8>,
    count: u16,
}

impl HandZip {
    fn new() -> Self {
        Self { data: Vec::new(), central: Vec::new(), count: 0 }
    }

    /// Appends a local header and `bytes` (stored, or raw deflate when `inflated` is
    /// given); returns (offset, method, crc, compressed size, size).
    fn local(&mut self, name: &str, bytes: &[u8], inflated: Option<&[u8]>) -> [u32; 5] {
        let offset = self.data.len() as u32;
        let plain = inflated.unwrap_or(bytes);
        let crc = crc32(plain);
        let method = if inflated.is_some() { 8 } else { 0 };
        let d = &mut self.data;
        d.extend_from_slice(b"PK\x03\x04");
        d.extend_from_slice(&20u16.to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes()); // flags
        d.extend_from_slice(&(method as u16).to_le_bytes());
        d.extend_from_slice(&[0, 0, 0x21, 0]); // time, date
        d.extend_from_slice(&crc.to_le_bytes());
        d.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        d.extend_from_slice(&(plain.len() as u32).to_le_bytes());
        d.extend_from_slice(&(name.len() as u16).to_le_bytes());
        d.extend_from_slice(&0u16.to_le_bytes());
        d.extend_from_slice(name.as_bytes());
        d.extend_from_slice(bytes);
        [offset, method, crc, bytes.len() as u32, plain.len() as u32]
    }

    /// A central directory record named `name` for the local entry `at`.
    fn central(&mut self, name: &str, at: [u32; 5]) {
        let [offset, method, crc, compressed, size] = at;
        let c = &mut self.central;
        c.extend_from_slice(b"PK\x01\x02");
        c.extend_from_slice(&[20, 3, 20, 0]); // made by (unix), needed
        c.extend_from_slice(&0u16.to_le_bytes());
        c.extend_from_slice(&(method as u16).to_le_bytes());
        c.extend_from_slice(&[0, 0, 0x21, 0]);
        c.extend_from_slice(&crc.to_le_bytes());
        c.extend_from_slice(&compressed.to_le_bytes());
        c.extend_from_slice(&size.to_le_bytes());
        c.extend_from_slice(&(name.len() as u16).to_le_bytes());
        c.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        c.extend_from_slice(&((0o100644u32) << 16).to_le_bytes());
        c.extend_from_slice(&offset.to_le_bytes());
        c.extend_from_slice(name.as_bytes());
        self.count += 1;
    }

    /// A stored file: local header, data and its central record.
    fn file(&mut self, name: &str, bytes: &[u8]) {
        let at = self.local(name, bytes, None);
        self.central(name, at);
    }

    fn write(self, path: &Path) {
        let mut out = self.data;
        let cd_start = out.len() as u32;
        out.extend_from_slice(&self.central);
        out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        out.extend_from_slice(&cd_start.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        write(path, out);
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// Raw deflate of `bytes`.
fn deflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn one_zip_claiming_300_million_entries_breaks_no_command() {
    // regression (issue 8): a sparse file whose ZIP64 end record claims 300 million
    // entries made `backup list`, `status`, `maintain`, `backup verify` and `backup create`
    // die with "memory allocation of 62400000000 bytes failed" (SIGABRT).
    let root = make_root();
    let r = root.path();
    assert_code(
        &run(r, &["--now", "2026-03-01T00:00:00Z", "backup", "create", "--name", "good"]),
        0,
    );
    let entries: u64 = 300_000_000;
    // The directory claims the (sparse, zero) bytes from `cd_at` to the end records; it
    // starts past `entries` bytes, so the `zip` crate believes the count and reserves
    // memory for every entry.
    let cd_at = entries;
    let eocd64_at = cd_at + entries * 46;
    let huge = r.join("data/backups/huge.zip");
    {
        use std::io::{Seek, SeekFrom, Write as _};
        let mut f = fs::File::create(&huge).unwrap();
        f.set_len(eocd64_at).unwrap(); // sparse: no disk blocks
        f.seek(SeekFrom::Start(eocd64_at)).unwrap();
        let mut rec = b"PK\x06\x06".to_vec();
        rec.extend_from_slice(&44u64.to_le_bytes());
        rec.extend_from_slice(&[45, 0, 45, 0]);
        rec.extend_from_slice(&[0; 8]); // disks
        rec.extend_from_slice(&entries.to_le_bytes());
        rec.extend_from_slice(&entries.to_le_bytes());
        rec.extend_from_slice(&(entries * 46).to_le_bytes()); // directory size
        rec.extend_from_slice(&cd_at.to_le_bytes()); // directory offset
        rec.extend_from_slice(b"PK\x06\x07\0\0\0\0");
        rec.extend_from_slice(&eocd64_at.to_le_bytes());
        rec.extend_from_slice(&1u32.to_le_bytes());
        rec.extend_from_slice(b"PK\x05\x06\0\0\0\0");
        rec.extend_from_slice(&[0xff; 12]);
        rec.extend_from_slice(b"\0\0");
        f.write_all(&rec).unwrap();
    }
    let now = ["--now", "2026-03-20T10:00:00Z"];
    let cmd = |args: &[&str]| {
        let mut all = now.to_vec();
        all.extend_from_slice(args);
        let out = run(r, &all);
        assert!(out.status.code().is_some(), "{args:?} died: {}", stderr(&out));
        assert!(!stderr(&out).contains("memory allocation"), "{args:?}: {}", stderr(&out));
        out
    };
    let out = cmd(&["--json", "backup", "list"]);
    assert_code(&out, 0);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let valid =
        |name: &str| listed(&list).iter().find(|b| b["name"] == name).unwrap()["valid"].clone();
    assert_eq!((valid("huge"), valid("good")), (false.into(), true.into()));
    let out = cmd(&["backup", "verify", "huge"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("not a readable zip archive"), "{}", stdout(&out));
    assert_code(&cmd(&["backup", "verify", "good"]), 0);
    let out = cmd(&["status"]);
    assert_code(&out, 1); // unhealthy: no weekly backup, nothing ran yet
    assert!(stdout(&out).contains("huge looks invalid"), "{}", stdout(&out));
    assert_code(&cmd(&["backup", "create", "--name", "after"]), 0);
    assert_code(&cmd(&["maintain"]), 0);
    assert!(huge.is_file(), "not ours: never pruned");
}

#[test]
fn a_zip_bomb_of_overlapping_entries_is_refused_before_inflating() {
    // regression (issue 8): 200 entries inflating the same data cost 31 s of CPU before
    // verify failed. Overlapping entries are refused from the directory alone.
    let root = make_root();
    let r = root.path();
    let plain = vec![0u8; 1 << 20];
    let mut z = HandZip::new();
    let at = z.local("users/u1/b000", &deflate(&plain), Some(&plain));
    for i in 0..200 {
        z.central(&format!("users/u1/b{i:03}"), at);
    }
    let files: Vec<(String, &[u8])> =
        (0..200).map(|i| (format!("users/u1/b{i:03}"), &plain[..])).collect();
    let listed: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    z.file("manifest.json", &manifest_for(&listed, 1));
    z.write(&r.join("data/backups/bomb.zip"));
    let start = std::time::Instant::now();
    let out = run(r, &["backup", "verify", "bomb"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("overlap"), "{}", stdout(&out));
    assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
}

#[test]
fn an_entry_inflating_past_its_declared_size_is_cut_there() {
    // The directory says 10 bytes; the data inflate to 1 MiB. Reading stops at 11.
    let root = make_root();
    let r = root.path();
    let plain = vec![b'x'; 1 << 20];
    let mut z = HandZip::new();
    let mut at = z.local("users/u1/a.json", &deflate(&plain), Some(&plain));
    at[4] = 10;
    z.central("users/u1/a.json", at);
    z.file("manifest.json", &manifest_for(&[("users/u1/a.json", &plain[..10])], 1));
    z.write(&r.join("data/backups/liar.zip"));
    let out = run(r, &["backup", "verify", "liar"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("more than the 10 bytes"), "{}", stdout(&out));
}

#[test]
fn a_name_stored_twice_is_invalid() {
    // Two entries named alike: tools disagree on which one a name means (the `zip` crate
    // took the second, unzip extracts the first), so the backup means two things.
    let root = make_root();
    let r = root.path();
    let mut z = HandZip::new();
    z.file("users/u1/account.json", b"{\"who\": \"first\"}");
    z.file("users/u1/account.json", b"{\"who\": \"second\"}");
    z.file(
        "manifest.json",
        &manifest_for(&[("users/u1/account.json", b"{\"who\": \"second\"}")], 1),
    );
    z.write(&r.join("data/backups/twice.zip"));
    let out = run(r, &["backup", "verify", "twice"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("stored twice"), "{}", stdout(&out));
}

// === a clock that jumped forward ===

#[test]
fn a_run_stamped_in_the_future_does_not_stop_maintain() {
    // regression (issue 8): after a run at a time the clock later came back from, every
    // job said "not due" for months, and nothing said why.
    let root = make_root();
    let r = root.path();
    // The clock jumps a year ahead for one run (a weekly backup is stamped then too)...
    assert_code(&run(r, &["--now", "2027-03-20T03:00:00Z", "maintain"]), 0);
    assert!(r.join("data/backups/weekly_backup_20270320_030000.zip").is_file());
    // ...and comes back: the last runs lie in the future, so every job is due again.
    let out = run(r, &["--now", "2026-03-20T03:00:00Z", "--json", "maintain"]);
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for job in listed(&v) {
        assert_eq!(job["ran"], true, "{job}");
    }
    // A weekly backup stamped in the future does not count as this week's.
    assert!(r.join("data/backups/weekly_backup_20260320_030000.zip").is_file(), "{v}");
    // `status` says what is wrong with the clock's leftovers.
    let out = run(r, &["--now", "2026-03-20T04:00:00Z", "status"]);
    assert_code(&out, 0);
    assert!(
        stdout(&out).contains("weekly_backup_20270320_030000 was made in the future"),
        "{}",
        stdout(&out)
    );
    // A state file stamped in the future (the jobs ran at 03:00; `status` now at 02:00).
    let out = run(r, &["--now", "2026-03-20T02:00:00Z", "status"]);
    assert!(stdout(&out).contains("last run of logs_archive is in the future"), "{}", stdout(&out));
}

// === leftovers of a killed run ===

#[cfg(target_os = "linux")]
#[test]
fn the_next_locked_run_removes_a_killed_restores_safety_temp() {
    // regression (issue 8): a restore killed while writing its safety backup left
    // `.tmp-<deadpid>-pre_restore_safety_*.zip` (full size) until a backup was made.
    let root = make_root();
    let r = root.path();
    // pid 999999999 is above any pid_max: its writer is gone.
    let safety = r.join("data/backups/.tmp-999999999-pre_restore_safety_20260320_100000.zip");
    let state = r.join("data/.tmp-999999999-.sidecar_state.json");
    for (i, args) in [["logs", "archive"], ["messages", "archive"]].iter().enumerate() {
        write(&safety, vec![0u8; 4096]);
        write(&state, "{");
        let out = run(r, args);
        assert_code(&out, 0);
        assert!(!safety.exists(), "run {i} ({args:?}) left the safety temp");
        assert!(!state.exists(), "run {i} ({args:?}) left the state temp");
        assert!(stderr(&out).contains("pre_restore_safety_20260320_100000"), "{}", stderr(&out));
    }
    // A live writer's temp (ours: this test's pid) stays.
    let live = r.join(format!("data/backups/.tmp-{}-mhm_backup_x.zip", std::process::id()));
    write(&live, "being written");
    assert_code(&run(r, &["logs", "archive"]), 0);
    assert!(live.exists());
}

// === `logs archive` beside a running writer ===

type Once = std::sync::Mutex<Option<Box<dyn FnOnce() + Send>>>;

/// Runs its hook once, at the first progress report of the first bar.
struct Hook(std::sync::Arc<Once>);

impl mhm_sidecar::Progress for Hook {
    fn start(&self, _what: &str, _total: u64) -> Box<dyn mhm_sidecar::Bar> {
        Box::new(Hook(self.0.clone()))
    }
}

impl mhm_sidecar::Bar for Hook {
    fn inc(&self, _n: u64) {
        let hook = self.0.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
    }
    fn finish(&self) {}
}

#[test]
fn copies_the_writer_moves_or_compresses_meanwhile_are_not_failures() {
    // regression (issue 8): beside a running writer, `logs archive` exited 1 with "No such
    // file or directory" or "...gz appeared while it was written" for copies the writer
    // had moved or compressed meanwhile.
    use mhm_sidecar::{archival, Ctx};
    let root = make_root();
    let r = root.path();
    let backups = r.join("logs/backups");
    let archive = r.join("logs/archive");
    // Big enough (9 MiB) for a progress bar, during which the "writer" acts.
    let mut rng = Rng(7);
    let big: Vec<u8> = (0..9 << 20).map(|_| b"abcdefgh\n"[(rng.next() % 9) as usize]).collect();
    write(&backups.join("app.log.2026-01-01"), &big);
    write(&backups.join("app.log.2026-01-02"), "second day\n");
    write(&backups.join("app.log.2026-01-03"), "third day\n");
    let (b, a) = (backups.clone(), archive.clone());
    let writer = move || {
        // The writer compresses the copy being compressed, and the next one, and moves
        // the third as it is: each source is gone, an identical .gz is there.
        for day in ["01", "02"] {
            let from = b.join(format!("app.log.2026-01-{day}"));
            write(&a.join(format!("app.log.2026-01-{day}.gz")), gz(&fs::read(&from).unwrap()));
            fs::remove_file(from).unwrap();
        }
        fs::rename(b.join("app.log.2026-01-03"), a.join("app.log.2026-01-03")).unwrap();
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-01-20T02:00:00Z").unwrap();
    let ctx = Ctx::new(r, now.into()).unwrap().with_progress(std::sync::Arc::new(Hook(
        std::sync::Arc::new(std::sync::Mutex::new(Some(Box::new(writer)))),
    )));
    let report = archival::archive(&ctx, &archival::log_dirs(&ctx, &[]).unwrap(), false).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Each copy once, whole; no temporary file left.
    assert_eq!(
        names(&archive),
        ["app.log.2026-01-01.gz", "app.log.2026-01-02.gz", "app.log.2026-01-03"]
    );
    let mut text = Vec::new();
    use std::io::Read as _;
    flate2::read::GzDecoder::new(fs::File::open(archive.join("app.log.2026-01-01.gz")).unwrap())
        .read_to_end(&mut text)
        .unwrap();
    assert!(text == big);
    assert!(names(&backups).is_empty(), "{:?}", names(&backups));
}

// === clear messages ===

/// Runs the binary under `sh` with a file size limit of `kib` KiB (writes past it fail
/// with EFBIG, as on a full disk; SIGXFSZ ignored).
#[cfg(target_os = "linux")]
fn run_with_file_limit(root: &Path, kib: u32, args: &[&str]) -> std::process::Output {
    let script = format!("trap '' XFSZ; ulimit -f {}; exec \"$0\" \"$@\"", kib * 2);
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_mhm-sidecar"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("MHM_ROOT")
        .env_remove("MHM_NOW")
        .env("TZ", "UTC")
        .launch_output()
        .unwrap()
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_clear_error_line() {
    // regression (issue 8): the zip crate printed "ZipWriter drop failed: Io(...)" (no
    // newline) in front of the error line when a backup could not be written.
    let root = make_root();
    let r = root.path();
    fs::create_dir_all(r.join("data/backups")).unwrap();
    let before = names(&r.join("data/backups"));
    let out = run_with_file_limit(r, 16, &["backup", "create", "--name", "full"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("ZipWriter"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("File too large"), "{err}");
    assert_eq!(names(&r.join("data/backups")), before, "nothing left behind");
    // The same on the parallel path (over 4 MiB: shards compressed on worker threads).
    let blob: Vec<u8> =
        (0..6_000_000u32).map(|n| (n.wrapping_mul(2654435761) >> 13) as u8).collect();
    write(&r.join("data/users/u1/big.bin"), blob);
    let out = run_with_file_limit(r, 64, &["backup", "create", "--name", "full"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(!err.contains("ZipWriter"), "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(names(&r.join("data/backups")), before, "nothing left behind");
}

#[test]
fn a_bad_user_id_is_a_usage_error_before_anything_happens() {
    // regression (issue 8): `backup restore X --user .` made a safety backup, then failed
    // with "Device or resource busy" renaming data/users/. aside.
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    let before = snapshot(r);
    for id in [".", "..", "", "u1/../u2", "/etc", "u1/"] {
        let out = run(r, &["backup", "restore", "base", "--user", id]);
        assert_code(&out, 2);
        assert!(stderr(&out).contains("invalid user id"), "{id:?}: {}", stderr(&out));
        assert_same(&before, &snapshot(r));
    }
}

#[test]
fn entry_names_with_dot_or_empty_components_are_refused() {
    // `users/./u1/a.json` and `users//u1/a.json` name the file `users/u1/a.json` names:
    // one more way to store one file twice.
    let root = make_root();
    let r = root.path();
    for name in ["users/./u1/a.json", "users//u1/a.json"] {
        let files: [(&str, &[u8]); 2] = [("users/u1/a.json", b"{}"), (name, b"[]")];
        crafted_backup(&r.join("data/backups/dots.zip"), &files, &[]);
        let out = run(r, &["backup", "verify", "dots"]);
        assert_code(&out, 1);
        assert!(stdout(&out).contains("component"), "{name}: {}", stdout(&out));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn user_data_a_backup_cannot_hold_fails_the_backup_and_validate_names_it() {
    // regression (issue 8): a file under data/users/ whose name is not UTF-8 was skipped
    // with a warning and `backup create` exited 0: a backup missing user data, unnoticed.
    use std::os::unix::ffi::OsStrExt;
    let root = make_root();
    let r = root.path();
    let odd = r.join("data/users/u1").join(std::ffi::OsStr::from_bytes(b"notes-\xff.json"));
    fs::write(&odd, "{}").unwrap();
    let out = run(r, &["backup", "create", "--name", "b"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("leaves out") && err.contains("notes-"), "{err}");
    // Everything else is in it (a partial backup beats none), and it verifies.
    assert_code(&run(r, &["backup", "verify", "b"]), 0);
    let out = run(r, &["--dry-run", "backup", "create", "--name", "c"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("notes-"), "{}", stderr(&out));
    let out = run(r, &["system", "validate"]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("not valid UTF-8"), "{}", stdout(&out));
    // The weekly job says it failed, and why.
    let out = run(r, &["--now", "2026-03-20T03:00:00Z", "maintain"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("notes-"), "{}", stderr(&out));
}

#[test]
fn the_free_space_check_asks_for_what_the_restore_writes() {
    // regression (issue 8): restore asked for the extracted bytes plus the *apparent* size
    // of the live users folder plus 16 MiB, so a large sparse (or merely compressible) file
    // made every restore "not enough free space" on a disk with plenty.
    let root = make_root();
    let r = root.path();
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    // 8 TiB that take no disk space, and compress to next to nothing in a safety backup.
    let sparse = fs::File::create(r.join("data/users/u3/sparse.bin")).unwrap();
    // On Windows a file is sparse only once marked so; set_len would allocate it all.
    #[cfg(windows)]
    mark_sparse(&sparse);
    sparse.set_len(8 << 40).unwrap();
    let out = run(r, &["--dry-run", "backup", "restore", "base", "--user", "u1"]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("free space"), "{}", stderr(&out));
}

/// Marks `file` sparse (FSCTL_SET_SPARSE), so that its unwritten ranges take no space.
#[cfg(windows)]
fn mark_sparse(file: &fs::File) {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::System::{Ioctl::FSCTL_SET_SPARSE, IO::DeviceIoControl};
    let mut returned = 0u32;
    // SAFETY: the handle is open for the call; no buffers are passed; `returned` outlives it.
    let ok = unsafe {
        DeviceIoControl(
            file.as_raw_handle(),
            FSCTL_SET_SPARSE,
            std::ptr::null(),
            0,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
        )
    };
    assert_ne!(ok, 0, "FSCTL_SET_SPARSE: {}", std::io::Error::last_os_error());
}

/// Issue 21, round three: a link planted at `data/.sidecar.lock`, `logs/sidecar.log` or the
/// log's hidden files made even `status` (run by root's cron) append to, truncate or
/// overwrite the file it points to. Now the lock is refused (exit 2 naming it), the log is
/// not written through the link (the run goes on without it), and the target is untouched.
#[cfg(unix)]
#[test]
fn links_planted_where_the_tools_write_are_refused() {
    for planted in [
        "data/.sidecar.lock",
        "logs/sidecar.log",
        "logs/.sidecar.log.shm",
        "logs/.sidecar.log.lock",
    ] {
        let root = make_root();
        let r = root.path();
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("precious");
        fs::write(&target, "do not touch\n").unwrap();
        std::os::unix::fs::symlink(&target, r.join(planted)).unwrap();
        for args in [&["status"][..], &["backup", "create", "--name", "b1"], &["maintain"]] {
            let out = run(r, args);
            assert_eq!(
                fs::read_to_string(&target).unwrap(),
                "do not touch\n",
                "{planted}: {args:?}"
            );
            if planted == "data/.sidecar.lock" && args[0] != "status" {
                assert_code(&out, 1);
                assert!(
                    stderr(&out).contains(".sidecar.lock") && stderr(&out).contains("link"),
                    "{}",
                    stderr(&out)
                );
            }
        }
    }
}

/// A link planted at `data/.sidecar_state.json` was read through, then taken for a corrupt
/// state file: moved aside, every job treated as never run (the monthly message archive ran
/// early). It is refused now, naming it: `maintain` runs nothing and fails, `status` says
/// so, the link stays for the operator to see, and its target is untouched.
#[cfg(unix)]
#[test]
fn a_link_planted_at_the_state_file_is_refused_not_followed() {
    let root = make_root();
    let r = root.path();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("precious");
    fs::write(&target, "do not touch\n").unwrap();
    let state = r.join("data/.sidecar_state.json");
    std::os::unix::fs::symlink(&target, &state).unwrap();
    let before = snapshot(r);
    for args in [&["maintain"][..], &["status"], &["maintain", "--dry-run"]] {
        let out = run(r, args);
        assert_code(&out, 1);
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(said.contains(".sidecar_state.json") && said.contains("link"), "{args:?}: {said}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "do not touch\n", "{args:?}");
        assert!(state.symlink_metadata().unwrap().file_type().is_symlink(), "{args:?}");
    }
    // Nothing ran, nothing was set aside: only the sidecar's own log and lock changed.
    let changed = changed_besides_own(&before, &snapshot(r));
    assert!(changed.is_empty(), "{changed:?}");
}

/// Issue 21 (2): `.env`, `data/user_index.json` and user files that were `0600` came back
/// `0644` from `backup restore --users --config`, and archives and `.gz` copies made from
/// `0600` sources were `0644`. Each keeps its source's mode now, never wider.
#[cfg(unix)]
#[test]
fn restore_archives_and_copies_keep_their_sources_modes() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let set = |p: &std::path::Path, m: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap()
    };
    let root = make_root();
    let r = root.path();
    let secret =
        [r.join(".env"), r.join("data/user_index.json"), r.join("data/users/u1/account.json")];
    for p in &secret {
        set(p, 0o600);
    }
    set(&r.join("data/users/u2/account.json"), 0o640);
    assert_code(&run(r, &["backup", "create", "--name", "m1"]), 0);
    write(&r.join("data/users/u1/account.json"), "{\"changed\": true}");
    assert_code(&run(r, &["backup", "restore", "m1", "--users", "--config"]), 0);
    for p in &secret {
        assert_eq!(mode(p), 0o600, "{}", p.display());
    }
    assert_eq!(mode(&r.join("data/users/u2/account.json")), 0o640);
    // A log copy and its .gz, and a .restored file, from a 0600 source.
    let copy = r.join("logs/backups/app.log.2026-02-20");
    write(&copy, "old line\n");
    set(&copy, 0o600);
    assert_code(&run(r, &["--now", "2026-03-01T02:00:00Z", "logs", "archive"]), 0);
    let gz = r.join("logs/archive/app.log.2026-02-20.gz");
    assert_eq!(mode(&gz), 0o600);
    assert_code(&run(r, &["logs", "restore", "app.log.2026-02-20.gz"]), 0);
    assert_eq!(mode(&r.join("logs/app.log.restored")), 0o600);
    // A message archive made from a 0600 sent_messages.json.
    let sent = r.join("data/users/u3/messages/sent_messages.json");
    write(
        &sent,
        r#"{"messages": [{"timestamp": "2020-01-01 10:00:00", "text": "old"}], "metadata": {}}"#,
    );
    set(&sent, 0o600);
    assert_code(
        &run(r, &["--now", "2026-03-01T00:00:00Z", "messages", "archive", "--user", "u3"]),
        0,
    );
    let archives = names(&r.join("data/users/u3/messages/archives"));
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert_eq!(mode(&r.join("data/users/u3/messages/archives").join(&archives[0])), 0o600);
}

/// Issue 21: every number a setting holds is bounded or saturates: the largest values
/// (and one past what 64 bits hold) end in a clear error or a run, never in a panic or
/// an abort, in the commands that read them.
#[test]
fn huge_numeric_settings_never_panic_or_abort() {
    let root = make_root();
    let r = root.path();
    let names = [
        "BACKUP_MAX_COUNT",
        "BACKUP_RETENTION_DAYS",
        "LOG_ARCHIVE_COUNT",
        "LOG_ARCHIVE_MAX_AGE_DAYS",
        "LOG_BACKUP_COUNT",
        "LOG_BUFFER_BYTES",
        "LOG_FLUSH_INTERVAL_MS",
        "LOG_MAX_BYTES",
        "LOG_MIN_ROTATE_AGE_SECS",
        "LOG_MIN_ROTATE_BYTES",
        "MESSAGE_ARCHIVE_RETENTION_DAYS",
        "MIN_FREE_DISK_MB",
        "REMOTE_MAX_AGE_DAYS",
        "REMOTE_MAX_COUNT",
        "REMOTE_RETENTION_DAYS",
    ];
    for name in names {
        for value in ["18446744073709551615", "106751991167301", "100000000000000000000"] {
            write(&r.join(".env"), format!("APP_MODE=test\n{name}={value}\n"));
            for args in [&["status"][..], &["maintain"], &["backup", "prune"], &["logs", "archive"]]
            {
                let out = run(r, args);
                let c = code(&out);
                assert!(
                    (0..=3).contains(&c) && !stderr(&out).contains("panicked"),
                    "{name}={value} {args:?}: exit {c}\n{}",
                    stderr(&out)
                );
                if c == 2 {
                    // A refusal names the setting and its bound.
                    assert!(
                        stderr(&out).contains(name),
                        "{name}={value} {args:?}: {}",
                        stderr(&out)
                    );
                }
            }
        }
    }
}

// regression: `BACKUP_MAX_COUNT=1000000000`, `LOG_BACKUP_COUNT=100000000`,
// `BACKUP_RETENTION_DAYS=10000000000` and `LOG_MAX_BYTES=18446744073709551615` were taken
// silently, and `BACKUP_MAX_COUNT=99999999999999999999` said only "expected a whole number".
#[test]
fn settings_past_their_bound_are_named_with_the_bound() {
    let root = make_root();
    let r = root.path();
    write(
        &r.join(".env"),
        "APP_MODE=test\nBACKUP_MAX_COUNT=1000000000\nLOG_BACKUP_COUNT=100000000\n\
         BACKUP_RETENTION_DAYS=10000000000\nLOG_MAX_BYTES=18446744073709551615\n\
         REMOTE_MAX_COUNT=99999999999999999999\n",
    );
    let out = run(r, &["--json", "status"]);
    assert_code(&out, 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = setting_reasons(&v);
    for (name, max) in [
        ("BACKUP_MAX_COUNT", "100000"),
        ("LOG_BACKUP_COUNT", "10000000"),
        ("BACKUP_RETENTION_DAYS", "36500"),
        ("LOG_MAX_BYTES", "9223372036854775807"),
        ("REMOTE_MAX_COUNT", "100000"),
    ] {
        assert!(
            settings.iter().any(|s| s.contains(name) && s.contains(&format!("at most {max}"))),
            "{name}: {settings:?}"
        );
    }
    // Every command names them all, and stops (a LOG_* one is among them): no abort.
    let out = run(r, &["backup", "list"]);
    assert_code(&out, 2);
    let err = stderr(&out);
    for name in ["BACKUP_MAX_COUNT", "LOG_BACKUP_COUNT", "BACKUP_RETENTION_DAYS", "LOG_MAX_BYTES"] {
        assert!(err.contains(name), "{name}: {err}");
    }
}
