import logging

import pytest


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No LOG_* setting of the machine running the tests leaks into them."""
    import os
    for name in list(os.environ):
        if name.startswith("LOG_") or name == "DISABLE_LOG_ROTATION":
            monkeypatch.delenv(name)
    yield


def copy_order(path):
    """Copies in the order they were written: date, then number (`app.log.2026-11-26.10`)."""
    parts = path.name.removesuffix(".gz").split(".")
    seq = int(parts[-1]) if parts[-1].isdigit() else 0
    date = parts[-2] if parts[-1].isdigit() else parts[-1]
    return (date, seq)


def read_all(log_dir, name="app.log"):
    """Every line of a log across archive/, backups/ and the active file, in that order."""
    import gzip
    lines = []
    for sub in ("archive", "backups"):
        d = log_dir / sub
        if d.is_dir():
            for p in sorted(d.iterdir(), key=copy_order):
                if not p.name.startswith(name):
                    continue
                data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
                lines += data.decode().splitlines()
    active = log_dir / name
    if active.exists():
        lines += active.read_text().splitlines()
    return lines


def make_logger(name, handler, level=logging.DEBUG):
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger
