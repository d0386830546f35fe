#!/usr/bin/env bash
# The Python side of the test command: mhm_log installed from the source tree into $VENV
# (default .venv) as `pip install ./python` installs it (the build backend builds the
# extension and the bundled mhm-sidecar), then pytest. The profile is $MHM_WHEEL_PROFILE:
# `release` (the default) or `dev` (the test command's: it reuses the debug build the Rust
# tests made).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
PROFILE=${MHM_WHEEL_PROFILE:-release}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip show -q maturin pytest >/dev/null 2>&1 \
    || "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7"
export PATH="$VENV/bin:$PATH"  # maturin's build hooks run `maturin` by name
rm -f python/mhm_log/bin/mhm-sidecar python/mhm_log/bin/mhm-sidecar.exe
MHM_WHEEL_PROFILE="$PROFILE" MATURIN_PEP517_ARGS="--profile $PROFILE" \
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation \
    --force-reinstall --no-deps ./python
# Run from the tests folder so `import mhm_log` finds the installed package, not the sources.
cd python/tests
"$VENV/bin/python" -m pytest -q -p no:cacheprovider .
