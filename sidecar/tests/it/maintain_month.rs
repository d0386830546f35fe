//! `maintain` across a simulated month and a half, day by day with `--now`: each job runs
//! on its schedule, and a second call at the same moment runs nothing and changes nothing.

use crate::common;

use std::fs;

use common::*;

#[test]
fn forty_days_of_maintain() {
    let root = make_root();
    let r = root.path();
    // u1: messages from before the first run's 365-day horizon, and some that cross it
    // in the middle of the month (archived by the second monthly run, not the first).
    let messages: Vec<_> = [
        "2025-01-10 09:00:00",
        "2025-02-20 09:00:00",
        "2025-03-15 09:00:00",
        "2026-02-01 09:00:00",
    ]
    .iter()
    .map(|t| serde_json::json!({"timestamp": t, "message": format!("sent {t}")}))
    .collect();
    write(
        &r.join("data/users/u1/messages/sent_messages.json"),
        serde_json::to_vec(&serde_json::json!({"messages": messages, "metadata": {}})).unwrap(),
    );
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T03:00:00Z").unwrap();
    let mut ran: Vec<(i64, String)> = Vec::new();
    for day in 0..40 {
        let now = (start + chrono::Duration::days(day)).to_rfc3339();
        let out = run(r, &["--now", &now, "--json", "maintain"]);
        assert_code(&out, 0);
        let jobs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for job in listed(&jobs) {
            if job["ran"] == true {
                ran.push((day, job["name"].as_str().unwrap().to_string()));
            }
        }
        // The same moment again: nothing is due, no file changes.
        let before = snapshot(r);
        let again = run(r, &["--now", &now, "--json", "maintain"]);
        assert_code(&again, 0);
        let jobs: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
        assert!(listed(&jobs).iter().all(|j| j["ran"] == false), "day {day}: {jobs}");
        assert_same(&before, &snapshot(r));
    }
    let days_of =
        |name: &str| ran.iter().filter(|(_, n)| n == name).map(|(d, _)| *d).collect::<Vec<_>>();
    assert_eq!(days_of("logs_archive"), (0..40).collect::<Vec<_>>(), "daily at 02:00");
    assert_eq!(days_of("weekly_backup"), (0..40).collect::<Vec<_>>(), "the weekly check is daily");
    assert_eq!(days_of("messages_archive"), [0, 30], "monthly: 30 days after the last run");
    // Weekly backups every 7 days; prune (after each) removed the ones 30 days old.
    let weekly: Vec<String> = names(&r.join("data/backups"))
        .into_iter()
        .filter(|n| n.starts_with("weekly_backup_"))
        .collect();
    let expected: Vec<String> = [8, 15, 22, 29]
        .iter()
        .map(|d| format!("weekly_backup_202603{d:02}_030000.zip"))
        .chain(["weekly_backup_20260405_030000.zip".to_string()])
        .collect();
    assert_eq!(weekly, expected);
    // Two archive files for u1: the first run's two old messages, then the one that
    // crossed the horizon on 2026-03-15.
    let archives = names(&r.join("data/users/u1/messages/archives"));
    assert_eq!(
        archives,
        [
            "sent_messages_archive_20260301_030000.json",
            "sent_messages_archive_20260331_030000.json"
        ]
    );
    let second: serde_json::Value = serde_json::from_slice(
        &fs::read(r.join("data/users/u1/messages/archives").join(&archives[1])).unwrap(),
    )
    .unwrap();
    assert_eq!(second["messages"].as_array().unwrap().len(), 1);
    let active: serde_json::Value = serde_json::from_slice(
        &fs::read(r.join("data/users/u1/messages/sent_messages.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(active["messages"].as_array().unwrap().len(), 1);
}
