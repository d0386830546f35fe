#!/usr/bin/env python3
"""Prints the README's benchmark table from criterion runs of benches/hot_path.rs.

    python3 benches/ratios.py [RUN_DIR ...]     (default: target/criterion, the last run)

Each RUN_DIR is a copy of target/criterion after one full `cargo bench --bench hot_path`
(benches/run.sh makes them). Figures are medians in ns per iteration (an iteration of a
2threads/* bench is one event on each of two threads); every ratio is computed within one
run, between benchmarks of that run, and the table shows the median over the runs.
"""
import json
import pathlib
import statistics
import sys

roots = [pathlib.Path(p) for p in sys.argv[1:]] or [pathlib.Path("target/criterion")]

NAMES = [
    "fmt/sink", "fmt/bufwriter", "fmt/appender_daily", "fmt/appender_non_blocking",
    "fmt/rolling_direct", "fmt/rolling_direct_norotate", "fmt/rolling_direct_check",
    "fmt/rolling_buffered", "logfiles/direct", "logfiles/buffered",
    "logfiles/buffered_norotate", "logfiles/buffered_check", "2threads/fmt_sink",
    "2threads/fmt_rolling_buffered", "2threads/logfiles_buffered", "writer/buffered",
    "2threads/writer_buffered_shared", "2threads/writer_buffered_separate",
    "logfiles/staged", "2threads/logfiles_staged", "writer/staged",
    "2threads/writer_staged_shared", "logfiles/staged_256k", "2threads/logfiles_staged_256k",
]


def load(root):
    m = {}
    for name in NAMES:
        group, bench = name.split("/")
        path = root / f"{group}_{bench}" / "new" / "estimates.json"
        if path.exists():
            m[name] = json.loads(path.read_text())["median"]["point_estimate"]
    return m


runs = [load(r) for r in roots]


def med(f):
    values = []
    for m in runs:
        try:
            values.append(f(m))
        except KeyError:
            pass
    return statistics.median(values) if values else float("nan")


def scaling(m, two, one):
    return 2 * m[one] / m[two]


print(f"| benchmark | median ns/iter | ratio to fmt/sink |  ({len(runs)} run(s))")
print("|---|---:|---:|")
for name in NAMES:
    ns = med(lambda m: m[name])
    if ns == ns:
        print(f"| {name} | {ns:.0f} | {med(lambda m: m[name] / m['fmt/sink']):.2f} |")

checks = [
    ("RollingFile direct / fmt+rolling::daily (target <= 1.0)",
     lambda m: m["fmt/rolling_direct"] / m["fmt/appender_daily"]),
    ("RollingFile buffered / fmt+BufWriter<File> (target <= 1.1)",
     lambda m: m["fmt/rolling_buffered"] / m["fmt/bufwriter"]),
    ("LogFiles buffered / fmt+sink (target <= 0.3)",
     lambda m: m["logfiles/buffered"] / m["fmt/sink"]),
    ("rotation check on (never due) / DISABLE_LOG_ROTATION, LogFiles buffered (target <= 1.03)",
     lambda m: m["logfiles/buffered_check"] / m["logfiles/buffered_norotate"]),
    ("rotation check on (never due) / DISABLE_LOG_ROTATION, fmt+RollingFile direct (target <= 1.03)",
     lambda m: m["fmt/rolling_direct_check"] / m["fmt/rolling_direct_norotate"]),
    ("rotating every 5 MiB / DISABLE_LOG_ROTATION, LogFiles buffered",
     lambda m: m["logfiles/buffered"] / m["logfiles/buffered_norotate"]),
    ("2-thread scaling, fmt+sink (events/s 2 threads / 1 thread)",
     lambda m: scaling(m, "2threads/fmt_sink", "fmt/sink")),
    ("2-thread scaling, LogFiles buffered",
     lambda m: scaling(m, "2threads/logfiles_buffered", "logfiles/buffered")),
    ("2-thread scaling, fmt+RollingFile buffered",
     lambda m: scaling(m, "2threads/fmt_rolling_buffered", "fmt/rolling_buffered")),
    ("2-thread scaling, writer alone, one shared file",
     lambda m: scaling(m, "2threads/writer_buffered_shared", "writer/buffered")),
    ("2-thread scaling, writer alone, a file per thread",
     lambda m: scaling(m, "2threads/writer_buffered_separate", "writer/buffered")),
    ("LogFiles staged rotating / fmt+sink (target <= 0.25)",
     lambda m: m["logfiles/staged"] / m["fmt/sink"]),
    ("2-thread scaling, LogFiles staged",
     lambda m: scaling(m, "2threads/logfiles_staged", "logfiles/staged")),
    ("2-thread scaling, writer alone staged, one shared file",
     lambda m: scaling(m, "2threads/writer_staged_shared", "writer/staged")),
    ("staged 2-thread scaling / fmt+sink scaling (target >= 1.0)",
     lambda m: scaling(m, "2threads/logfiles_staged", "logfiles/staged")
     / scaling(m, "2threads/fmt_sink", "fmt/sink")),
    ("LogFiles staged rotating, LOG_BUFFER_BYTES=256 KiB (not the default) / fmt+sink",
     lambda m: m["logfiles/staged_256k"] / m["fmt/sink"]),
    ("staged 2-thread scaling, LOG_BUFFER_BYTES=256 KiB / fmt+sink scaling",
     lambda m: scaling(m, "2threads/logfiles_staged_256k", "logfiles/staged_256k")
     / scaling(m, "2threads/fmt_sink", "fmt/sink")),
    ("LogFiles buffered scaling / fmt+sink scaling",
     lambda m: scaling(m, "2threads/logfiles_buffered", "logfiles/buffered")
     / scaling(m, "2threads/fmt_sink", "fmt/sink")),
]
print()
print("| check | median over runs | min | max |")
print("|---|---:|---:|---:|")
for label, f in checks:
    values = []
    for m in runs:
        try:
            values.append(f(m))
        except KeyError:
            pass
    if values:
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
