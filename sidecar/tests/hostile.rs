//! Findings of the attack campaign of issue 8: hostile backups, broken zips, a clock that
//! jumped, leftovers of killed runs, races with the log writer, and unclear messages.

mod common;

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
