//! Crash consistency: SIGKILL the binary at random moments during `backup create` and
//! `logs archive`. After each kill no file under a final name is partial, the originals
//! are all there, and the next run cleans up and succeeds.
#![cfg(unix)]

use crate::common;

use std::{
    collections::BTreeMap,
    fs,
    io::Read,
    path::Path,
    time::{Duration, Instant},
};

use common::*;

const KILLS: u64 = 10;

/// Text that compresses like a log does (about 4:1), so compression takes real time.
fn log_text(rng: &mut Rng, bytes: usize) -> Vec<u8> {
    let words =
        ["alpha", "user", "sent", "message", "error", "retry", "42", "ok", "scheduler", "discord"];
    let mut out = Vec::with_capacity(bytes + 100);
    while out.len() < bytes {
        let n = rng.next();
        out.extend_from_slice(
            format!(
                "2026-01-01 10:{:02}:{:02},{:03} - mhm - INFO - ",
                n % 60,
                (n >> 8) % 60,
                (n >> 16) % 1000
            )
            .as_bytes(),
        );
        for i in 0..6 {
            out.extend_from_slice(words[((n >> (i * 4)) % 10) as usize].as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(format!("{}\n", n % 100_000).as_bytes());
    }
    out
}

/// Runs `args` and kills it after `after`; returns whether it had finished by itself.
fn run_and_kill(root: &Path, args: &[&str], after: Duration) -> bool {
    let mut child = spawn_quiet(root, args);
    std::thread::sleep(after);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    finished
}

/// When to kill: spread over one run's length as measured, and narrowed after each kill
/// that came too late (the run had already finished: the machine is faster now than when
/// it was measured, as on a shared machine it often is). The tests kill until `KILLS`
/// kills have landed in a running process, whatever the scheduler does: the spread shrinks
/// by 30 % a miss, so after a few misses the kill comes right after the start.
struct Spread(Duration);

/// Most kills one test makes while waiting for `KILLS` to land: reached only if the
/// narrowing above is broken (20 misses narrow the spread to under a thousandth).
const MAX_TRIES: u64 = 20 * KILLS;

impl Spread {
    fn at(&self, rng: &mut Rng) -> Duration {
        Duration::from_micros(rng.next() % (self.0.as_micros() as u64 + 1))
    }

    fn too_late(&mut self) {
        self.0 = self.0.mul_f64(0.7);
    }
}

fn timed(root: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    assert_code(&run(root, args), 0);
    start.elapsed()
}

fn zip_is_whole(path: &Path) -> Result<(), String> {
    let mut z = zip::ZipArchive::new(fs::File::open(path).map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(|e| e.to_string())?;
        std::io::copy(&mut e, &mut std::io::sink())
            .map_err(|err| format!("{}: {err}", path.display()))?;
    }
    z.by_name("manifest.json").map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(())
}

#[test]
fn sigkill_during_backup_create() {
    let root = make_root();
    let r = root.path();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for u in ["u1", "u2"] {
        write(&r.join("data/users").join(u).join("history.log"), log_text(&mut rng, 2 << 20));
    }
    let users_before = snapshot(&r.join("data/users"));
    // How long one whole run takes here, to spread the kills over it.
    let mut spread = Spread(timed(r, &["backup", "create", "--name", "calibrate"]));
    let mut interrupted = 0;
    for i in 0..MAX_TRIES {
        if interrupted == KILLS {
            break;
        }
        let at = spread.at(&mut rng);
        let name = format!("killed{i}");
        let finished = run_and_kill(r, &["backup", "create", "--name", &name], at);
        let dir = r.join("data/backups");
        for n in common::names(&dir).iter().filter(|n| n.ends_with(".zip") && !n.starts_with('.')) {
            if let Err(e) = zip_is_whole(&dir.join(n)) {
                panic!("kill {i} at {at:?}: partial backup under a final name: {e}");
            }
        }
        if finished {
            assert!(dir.join(format!("{name}.zip")).is_file());
            spread.too_late();
        } else {
            interrupted += 1;
        }
        assert_same(&users_before, &snapshot(&r.join("data/users")));
    }
    assert_eq!(interrupted, KILLS, "the spread never narrowed onto a running backup");
    // The next run succeeds and removes what the killed ones left.
    assert_code(&run(r, &["backup", "create", "--name", "after"]), 0);
    let left: Vec<String> = common::names(&r.join("data/backups"))
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    assert_code(&run(r, &["backup", "verify", "after"]), 0);
}

#[test]
fn sigkill_during_logs_archive() {
    let root = make_root();
    let r = root.path();
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut originals = BTreeMap::new();
    for day in 1..=5 {
        let name = format!("app.log.2026-01-{day:02}");
        let text = log_text(&mut rng, 512 << 10);
        write(&r.join("logs/backups").join(&name), &text);
        originals.insert(name, text);
    }
    // Calibrate on a copy of the same tree.
    let calib = tempfile::tempdir().unwrap();
    for (name, text) in &originals {
        write(&calib.path().join("logs/backups").join(name), text);
    }
    let args = ["--now", "2026-01-20T02:00:00Z", "logs", "archive"];
    let mut spread = Spread(timed(calib.path(), &args));
    let mut interrupted = 0;
    for i in 0..MAX_TRIES {
        if interrupted == KILLS {
            break;
        }
        // Each kill starts from the full set of plain copies.
        let _ = fs::remove_dir_all(r.join("logs/archive"));
        let _ = fs::remove_dir_all(r.join("logs/backups"));
        for (name, text) in &originals {
            write(&r.join("logs/backups").join(name), text);
        }
        let at = spread.at(&mut rng);
        if run_and_kill(r, &args, at) {
            spread.too_late();
        } else {
            interrupted += 1;
        }
        for (name, text) in &originals {
            let plain = r.join("logs/backups").join(name);
            let gz = r.join("logs/archive").join(format!("{name}.gz"));
            let plain_ok = fs::read(&plain).ok().is_some_and(|b| &b == text);
            let gz_state = fs::File::open(&gz).ok().map(|f| {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(f).read_to_end(&mut out).map(|_| out)
            });
            match gz_state {
                Some(Ok(bytes)) => {
                    assert_eq!(&bytes, text, "kill {i}: {} holds other bytes", gz.display())
                }
                Some(Err(e)) => panic!("kill {i} at {at:?}: truncated {}: {e}", gz.display()),
                None => {
                    assert!(plain_ok, "kill {i} at {at:?}: {name} is neither plain nor gzipped")
                }
            }
            if plain.exists() {
                assert!(plain_ok, "kill {i}: {} changed", plain.display());
            }
        }
        // The next run finishes the job and cleans up.
        assert_code(&run(r, &args), 0);
        let archive = common::names(&r.join("logs/archive"));
        assert_eq!(archive.len(), originals.len(), "kill {i}: {archive:?}");
        assert!(archive.iter().all(|n| n.ends_with(".gz")), "kill {i}: {archive:?}");
        assert!(common::names(&r.join("logs/backups")).is_empty(), "kill {i}");
    }
    assert_eq!(interrupted, KILLS, "the spread never narrowed onto a running archival");
}

#[test]
fn sigkill_during_restore_leaves_all_old_or_all_new() {
    let root = make_root();
    let r = root.path();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    write(&r.join("data/users/u1/history.log"), log_text(&mut rng, 2 << 20));
    assert_code(&run(r, &["backup", "create", "--name", "base"]), 0);
    let new_users = snapshot(&r.join("data/users"));
    let new_env = fs::read(r.join(".env")).unwrap();
    // The "old" state a restore replaces: changed, deleted and added files.
    write(&r.join("data/users/u1/account.json"), r#"{"old": true}"#);
    fs::remove_dir_all(r.join("data/users/u3")).unwrap();
    write(&r.join("data/users/u4/account.json"), "{}");
    write(&r.join(".env"), "APP_MODE=old\n");
    let pristine = tempfile::tempdir().unwrap();
    copy_tree(&r.join("data/users"), pristine.path());
    let old_users = snapshot(&r.join("data/users"));
    let old_env = fs::read(r.join(".env")).unwrap();
    let args = ["backup", "restore", "base", "--users", "--config"];
    let mut spread = Spread(timed(r, &args));
    let mut saw = (0, 0);
    // At least `KILLS` kills, and on until one landed before the swap (each kill that
    // landed after it narrows the spread, as a kill after the end does).
    for i in 0..MAX_TRIES {
        if i >= KILLS && saw.0 > 0 {
            break;
        }
        // Back to the old state.
        fs::remove_dir_all(r.join("data/users")).unwrap();
        copy_tree(pristine.path(), &r.join("data/users"));
        fs::write(r.join(".env"), &old_env).unwrap();
        let at = spread.at(&mut rng);
        if run_and_kill(r, &args, at) {
            spread.too_late();
        }
        // The next run that takes the lock finishes or rolls back the interrupted restore.
        assert_code(&run(r, &["backup", "prune"]), 0);
        let users = snapshot(&r.join("data/users"));
        let env = fs::read(r.join(".env")).unwrap();
        if users == old_users && env == old_env {
            saw.0 += 1;
        } else if users == new_users && env == new_env {
            saw.1 += 1;
            if saw.0 == 0 {
                spread.too_late();
            }
        } else {
            panic!("kill {i} at {at:?}: a mix of old and new data");
        }
        let leftovers: Vec<String> =
            names(&r.join("data")).into_iter().filter(|n| n.starts_with(".restore")).collect();
        assert!(leftovers.is_empty(), "kill {i}: {leftovers:?}");
    }
    assert!(saw.0 > 0, "the spread never narrowed onto a run before its swap: {saw:?}");
}
