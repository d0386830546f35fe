"""The compat class as MHM uses it (core/logger.py at 2ad0ac84): the isinstance checks it
makes of its handlers, the attributes and methods its code and tests read, component
handlers built before setup_logging() on the same paths, and the UI and service as two
processes on one logs/ folder. CI guards these without MHM's code."""

import datetime as dt
import logging
import logging.handlers
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

import mhm_log
from mhm_log.compat import BackupDirectoryRotatingFileHandler
from conftest import read_all

FMT = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s")


def record(msg="x"):
    return logging.LogRecord("t", logging.INFO, __file__, 1, msg, (), None)


def test_it_is_what_mhm_checks_for(tmp_path):
    h = BackupDirectoryRotatingFileHandler(str(tmp_path / "logs" / "discord.log"),
                                           str(tmp_path / "logs" / "backups"),
                                           when="midnight", interval=1, backupCount=7)
    try:
        # MHM raises discord.log to DEBUG only for these; it closes only FileHandlers.
        assert isinstance(h, (logging.handlers.RotatingFileHandler,
                              logging.handlers.TimedRotatingFileHandler))
        assert isinstance(h, logging.FileHandler)
        assert isinstance(h, logging.handlers.BaseRotatingHandler)
        assert h.stream is None, "no Python stream is opened on the log"
    finally:
        h.close()


def test_attributes_and_folders_as_mhm_reads_them(tmp_path):
    log_file = str(tmp_path / "deep" / "logs" / "test.log")
    backup_dir = str(tmp_path / "deep" / "logs" / "backups")
    h = BackupDirectoryRotatingFileHandler(log_file, backup_dir, when="midnight", interval=1,
                                           backupCount=7)
    try:
        assert h.base_filename == log_file
        assert h.baseFilename == os.path.abspath(log_file)
        assert h.backup_dir == backup_dir
        assert os.path.isdir(backup_dir), "the constructor makes the backup folder"
        assert (h.maxBytes, h.backupCount, h.when, h.interval) == (0, 7, "MIDNIGHT", 86400)
        assert h.suffix == "%Y-%m-%d" and h.namer is None
        assert h.rolloverAt > 0
    finally:
        h.close()


def test_should_and_do_rollover_follow_the_writers_gates(tmp_path):
    clock = mhm_log.ManualClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    logs = tmp_path / "logs"
    h = BackupDirectoryRotatingFileHandler(str(logs / "app.log"), str(logs / "backups"),
                                           maxBytes=8192, clock=clock)
    h.setFormatter(logging.Formatter("%(message)s"))
    log = logging.getLogger("t.compat.gates")
    log.handlers[:] = [h]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    try:
        log.info("small")
        assert not h.shouldRollover(record()), "a small, young file is gated"
        h.doRollover()
        assert not (logs / "backups").exists() or not os.listdir(logs / "backups")
        for i in range(100):
            log.info("line %04d %s", i, "y" * 60)  # ~7 KiB: past the 5 KiB gate, under 8 KiB
        assert not h.shouldRollover(record()), "an hour has not passed"
        clock.advance(3601)
        assert not h.shouldRollover(record()), "no trigger yet: under the limit, same day"
        clock.set(dt.datetime(2026, 3, 2, 0, 0, 1, tzinfo=dt.timezone.utc))
        assert h.shouldRollover(record()), "midnight passed, gates passed"
        # doRollover rotates through the writer, whatever the triggers.
        clock.set(dt.datetime(2026, 3, 1, 11, 0, tzinfo=dt.timezone.utc))
        h.doRollover()
        copies = os.listdir(logs / "backups")
        assert copies == ["app.log.2026-03-01"], copies
        assert (logs / "app.log").read_text() == ""
        log.info("after")
        assert read_all(logs)[-1] == "after" and len(read_all(logs)) == 102
        assert not h.shouldRollover(record()), "a new file is young and small"
    finally:
        h.close()


def test_do_rollover_honours_disable_log_rotation_at_the_call(tmp_path, monkeypatch):
    clock = mhm_log.ManualClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    h = BackupDirectoryRotatingFileHandler(str(tmp_path / "app.log"), str(tmp_path / "b"),
                                           clock=clock)
    try:
        h.emit(record("z" * 6000))
        clock.advance(7200)
        monkeypatch.setenv("DISABLE_LOG_ROTATION", "1")
        h.doRollover()
        assert os.listdir(tmp_path / "b") == []
        monkeypatch.delenv("DISABLE_LOG_ROTATION")
        h.doRollover()
        assert len(os.listdir(tmp_path / "b")) == 1
    finally:
        h.close()


def test_a_component_handler_built_first_does_not_drop_the_size_limit(tmp_path):
    # MHM: importing core.service builds a component handler (maxBytes=0) on app.log and
    # errors.log before setup_logging() builds the size-limited one.
    logs = tmp_path / "logs"
    clock = mhm_log.ManualClock(dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc))
    component = BackupDirectoryRotatingFileHandler(str(logs / "app.log"), str(logs / "backups"),
                                                   backupCount=7, clock=clock,
                                                   min_rotate_bytes=0, min_rotate_age_secs=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main = BackupDirectoryRotatingFileHandler(str(logs / "app.log"), str(logs / "backups"),
                                                  maxBytes=4096, backupCount=5,
                                                  min_rotate_bytes=0, min_rotate_age_secs=0)
    merged = [str(w.message) for w in caught
              if issubclass(w.category, mhm_log.SettingsMergedWarning)]
    # Each names the line that made the handler (here), not one of mhm_log's own.
    assert all(w.filename == __file__ for w in caught
               if issubclass(w.category, mhm_log.SettingsMergedWarning)), \
        [w.filename for w in caught]
    # One warning per disagreement, each naming both values.
    size = [m for m in merged if "size limit" in m]
    assert len(size) == 1 and "none in force, 4096 asked" in size[0], merged
    count = [m for m in merged if "backup_count" in m]
    assert len(count) == 1 and "7 in force, 5 asked" in count[0], merged
    assert len(merged) == 2, merged
    for h in (component, main):
        h.setFormatter(logging.Formatter("%(message)s"))
    comp_log = logging.getLogger("t.compat.component")
    comp_log.handlers[:] = [component]
    comp_log.propagate = False
    comp_log.setLevel(logging.DEBUG)
    root_log = logging.getLogger("t.compat.main")
    root_log.handlers[:] = [main]
    root_log.propagate = False
    root_log.setLevel(logging.DEBUG)
    try:
        for i in range(400):
            (comp_log if i % 2 else root_log).info("event %05d %s", i, "z" * 40)
        for h in (component, main):
            h.flush()
        copies = sorted((logs / "backups").iterdir())
        assert len(copies) >= 4, "rotated by size through either handler"
        for c in copies:
            assert c.stat().st_size <= 4096, (c, c.stat().st_size)
        got = [line for line in read_all(logs) if line.startswith("event")]
        assert got == [f"event {i:05d} {'z' * 40}" for i in range(400)]
        # The same disagreement again is not reported again.
        with warnings.catch_warnings(record=True) as again:
            warnings.simplefilter("always")
            third = BackupDirectoryRotatingFileHandler(str(logs / "app.log"),
                                                       str(logs / "backups"), maxBytes=4096)
            third.close()
        assert not [w for w in again if "size limit" in str(w.message)]
    finally:
        component.close()
        main.close()


def test_mhm_raises_discord_to_debug_and_closes_file_handlers(tmp_path):
    # The loop of MHM's logger: handlers that are (Timed)RotatingFileHandlers get DEBUG;
    # force_restart_logging() closes those that are FileHandlers.
    logs = tmp_path / "logs"
    h = BackupDirectoryRotatingFileHandler(str(logs / "discord.log"), str(logs / "backups"))
    h.setLevel(logging.WARNING)
    h.setFormatter(FMT)
    log = logging.getLogger("mhm.discord.compat")
    log.handlers[:] = [h]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for handler in log.handlers:
        if isinstance(handler, (logging.handlers.RotatingFileHandler,
                                logging.handlers.TimedRotatingFileHandler)):
            handler.setLevel(logging.DEBUG)
    log.debug("heartbeat")
    for handler in log.handlers[:]:
        if isinstance(handler, logging.FileHandler):
            handler.close()
            log.removeHandler(handler)
    assert "DEBUG - heartbeat" in (logs / "discord.log").read_text()
    # Closed: a new handler on the path opens it again, and the old one can be closed twice.
    h.close()
    h2 = BackupDirectoryRotatingFileHandler(str(logs / "discord.log"), str(logs / "backups"))
    h2.setFormatter(FMT)
    h2.emit(logging.LogRecord("mhm.discord", logging.INFO, __file__, 1, "back", (), None))
    h2.close()
    assert (logs / "discord.log").read_text().count("\n") == 2


SERVICE = textwrap.dedent("""
    import logging, sys
    from mhm_log.compat import BackupDirectoryRotatingFileHandler
    logs, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # As MHM's processes: the component handler first (no size limit), then
    # setup_logging()'s with LOG_MAX_BYTES, both on app.log; discord.log at DEBUG.
    comp = BackupDirectoryRotatingFileHandler(f"{logs}/app.log", f"{logs}/backups",
                                              backupCount=7)
    main = BackupDirectoryRotatingFileHandler(f"{logs}/app.log", f"{logs}/backups",
                                              maxBytes=65536, backupCount=1000)
    disc = BackupDirectoryRotatingFileHandler(f"{logs}/discord.log", f"{logs}/backups",
                                              maxBytes=65536, backupCount=1000)
    disc.setLevel(logging.INFO)
    for h in (comp, main, disc):
        h.setFormatter(logging.Formatter("%(message)s"))
    c = logging.getLogger("mhm.component"); c.handlers[:] = [comp]; c.propagate = False
    root = logging.getLogger("mhm"); root.handlers[:] = [main]
    d = logging.getLogger("mhm.discord"); d.handlers[:] = [disc]; d.propagate = False
    for lg in (c, root, d):
        lg.setLevel(logging.DEBUG)
    for handler in d.handlers:
        if isinstance(handler, logging.handlers.TimedRotatingFileHandler):
            handler.setLevel(logging.DEBUG)
    for i in range(n):
        (c if i % 2 else root).info("%s %06d %s", who, i, "p" * 50)
        d.debug("%s %06d", who, i)
    logging.shutdown()
""")


def test_ui_and_service_as_two_processes_rotate_by_size(tmp_path):
    logs = tmp_path / "logs"
    env = dict(os.environ, LOG_MIN_ROTATE_BYTES="0", LOG_MIN_ROTATE_AGE_SECS="0")
    n = 3000
    procs = [subprocess.Popen([sys.executable, "-c", "import logging.handlers\n" + SERVICE,
                               str(logs), who, str(n)], env=env)
             for who in ("ui", "service")]
    for p in procs:
        assert p.wait(120) == 0
    for name, want in (("app.log", lambda who: [f"{who} {i:06d} {'p' * 50}" for i in range(n)]),
                       ("discord.log", lambda who: [f"{who} {i:06d}" for i in range(n)])):
        lines = read_all(logs, name)
        for who in ("ui", "service"):
            mine = [line for line in lines if line.startswith(who + " ")]
            assert mine == want(who), f"{name}: {who}: every line once, in order"
        assert len(lines) == 2 * n, name
    copies = [p for p in (logs / "backups").iterdir() if p.name.startswith("app.log")]
    # ~2 x 3000 x 67 bytes = 400 KB, past the 64 KiB limit that setup_logging's handler
    # asked for after the component's (none): the merged limit rotated it by size. (How far
    # a copy passes the limit under two processes depends on the scheduler: not asserted.)
    assert copies, "app.log rotated by size"
