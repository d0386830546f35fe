"""mhm_log: the mhm-log rotating writer as a Python ``logging`` handler.

Records are formatted by Python (the handler's ``logging.Formatter``, filters, ``%``-args,
exceptions: all as in ``logging``); the finished line is written by the Rust writer, with
the GIL released, under every rule of SPEC.md section 1: rotation at midnight or past
``max_bytes``, never a file under ``min_rotate_bytes`` or younger than ``min_rotate_age``,
copies in ``backups/`` then ``archive/`` (gzipped when asked), unique names, retention.

    import logging, mhm_log
    handler = mhm_log.RotatingFileHandler("logs/app.log", max_bytes=5 << 20)
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    logging.getLogger().addHandler(handler)

Settings by keyword mirror section 1 (``max_bytes``, ``backup_count``, ``archive_count``,
``archive_max_age_days``, ``compress``, ``backup_dir``, ``archive_dir``,
``min_rotate_bytes``, ``min_rotate_age_secs``, ``rotate_at``, ``rotation_disabled``,
``write_mode``, ``buffer_bytes``, ``flush_interval_ms``); those not given come from the
environment (``LOG_MAX_BYTES``, ...) like ``Settings::from_env``, then the defaults.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sys
import warnings
import weakref

from . import _native

__all__ = ["RotatingFileHandler", "ManualClock", "SETTINGS", "SettingsMergedWarning"]


class SettingsMergedWarning(UserWarning):
    """Two handlers on one log path asked for different settings. They share one writer,
    and nothing is dropped: the file rotates when either asks (the smallest size limit,
    midnight if either asks) and keeps the most either asks for; the rest stays the first
    handler's. The message names both values."""

#: Keyword -> the environment name it overrides (SPEC.md section 1).
SETTINGS = {
    "max_bytes": "LOG_MAX_BYTES",
    "backup_count": "LOG_BACKUP_COUNT",
    "archive_count": "LOG_ARCHIVE_COUNT",
    "archive_max_age_days": "LOG_ARCHIVE_MAX_AGE_DAYS",
    "compress": "LOG_COMPRESS_BACKUPS",
    "backup_dir": "LOG_BACKUP_DIR",
    "archive_dir": "LOG_ARCHIVE_DIR",
    "min_rotate_bytes": "LOG_MIN_ROTATE_BYTES",
    "min_rotate_age_secs": "LOG_MIN_ROTATE_AGE_SECS",
    "rotate_at": "LOG_ROTATE_AT",
    "rotation_disabled": "DISABLE_LOG_ROTATION",
    "write_mode": "LOG_WRITE_MODE",
    "buffer_bytes": "LOG_BUFFER_BYTES",
    "flush_interval_ms": "LOG_FLUSH_INTERVAL_MS",
}


def _nanos(when: _dt.datetime) -> int:
    if not isinstance(when, _dt.datetime):
        raise TypeError(f"expected a datetime, got {type(when).__name__}")
    # A naive datetime is local time, as everywhere in logging.
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000


class ManualClock:
    """A clock that only moves when told to: ``set(datetime)`` and ``advance(seconds or
    timedelta)``. Pass it to a handler as ``clock=`` to test logging across midnight."""

    def __init__(self, start: _dt.datetime):
        self._native = _native.ManualClock(_nanos(start))

    def now(self) -> _dt.datetime:
        nanos = self._native.now_nanos()
        return _dt.datetime.fromtimestamp(nanos / 1e9, tz=_dt.timezone.utc)

    def set(self, when: _dt.datetime) -> None:
        self._native.set_nanos(_nanos(when))

    def advance(self, by) -> None:
        seconds = by.total_seconds() if isinstance(by, _dt.timedelta) else float(by)
        self._native.advance(seconds)


def _setting_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


class RotatingFileHandler(logging.Handler):
    """A ``logging.Handler`` writing through mhm-log's rotating writer.

    ``filename`` is the active log; rotated copies go to ``backups/`` beside it (or
    ``backup_dir``), older ones to ``archive/``. Handlers on one path in one process share
    one writer, whose settings are merged: the file rotates when any handler asks (the
    smallest size limit, midnight if any asks) and keeps the most any asks for; the rest
    (and the clock) stay the first handler's; a disagreement is reported once as a
    ``SettingsMergedWarning`` naming both values. ``flush()`` writes out what a buffered
    writer holds; ``close()`` lets go of the writer, and the last handler on a path closes
    it. A failure goes to ``handleError``, never into the application. In a ``fork``
    child every record is written at once, whatever ``write_mode`` says: such children end
    with ``os._exit``, which flushes nothing (README, "Child processes").
    """

    terminator = "\n"

    def __init__(self, filename, *, encoding: str | None = "utf-8", delay: bool = False,
                 clock: ManualClock | None = None, level=logging.NOTSET, **settings):
        # Handler's own constructor, not the next class's in a subclass's order (the
        # compat class is also a TimedRotatingFileHandler, whose constructor opens a stream).
        logging.Handler.__init__(self, level)
        unknown = sorted(set(settings) - set(SETTINGS))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        self.baseFilename = os.path.abspath(os.fspath(filename))
        self.encoding = encoding or "utf-8"
        self.delay = delay
        self._settings = {SETTINGS[k]: _setting_value(v) for k, v in settings.items()
                          if v is not None}
        self._clock = clock
        self._writer = self._make_writer(open=not delay)
        self._warn_merged()
        _track(self)

    def _make_writer(self, open: bool):
        clock = self._clock._native if self._clock is not None else None
        try:
            return _native.Writer(self.baseFilename, self._settings, clock, open)
        except ValueError as e:  # a bad setting: say which handler
            raise ValueError(f"{self.baseFilename}: {e}") from None

    def _warn_merged(self) -> None:
        writer = self._writer
        if writer is not None:
            notes = writer.take_notes()
            if notes:
                # Name the application's line that made the handler, however many of this
                # package's frames (a subclass's constructor) are in between.
                here = os.path.dirname(os.path.abspath(__file__))
                level, frame = 1, sys._getframe(0)
                while frame is not None and os.path.dirname(
                        os.path.abspath(frame.f_code.co_filename)) == here:
                    level += 1
                    frame = frame.f_back
                for note in notes:
                    warnings.warn(note, SettingsMergedWarning, stacklevel=level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            data = line.encode(self.encoding, "backslashreplace")
            self._live_writer().write(data, record.levelno >= logging.ERROR)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._writer is not None:
                self._writer.flush()
        except Exception:
            # logging.shutdown() flushes every handler; a full disk must not raise there.
            pass
        finally:
            self.release()

    def close(self) -> None:
        self.acquire()
        try:
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    writer.flush()
                except Exception:
                    pass
                writer.release()
        finally:
            self.release()
            super().close()

    def stats(self) -> dict:
        """The shared writer's counters (rotations, events, bytes, failures)."""
        return self._live_writer().stats()

    def _live_writer(self):
        """The writer, opened again if the handler was closed and is used again (as
        ``logging`` allows)."""
        writer = self._writer
        if writer is None:
            writer = self._writer = self._make_writer(open=True)
        return writer

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.baseFilename} ({level})>"


# === Children that end with os._exit ===
#
# A multiprocessing child ends with os._exit once its target returns (fork and forkserver
# start methods): no atexit, so no logging.shutdown. A child forked from a process that had
# imported this package writes every record at once (the native module knows it is a fork
# child: see _native's Writer). A forkserver child that imported the package itself does
# not know, and buffers: for it, every handler is flushed by multiprocessing's exit
# finalizers, which its Process._bootstrap runs (util._exit_function) before os._exit.

#: This process's handlers, weakly, by id: what `_flush_all` flushes.
_HANDLERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
#: The process whose multiprocessing exit finalizers include `_flush_all`.
_flush_registered_in: int | None = None
_after_fork_hooked = False


def _flush_all() -> None:
    """Writes out what every handler of this process holds (without closing them)."""
    for ref in _HANDLERS.valuerefs():  # a copy: other threads may add handlers meanwhile
        handler = ref()
        if handler is not None:
            handler.flush()


def _track(handler: RotatingFileHandler) -> None:
    global _after_fork_hooked
    _HANDLERS[id(handler)] = handler
    if _flush_registered_in == os.getpid():
        return
    # Not imported here (a logging package should not load multiprocessing): a spawn or
    # forkserver child has imported it before any code of ours runs; any other process
    # ends through atexit, or is a fork child, which writes direct.
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    _flush_at_multiprocessing_exit(util)
    if not _after_fork_hooked:
        # A child's bootstrap drops the finalizers it inherited or made while it was
        # being prepared, then runs the after-fork hooks (inherited by its own children).
        _after_fork_hooked = True
        util.register_after_fork(_flush_all, lambda _: _flush_at_multiprocessing_exit(util))


def _flush_at_multiprocessing_exit(util) -> None:
    global _flush_registered_in
    _flush_registered_in = os.getpid()
    # Finalizers run highest priority first: this one after those that may still log (a
    # Pool's is 15, a Queue's 10 and -5), before the temporary folder goes (-100).
    util.Finalize(None, _flush_all, exitpriority=-50)
