"""Drop-in for the service's own handler (MHM's ``core/logger.py``).

The service changes one import::

    # before
    class BackupDirectoryRotatingFileHandler(TimedRotatingFileHandler): ...
    # after
    from mhm_log.compat import BackupDirectoryRotatingFileHandler

The class passes every check the service makes of its handlers: it is an instance of
``logging.FileHandler``, ``logging.handlers.BaseRotatingHandler`` and
``logging.handlers.TimedRotatingFileHandler``, as the service's own class is, so its
``isinstance`` tests (raise ``discord.log`` to DEBUG, close file handlers on restart) find
it. Every line is still written by the Rust writer: no Python stream is ever opened on the
log (``stream`` stays ``None``).

Constructor, attributes and methods as the service's: ``baseFilename`` (absolute),
``base_filename`` (as given), ``backup_dir`` (as given, made by the constructor, as are
the log's folder), ``maxBytes``, ``backupCount``, ``when``, ``interval`` (seconds, as in
``TimedRotatingFileHandler``), settable ``suffix`` and ``namer``, ``shouldRollover(record)``
(what the writer's triggers and gates say now) and ``doRollover()`` (a rotation through the
writer, under its gates, naming and retention rules; nothing when ``DISABLE_LOG_ROTATION=1``
at the time of the call, as in the service). Copies are named as SPEC.md says
(``backups/<name>.log.<YYYY-MM-DD>[.N]``): ``suffix`` and ``namer`` are kept but do not
change names, so the sidecar and the writer always agree on them.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import time

from . import RotatingFileHandler

__all__ = ["BackupDirectoryRotatingFileHandler"]

# A size no log reaches: maxBytes=0 means "no size trigger", as in logging.
_NO_SIZE_LIMIT = (1 << 63) - 1


class BackupDirectoryRotatingFileHandler(RotatingFileHandler,
                                         logging.handlers.TimedRotatingFileHandler):
    """``BackupDirectoryRotatingFileHandler(filename, backup_dir, maxBytes=0,
    backupCount=0, encoding=None, delay=False, when="midnight", interval=1)``.

    ``maxBytes=0``: no size trigger (as in ``logging``). ``backupCount=0``: the
    ``LOG_BACKUP_COUNT`` setting (default 7) rather than "keep every copy". ``when`` must
    be ``"midnight"`` (or ``"D"``) with ``interval=1``: rotation is daily at local midnight,
    plus by size; other schedules raise ``ValueError``. Several handlers on one path share
    one writer and its merged settings (see ``mhm_log.RotatingFileHandler``).
    """

    def __init__(self, filename, backup_dir, maxBytes=0, backupCount=0, encoding=None,
                 delay=False, when="midnight", interval=1, **settings):
        if str(when).upper() not in ("MIDNIGHT", "D") or int(interval) != 1:
            raise ValueError(
                f"{filename}: when={when!r}, interval={interval!r} is not supported; "
                "mhm_log rotates daily at midnight (and by size)")
        # The folders, as the service's constructor makes them.
        log_dir = os.path.dirname(os.fspath(filename))
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
        if backup_dir:
            os.makedirs(os.path.abspath(os.fspath(backup_dir)), exist_ok=True)
        if maxBytes and maxBytes > 0:
            settings.setdefault("max_bytes", int(maxBytes))
        else:
            settings.setdefault("max_bytes", _NO_SIZE_LIMIT)
        if backupCount and backupCount > 0:
            settings.setdefault("backup_count", int(backupCount))
        if backup_dir:
            settings.setdefault("backup_dir", os.path.abspath(os.fspath(backup_dir)))
        settings.setdefault("rotate_at", "local-midnight")
        RotatingFileHandler.__init__(self, filename, encoding=encoding or "utf-8", delay=delay,
                                     **settings)
        # What logging's FileHandler and TimedRotatingFileHandler constructors would have set
        # (never called: they open a stream). No stream is ever opened.
        self.mode = "a"
        self.errors = None
        self.stream = None
        self.when = str(when).upper()
        self.interval = 60 * 60 * 24 * int(interval)
        self.utc = False
        self.atTime = None
        self.suffix = "%Y-%m-%d"
        self.extMatch = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\w+)?$", re.ASCII)
        self.namer = None
        self.rotator = None
        self.rolloverAt = self.computeRollover(int(time.time()))
        # The service's own attributes.
        self.base_filename = filename
        self.backup_dir = backup_dir
        self.maxBytes = maxBytes
        self.backupCount = backupCount

    def shouldRollover(self, record) -> bool:
        """Whether the log is due (its size limit or a midnight reached) and both gates
        pass now: the next record written rotates it."""
        try:
            return bool(self._live_writer().rotation_due())
        except Exception:
            return False

    def doRollover(self) -> None:
        """Rotates the log now through the writer when both gates pass (a file under
        ``LOG_MIN_ROTATE_BYTES`` or younger than ``LOG_MIN_ROTATE_AGE_SECS`` is kept, as the
        service's own handler keeps it), whatever the triggers say; nothing when
        ``DISABLE_LOG_ROTATION=1``. A failure is reported through ``handleError``."""
        if os.environ.get("DISABLE_LOG_ROTATION") == "1":
            return
        self.acquire()
        try:
            self._live_writer().rotate_now()
        except Exception:
            self.handleError(logging.makeLogRecord({"msg": f"doRollover of {self.baseFilename}"}))
        finally:
            self.release()
        self.rolloverAt = self.computeRollover(int(time.time()))

    def _open(self):
        raise OSError(f"{self.baseFilename}: mhm_log writes this log; no Python stream is opened")
