"""mhm_log.RotatingFileHandler and the compat handler, on real files."""

import datetime as dt
import logging
import os
import subprocess
import sys
import threading

import pytest

import mhm_log
from mhm_log.compat import BackupDirectoryRotatingFileHandler
from conftest import make_logger, read_all

FMT = logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s",
                        datefmt="%Y-%m-%d %H:%M:%S")


def handler(path, clock=None, **settings):
    h = mhm_log.RotatingFileHandler(path, clock=clock, **settings)
    h.setFormatter(logging.Formatter("%(message)s"))
    return h


def test_records_are_formatted_by_python_and_written(tmp_path):
    h = mhm_log.RotatingFileHandler(tmp_path / "app.log")
    h.setFormatter(FMT)
    log = make_logger("t.format", h)
    log.info("hello %s, %d", "world", 42)
    try:
        raise KeyError("boom")
    except KeyError:
        log.exception("failed")
    h.close()
    text = (tmp_path / "app.log").read_text()
    assert " - t.format - INFO - hello world, 42\n" in text
    assert " - t.format - ERROR - failed\nTraceback (most recent call last):" in text
    assert "KeyError: 'boom'" in text


@pytest.mark.parametrize("write_mode", ["direct", "buffered", "staged"])
def test_every_record_is_one_event_even_an_empty_one(tmp_path, write_mode):
    # An empty message with no terminator is an empty record: counted as one event, as the
    # Rust layer counts it (one write is one event), urgent or not.
    h = mhm_log.RotatingFileHandler(tmp_path / "app.log", write_mode=write_mode)
    h.setFormatter(logging.Formatter("%(message)s"))
    h.terminator = ""
    log = make_logger(f"t.empty.{write_mode}", h)
    log.info("")
    log.error("")
    log.info("x")
    h.flush()
    assert h.stats()["events_written"] == 3
    h.close()
    assert (tmp_path / "app.log").read_text() == "x"


def test_size_rotation_keeps_every_record_once(tmp_path):
    clock = mhm_log.ManualClock(dt.datetime(2026, 11, 26, 9, 0, 0))
    h = handler(tmp_path / "app.log", clock, max_bytes=2000, min_rotate_bytes=0,
                min_rotate_age_secs=0, backup_count=3, archive_count=50)
    log = make_logger("t.size", h)
    for i in range(2000):  # 26 kB: about 13 rotations
        log.info("record %05d", i)
        clock.advance(1)
    h.close()
    lines = read_all(tmp_path)
    assert lines == [f"record {i:05d}" for i in range(2000)]
    backups = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert len(backups) == 3, backups
    assert all(b.startswith("app.log.2026-11-26") for b in backups)
    assert any((tmp_path / "archive").iterdir())


def test_midnight_rotation_with_manual_clock(tmp_path):
    clock = mhm_log.ManualClock(dt.datetime(2026, 11, 26, 10, 0, 0))
    h = handler(tmp_path / "app.log", clock, min_rotate_bytes=0)
    log = make_logger("t.midnight", h)
    log.info("before midnight")
    clock.set(dt.datetime(2026, 11, 27, 0, 0, 30))
    log.info("after midnight")
    h.close()
    copy = tmp_path / "backups" / "app.log.2026-11-26"
    assert copy.read_text() == "before midnight\n"
    assert (tmp_path / "app.log").read_text() == "after midnight\n"


def test_gates_hold_a_small_or_young_file(tmp_path):
    clock = mhm_log.ManualClock(dt.datetime(2026, 11, 26, 23, 30, 0))
    # Under 5 KiB: never rotates, even past midnight.
    h = handler(tmp_path / "app.log", clock)
    log = make_logger("t.gates", h)
    log.info("small")
    clock.advance(dt.timedelta(hours=2))
    log.info("still small")
    h.close()
    assert not (tmp_path / "backups").exists() or not any((tmp_path / "backups").iterdir())
    assert (tmp_path / "app.log").read_text() == "small\nstill small\n"


def test_compression_into_archive(tmp_path):
    clock = mhm_log.ManualClock(dt.datetime(2026, 11, 1, 12, 0, 0))
    h = handler(tmp_path / "app.log", clock, min_rotate_bytes=0, backup_count=1,
                compress=True)
    log = make_logger("t.gz", h)
    for day in range(4):
        log.info("day %d", day)
        clock.advance(dt.timedelta(days=1))
    log.info("last")
    h.close()
    archived = sorted(p.name for p in (tmp_path / "archive").iterdir())
    assert archived and all(n.endswith(".gz") for n in archived), archived
    assert read_all(tmp_path) == ["day 0", "day 1", "day 2", "day 3", "last"]


def test_eight_threads_exactly_once_and_in_order(tmp_path):
    h = handler(tmp_path / "app.log", max_bytes=64 * 1024, min_rotate_bytes=0,
                min_rotate_age_secs=0, backup_count=100, write_mode="staged")
    log = make_logger("t.threads", h)
    n = 3000

    def work(t):
        for i in range(n):
            log.info("t%d %06d", t, i)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    h.close()
    lines = read_all(tmp_path)
    assert len(lines) == 8 * n
    for t in range(8):
        mine = [l for l in lines if l.startswith(f"t{t} ")]
        assert mine == [f"t{t} {i:06d}" for i in range(n)]


def test_handlers_on_one_path_share_one_writer(tmp_path):
    handlers = [handler(tmp_path / "errors.log") for _ in range(20)]
    for i, h in enumerate(handlers):
        make_logger(f"t.shared{i}", h).error("from %d", i)
    for h in handlers[:-1]:
        h.close()
    # The writer stays open while one handler holds it.
    make_logger("t.shared_last", handlers[-1]).error("after closes")
    handlers[-1].close()
    lines = (tmp_path / "errors.log").read_text().splitlines()
    assert sorted(lines[:-1]) == sorted(f"from {i}" for i in range(20))
    assert lines[-1] == "after closes"


def test_a_bad_record_goes_to_handle_error(tmp_path, monkeypatch):
    h = handler(tmp_path / "app.log")
    seen = []
    monkeypatch.setattr(h, "handleError", lambda record: seen.append(record))
    log = make_logger("t.bad", h)
    log.info("needs %d args %s", 1)  # wrong number of %-args: formatting fails
    log.info("fine")
    h.close()
    assert len(seen) == 1
    assert (tmp_path / "app.log").read_text() == "fine\n"


def test_a_bad_setting_names_it(tmp_path):
    with pytest.raises(ValueError, match="LOG_MAX_BYTES"):
        mhm_log.RotatingFileHandler(tmp_path / "app.log", max_bytes="lots")
    with pytest.raises(TypeError, match="unknown setting"):
        mhm_log.RotatingFileHandler(tmp_path / "app.log", maxbytes=5)


def test_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOG_MAX_BYTES", "not a number")
    with pytest.raises(ValueError, match="LOG_MAX_BYTES"):
        mhm_log.RotatingFileHandler(tmp_path / "app.log")
    # A keyword wins over the environment.
    mhm_log.RotatingFileHandler(tmp_path / "app.log", max_bytes=100).close()


def test_logging_shutdown_writes_everything_buffered(tmp_path):
    script = f"""
import logging, mhm_log
h = mhm_log.RotatingFileHandler({str(tmp_path / 'app.log')!r}, write_mode="buffered",
                                flush_interval_ms=600000)
logging.getLogger().addHandler(h)
logging.getLogger().setLevel(logging.INFO)
for i in range(1000):
    logging.info("line %d", i)
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    lines = (tmp_path / "app.log").read_text().splitlines()
    assert lines == [f"line {i}" for i in range(1000)]


def test_compat_handler_in_the_services_three_set_ups(tmp_path):
    logs = tmp_path / "logs"
    backups = logs / "backups"
    # 1: a component's file plus an ERROR handler on errors.log.
    comp = BackupDirectoryRotatingFileHandler(str(logs / "discord.log"), str(backups),
                                              maxBytes=5 * 1024 * 1024, backupCount=7,
                                              encoding="utf-8")
    comp.setFormatter(FMT)
    err = BackupDirectoryRotatingFileHandler(str(logs / "errors.log"), str(backups),
                                             maxBytes=5 * 1024 * 1024, backupCount=7,
                                             encoding="utf-8")
    err.setLevel(logging.ERROR)
    err.setFormatter(FMT)
    # 2: app.log at DEBUG.
    app = BackupDirectoryRotatingFileHandler(str(logs / "app.log"), str(backups),
                                             maxBytes=int(os.getenv("LOG_MAX_BYTES", "5242880")),
                                             backupCount=int(os.getenv("LOG_BACKUP_COUNT", "5")),
                                             encoding="utf-8")
    app.setLevel(logging.DEBUG)
    app.setFormatter(FMT)
    # 3: the errors file on its own (a second handler on errors.log in this process).
    errors_only = BackupDirectoryRotatingFileHandler(str(logs / "errors.log"), str(backups),
                                                     maxBytes=0, backupCount=0)
    errors_only.setLevel(logging.ERROR)
    errors_only.setFormatter(FMT)
    for h in (comp, err, app, errors_only):
        h.suffix = "%Y-%m-%d"
        h.namer = lambda name: name
        assert os.path.isabs(h.baseFilename)
    assert app.backup_dir == str(backups) and app.maxBytes == 5242880
    log = logging.getLogger("mhm.discord")
    log.handlers[:] = [comp, err, app, errors_only]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.debug("connected")
    log.error("gateway lost")
    for h in log.handlers:
        h.close()
    assert "DEBUG - connected" in (logs / "app.log").read_text()
    assert (logs / "errors.log").read_text().count("ERROR - gateway lost") == 2
    with pytest.raises(ValueError, match="not supported"):
        BackupDirectoryRotatingFileHandler(str(logs / "x.log"), str(backups), when="H")


def test_manual_clock_moves_only_when_told():
    start = dt.datetime(2026, 11, 26, 9, 0, 0, tzinfo=dt.timezone.utc)
    clock = mhm_log.ManualClock(start)
    assert clock.now() == start
    clock.advance(dt.timedelta(minutes=5))
    assert clock.now() == start + dt.timedelta(minutes=5)
    clock.set(start)
    assert clock.now() == start
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_the_wheel_installs_mhm_sidecar(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "mhm-sidecar")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mhm-sidecar ")
    # It works on a root, like the binary it is.
    (tmp_path / "logs").mkdir()
    out = subprocess.run([exe, "--root", str(tmp_path), "logs", "list", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
