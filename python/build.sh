#!/usr/bin/env bash
# Builds the mhm_log wheel (the extension and the mhm-sidecar binary, release) and installs
# it into the virtual environment $VENV (default .venv, made when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "maturin>=1.5,<2" "pytest>=7"
cargo build --release -p mhm-sidecar
mkdir -p python/mhm_log/bin
cp target/release/mhm-sidecar python/mhm_log/bin/
rm -f target/wheels/mhm_log-*.whl
"$VENV/bin/maturin" build --quiet --release -m python/Cargo.toml -o target/wheels
"$VENV/bin/python" -m pip install -q --force-reinstall --no-deps target/wheels/mhm_log-*.whl
