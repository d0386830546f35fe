"""Drop-in for the service's own handler (MHM's ``core/logger.py``).

The service changes one import::

    # before
    from core.logger import BackupDirectoryRotatingFileHandler
    # after
    from mhm_log.compat import BackupDirectoryRotatingFileHandler

The constructor and the attributes the service reads or sets (``baseFilename``,
``backup_dir``, ``maxBytes``, ``backupCount``, ``suffix``, ``namer``, ``when``,
``interval``) are the same. Copies are named as SPEC.md says
(``backups/<name>.log.<YYYY-MM-DD>[.N]``): ``suffix`` and ``namer`` are accepted and kept
but do not change names, so the sidecar and the writer always agree on them.
"""

from __future__ import annotations

import os

from . import RotatingFileHandler

__all__ = ["BackupDirectoryRotatingFileHandler"]

# A size no log reaches: maxBytes=0 means "no size trigger", as in logging.
_NO_SIZE_LIMIT = (1 << 63) - 1


class BackupDirectoryRotatingFileHandler(RotatingFileHandler):
    """``BackupDirectoryRotatingFileHandler(filename, backup_dir, maxBytes=0,
    backupCount=0, encoding=None, delay=False, when="midnight", interval=1)``.

    ``maxBytes=0``: no size trigger (as in ``logging``). ``backupCount=0``: the
    ``LOG_BACKUP_COUNT`` setting (default 7) rather than "keep every copy". ``when`` must
    be ``"midnight"`` (or ``"D"``) with ``interval=1``: rotation is daily at local midnight,
    plus by size; other schedules raise ``ValueError``.
    """

    def __init__(self, filename, backup_dir, maxBytes=0, backupCount=0, encoding=None,
                 delay=False, when="midnight", interval=1, **settings):
        if str(when).upper() not in ("MIDNIGHT", "D") or int(interval) != 1:
            raise ValueError(
                f"{filename}: when={when!r}, interval={interval!r} is not supported; "
                "mhm_log rotates daily at midnight (and by size)")
        if maxBytes and maxBytes > 0:
            settings.setdefault("max_bytes", int(maxBytes))
        else:
            settings.setdefault("max_bytes", _NO_SIZE_LIMIT)
        if backupCount and backupCount > 0:
            settings.setdefault("backup_count", int(backupCount))
        if backup_dir:
            settings.setdefault("backup_dir", os.path.abspath(os.fspath(backup_dir)))
        settings.setdefault("rotate_at", "local-midnight")
        super().__init__(filename, encoding=encoding or "utf-8", delay=delay, **settings)
        self.backup_dir = os.fspath(backup_dir) if backup_dir else ""
        self.maxBytes = maxBytes
        self.backupCount = backupCount
        self.when = str(when).upper()
        self.interval = interval
        self.suffix = "%Y-%m-%d"
        self.namer = None
        self.rotator = None
