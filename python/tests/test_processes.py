"""Several Python processes on one log: every record of every process exactly once, in
its order, across size rotations (SPEC section 1 "Several processes", section 9)."""

import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

import mhm_log
from conftest import make_logger, read_all

# Copies stay in backups/ during the run (see the README's "Several processes" limits).
SETTINGS = dict(max_bytes=4096, min_rotate_bytes=0, min_rotate_age_secs=0,
                backup_count=100_000, archive_count=1_000_000)


def write_records(path, tag, n, write_mode="direct"):
    """One process's part: `n` records tagged `tag`, numbered from 0."""
    handler = mhm_log.RotatingFileHandler(path, write_mode=write_mode, **SETTINGS)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = make_logger(f"proc.{tag}", handler)
    for i in range(n):
        log.info("%s %06d %s", tag, i, "x" * (i % 17))
    handler.close()


def check_exactly_once(log_dir, counts):
    by_tag = {tag: [] for tag in counts}
    for line in read_all(log_dir):
        tag, seq, *pad = line.split(" ")
        assert tag in by_tag, f"a torn or foreign line: {line!r}"
        assert pad == ["x" * (int(seq) % 17)] or (pad == [""] and int(seq) % 17 == 0), line
        by_tag[tag].append(int(seq))
    for tag, n in counts.items():
        assert by_tag[tag] == list(range(n)), f"{tag}: {len(by_tag[tag])} of {n}, or out of order"
    copies = list((log_dir / "backups").iterdir())
    assert len(copies) >= 3, "the test should rotate"


def test_two_processes_with_multiprocessing(tmp_path):
    path = tmp_path / "app.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=write_records, args=(str(path), f"p{i}", 3000, mode))
             for i, mode in enumerate(["direct", "buffered"])]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    check_exactly_once(tmp_path, {"p0": 3000, "p1": 3000})


def test_four_processes_with_subprocess(tmp_path):
    path = tmp_path / "app.log"
    here = os.path.dirname(os.path.abspath(__file__))
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {here!r})
        from test_processes import write_records
        write_records(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])
    """)
    modes = ["direct", "buffered", "staged", "direct"]
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"s{i}", "2500", mode])
             for i, mode in enumerate(modes)]
    for p in procs:
        assert p.wait(120) == 0
    check_exactly_once(tmp_path, {f"s{i}": 2500 for i in range(4)})


def wait_or_kill(pid, seconds=20):
    """The child's exit code; a child still running after `seconds` is killed: a hang."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"fork child {pid} hung")


FORKS = 8


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_fork_after_the_handler_exists(tmp_path):
    # Regression: the writer's locks were parking_lot's, whose process-wide table of parked
    # threads a fork copies as it stands; a child's new writer could hang for ever (seen in
    # CI: a child spinning for eleven minutes). With the old wheel this test failed ("fork
    # child ... hung") in 6 of 50 runs of the suite; with std's locks in none of 50. Several
    # forks, each child given 20 s at most.
    path = tmp_path / "app.log"
    handler = mhm_log.RotatingFileHandler(path, **SETTINGS)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log = make_logger("forked", handler)
    counts = {"parent": 0}

    def parent_lines(n):
        for _ in range(n):
            log.info("parent %06d %s", counts["parent"], "x" * (counts["parent"] % 17))
            counts["parent"] += 1

    for k in range(FORKS):
        parent_lines(500)
        pid = os.fork()
        if pid == 0:  # the child: the parent's handler, a writer of its own underneath
            code = 1
            try:
                for i in range(3000):
                    log.info("child%d %06d %s", k, i, "x" * (i % 17))
                handler.close()
                code = 0
            finally:
                os._exit(code)
        counts[f"child{k}"] = 3000
        parent_lines(2500)  # while the child writes
        assert wait_or_kill(pid) == 0
    handler.close()
    check_exactly_once(tmp_path, counts)
