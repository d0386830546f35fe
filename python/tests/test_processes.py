"""Several Python processes on one log: every record of every process exactly once, in
its order, across size rotations (SPEC section 1 "Several processes", section 9)."""

import concurrent.futures
import logging
import multiprocessing
import os
import subprocess
import sys
import textwrap
import threading

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


def check_exactly_once(log_dir, counts, rotated=True):
    by_tag = {tag: [] for tag in counts}
    for line in read_all(log_dir):
        tag, seq, *pad = line.split(" ")
        assert tag in by_tag, f"a torn or foreign line: {line!r}"
        assert pad == ["x" * (int(seq) % 17)] or (pad == [""] and int(seq) % 17 == 0), line
        by_tag[tag].append(int(seq))
    for tag, n in counts.items():
        assert by_tag[tag] == list(range(n)), f"{tag}: {len(by_tag[tag])} of {n}, or out of order"
    if rotated:
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


def in_fork_child(part):
    """Runs `part()` in a child made by `os.fork()`, which then ends with `os._exit` (code 1
    if `part` raised); the child's pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            part()
            code = 0
        finally:
            os._exit(code)
    return pid


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

        def child():  # the parent's handler, a writer of its own underneath
            for i in range(3000):
                log.info("child%d %06d %s", k, i, "x" * (i % 17))
            handler.close()

        pid = in_fork_child(child)
        counts[f"child{k}"] = 3000
        parent_lines(2500)  # while the child writes
        assert wait_or_kill(pid) == 0
    handler.close()
    check_exactly_once(tmp_path, counts)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_forks_while_another_thread_opens_and_closes_writers(tmp_path):
    # The fork hooks are registered by _native itself and are not module attributes (the
    # three only make sense together, around a fork); the lock they hold across the fork
    # is one atomic flag, so a child finds it free whatever the other thread was doing.
    assert [name for name in dir(mhm_log._native) if "fork" in name] == []
    stop = threading.Event()

    def open_and_close():
        i = 0
        while not stop.is_set():
            mhm_log.RotatingFileHandler(tmp_path / f"other{i % 3}.log", **SETTINGS).close()
            i += 1

    other = threading.Thread(target=open_and_close)
    other.start()
    try:
        for k in range(FORKS):
            def child():
                handler = mhm_log.RotatingFileHandler(tmp_path / f"child{k}.log", **SETTINGS)
                handler.setFormatter(logging.Formatter("%(message)s"))
                make_logger(f"fork-child{k}", handler).info("child %d", k)
                handler.close()

            assert wait_or_kill(in_fork_child(child)) == 0
    finally:
        stop.set()
        other.join()
    for k in range(FORKS):
        assert (tmp_path / f"child{k}.log").read_text() == f"child {k}\n"


# === Children that end with os._exit ===
#
# A multiprocessing child (fork start method, and every forkserver child) ends with
# os._exit: no atexit, so no logging.shutdown, and no Rust drop. What it had buffered was
# lost (2000 of 2000 records). The property, for every way a child ends below: every
# record a child logged before it ended is in the log exactly once, each line whole, and
# so is every record its parent had buffered at the fork.

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")

# Nothing is written by size or by time before the child ends: all of it is at stake.
HOLD_ALL = dict(buffer_bytes=1 << 20, flush_interval_ms=3_600_000)
KIDS = "forked.kids"


def kids_logger(path, write_mode):
    handler = mhm_log.RotatingFileHandler(path, write_mode=write_mode, **HOLD_ALL)
    handler.setFormatter(logging.Formatter("%(message)s"))
    make_logger(KIDS, handler)
    return handler


def log_lines(tag, n, start=0):
    """`n` records tagged `tag`, numbered from `start`, through the `KIDS` logger."""
    log = logging.getLogger(KIDS)
    for i in range(start, start + n):
        log.info("%s %06d %s", tag, i, "x" * (i % 17))
    return n


def log_lines_with_own_handler(path, write_mode, tag, n):
    """A spawn or forkserver child's part: a handler of its own, never closed."""
    kids_logger(path, write_mode)
    log_lines(tag, n)


@needs_fork
@pytest.mark.parametrize("write_mode", ["buffered", "staged"])
def test_a_multiprocessing_fork_child_keeps_what_it_logged(tmp_path, write_mode):
    # regression: the children's records were all lost (0 of 2000 each). "quiet" logs
    # nothing: its exit must not write the parent's buffered records a second time.
    handler = kids_logger(tmp_path / "app.log", write_mode)
    log_lines("parent", 500)  # buffered in the parent at the fork
    ctx = multiprocessing.get_context("fork")
    counts = {"child0": 2000, "child1": 2000, "quiet": 0}
    procs = [ctx.Process(target=log_lines, args=(tag, n)) for tag, n in counts.items()]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    log_lines("parent", 500, start=500)
    handler.close()
    check_exactly_once(tmp_path, {"parent": 1000, **counts}, rotated=False)


@needs_fork
@pytest.mark.parametrize("end", ["close-join", "terminate", "executor"])
def test_pool_workers_keep_what_they_logged(tmp_path, end):
    # regression: every record of the workers was lost. `terminate()` (what leaving
    # `with Pool() as pool:` does) kills the workers with SIGTERM: nothing runs in them,
    # so what every finished task logged must already be in the file.
    handler = kids_logger(tmp_path / "app.log", "buffered")
    log_lines("parent", 300)
    tasks = [(f"task{k}", 400) for k in range(8)]
    ctx = multiprocessing.get_context("fork")
    if end == "executor":
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as executor:
            done = list(executor.map(log_lines, *zip(*tasks)))
    else:
        pool = ctx.Pool(2)
        try:
            done = pool.starmap(log_lines, tasks)
        finally:
            if end == "close-join":
                pool.close()
            else:
                pool.terminate()
            pool.join()
    assert done == [n for _, n in tasks]
    handler.close()
    check_exactly_once(tmp_path, {"parent": 300, **dict(tasks)}, rotated=False)


@needs_fork
@pytest.mark.parametrize("write_mode", ["buffered", "staged"])
def test_an_os_fork_child_ending_with_os_exit_keeps_what_it_logged(tmp_path, write_mode):
    # regression: the child's records were all lost (0 of 2000).
    handler = kids_logger(tmp_path / "app.log", write_mode)
    log_lines("parent", 500)
    pid = in_fork_child(lambda: log_lines("child", 2000))
    assert wait_or_kill(pid) == 0
    log_lines("parent", 500, start=500)
    handler.close()
    check_exactly_once(tmp_path, {"parent": 1000, "child": 2000}, rotated=False)


@needs_fork
@pytest.mark.parametrize("write_mode", ["buffered", "staged"])
def test_a_fork_childs_flush_never_writes_the_parents_records(tmp_path, write_mode):
    # regression: a child's flush before its first record (as logging.shutdown does at
    # exit) flushed the parent's writer as fork had copied it: the parent's buffered
    # records were written twice (1000 lines for 500).
    handler = kids_logger(tmp_path / "app.log", write_mode)
    log_lines("parent", 500)

    def child():
        handler.flush()
        log_lines("child", 100)
        handler.flush()

    assert wait_or_kill(in_fork_child(child)) == 0
    handler.close()
    check_exactly_once(tmp_path, {"parent": 500, "child": 100}, rotated=False)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_forkserver_and_spawn_children_keep_what_they_buffered(tmp_path, method):
    # regression (forkserver): the child, forked from a server that had not imported
    # mhm_log, buffered its records and ended with os._exit: all lost (0 of 2000).
    # A spawn child ends with sys.exit: logging.shutdown writes everything (it always did).
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    ctx = multiprocessing.get_context(method)
    p = ctx.Process(target=log_lines_with_own_handler,
                    args=(str(tmp_path / "app.log"), "buffered", "child", 2000))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    check_exactly_once(tmp_path, {"child": 2000}, rotated=False)
