//! Property: for random sets of backups (kinds, ages) and foreign or corrupt zips without a
//! manifest of ours, `backup prune` keeps exactly what the rule says: of the backups,
//! nothing 30+ days old, at most 10 per kind, and always the newest valid one whatever the
//! rules say; the zips without a manifest are not backups, so they are neither counted nor
//! deleted.

use crate::common;

use std::{collections::BTreeSet, fs};

use common::*;

#[test]
fn prune_keeps_exactly_what_the_rule_says() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for case in 0..25 {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let dir = r.join("data/backups");
        // Thirds: all 30+ days old; many recent ones (the per-kind count decides); mixed.
        let (n, spread) = match case % 3 {
            0 => (1 + rng.next() % 30, 60 * 24 * 45),
            1 => (20 + rng.next() % 30, 60 * 24 * 20),
            _ => (1 + rng.next() % 30, 60 * 24 * 45),
        };
        // (name, kind, age in minutes, valid)
        let mut made = Vec::new();
        let mut used = BTreeSet::new();
        // When all are 30+ days old the rule would delete them all, and only the "newest
        // valid" exception keeps one.
        let base = if case % 3 == 0 { 30 * 24 * 60 } else { 0 };
        for _ in 0..n {
            let minutes = base + rng.next() % spread;
            if !used.insert(minutes) {
                continue;
            }
            let t = now - chrono::Duration::minutes(minutes as i64);
            let kind =
                ["weekly_backup_", "mhm_backup_", "pre_restore_safety_"][(rng.next() % 3) as usize];
            let name = format!("{kind}{}", t.format("%Y%m%d_%H%M%S"));
            let valid = !rng.next().is_multiple_of(6);
            let path = dir.join(format!("{name}.zip"));
            if valid {
                let file: (&str, &[u8]) = ("users/u1/a.json", b"{}");
                let mut m: serde_json::Value =
                    serde_json::from_slice(&manifest_for(&[file], 1)).unwrap();
                m["backup_name"] = name.clone().into();
                m["created_at"] = t.to_rfc3339().into();
                raw_zip(&path, &[file, ("manifest.json", &serde_json::to_vec(&m).unwrap())], &[]);
            } else {
                write(&path, b"corrupt");
            }
            made.push((name, kind, minutes, valid));
        }
        let out = run(r, &["--now", &now.to_rfc3339(), "backup", "prune"]);
        assert_code(&out, 0);

        let newest_valid = made.iter().filter(|b| b.3).min_by_key(|b| b.2).map(|b| b.0.clone());
        let mut expected = BTreeSet::new();
        for b in made.iter().filter(|b| !b.3) {
            expected.insert(format!("{}.zip", b.0));
        }
        for kind in ["weekly_backup_", "mhm_backup_", "pre_restore_safety_"] {
            let mut of_kind: Vec<_> = made.iter().filter(|b| b.1 == kind && b.3).collect();
            of_kind.sort_by_key(|b| b.2); // newest first
            for (i, b) in of_kind.iter().enumerate() {
                let too_old = b.2 >= 30 * 24 * 60;
                if (!too_old && i < 10) || Some(&b.0) == newest_valid.as_ref() {
                    expected.insert(format!("{}.zip", b.0));
                }
            }
        }
        let left: BTreeSet<String> = fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        assert_eq!(left, expected, "case {case}: {}", stdout(&out));
        if let Some(v) = &newest_valid {
            assert!(
                left.contains(&format!("{v}.zip")),
                "case {case}: the newest valid backup went"
            );
        }
    }
}
