#!/usr/bin/env python3
"""Prints the README's benchmark table from criterion's last run (target/criterion).

Each figure is a median in ns per iteration; an iteration of a 2threads/* bench is one
event on each of two threads. Ratios compare benchmarks of the same run.
"""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median(name):
    group, bench = name.split("/")
    path = root / f"{group}_{bench}" / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


rows = []
for name in [
    "fmt/sink", "fmt/bufwriter", "fmt/appender_daily", "fmt/appender_non_blocking",
    "fmt/rolling_direct", "fmt/rolling_direct_check", "fmt/rolling_direct_norotate",
    "fmt/rolling_buffered", "logfiles/direct", "logfiles/buffered", "logfiles/buffered_check",
    "logfiles/buffered_norotate", "2threads/fmt_sink", "2threads/fmt_rolling_buffered",
    "2threads/logfiles_buffered",
]:
    try:
        rows.append((name, median(name)))
    except FileNotFoundError:
        pass
m = dict(rows)
print("| benchmark | median ns/iter | ratio to fmt/sink |")
print("|---|---:|---:|")
for name, ns in rows:
    print(f"| {name} | {ns:.0f} | {ns / m['fmt/sink']:.2f} |")


def ratio(a, b):
    return m[a] / m[b]


def scaling(two, one):
    return 2 * m[one] / m[two]


checks = [
    ("RollingFile direct / fmt+rolling::daily (target <= 1.0)", ratio("fmt/rolling_direct", "fmt/appender_daily")),
    ("RollingFile buffered / fmt+BufWriter<File> (target <= 1.1)", ratio("fmt/rolling_buffered", "fmt/bufwriter")),
    ("LogFiles buffered / fmt+sink (target <= 0.3)", ratio("logfiles/buffered", "fmt/sink")),
    ("rotation check / DISABLE_LOG_ROTATION, LogFiles buffered (target <= 1.03)", ratio("logfiles/buffered_check", "logfiles/buffered_norotate")),
    ("rotation check / DISABLE_LOG_ROTATION, fmt+RollingFile direct (target <= 1.03)", ratio("fmt/rolling_direct_check", "fmt/rolling_direct_norotate")),
    ("real rotation (every 5 MiB) / DISABLE_LOG_ROTATION, LogFiles buffered", ratio("logfiles/buffered", "logfiles/buffered_norotate")),
    ("2-thread scaling, fmt+sink (events/s 2 threads / 1 thread)", scaling("2threads/fmt_sink", "fmt/sink")),
    ("2-thread scaling, LogFiles buffered", scaling("2threads/logfiles_buffered", "logfiles/buffered")),
    ("2-thread scaling, fmt+RollingFile buffered", scaling("2threads/fmt_rolling_buffered", "fmt/rolling_buffered")),
]
print()
print("| check | figure |")
print("|---|---:|")
for label, value in checks:
    print(f"| {label} | {value:.2f} |")
s_layer = scaling("2threads/logfiles_buffered", "logfiles/buffered") / scaling("2threads/fmt_sink", "fmt/sink")
print(f"| LogFiles scaling / fmt+sink scaling (target >= 0.9) | {s_layer:.2f} |")
