#!/usr/bin/env bash
# Every way pip installs mhm_log gives a working `mhm-sidecar` command and handler: the
# sdist (built by maturin, installed into a fresh virtual environment with pip's build
# isolation, release profile, as a user would from an index). The source tree install
# (`pip install ./python`) is what scripts/test.sh does on every run; the wheel is what
# python/build.sh makes. Takes a whole release build (~7 min on 2 cores). Run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/maturin" ] || "$VENV/bin/python" -m pip install -q "maturin>=1.5,<2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$VENV/bin/maturin" sdist -m python/Cargo.toml -o "$work/sdist" >/dev/null
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check "$work"/sdist/mhm_log-*.tar.gz
"$work/venv/bin/mhm-sidecar" --version
"$work/venv/bin/python" - <<'PY'
import logging, mhm_log, tempfile, os
from mhm_log.compat import BackupDirectoryRotatingFileHandler
d = tempfile.mkdtemp()
h = BackupDirectoryRotatingFileHandler(os.path.join(d, "logs", "app.log"), os.path.join(d, "logs", "backups"))
assert isinstance(h, logging.handlers.TimedRotatingFileHandler)
h.emit(logging.LogRecord("t", logging.INFO, __file__, 1, "from the sdist", (), None))
h.close()
assert "from the sdist" in open(os.path.join(d, "logs", "app.log")).read()
print("check-install: the sdist gives mhm-sidecar and the handler")
PY
