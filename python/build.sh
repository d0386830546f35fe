#!/usr/bin/env bash
# Builds the mhm_log wheel (the extension and the mhm-sidecar binary) and installs it into
# the virtual environment $VENV (default .venv, made when missing). The profile is
# $MHM_WHEEL_PROFILE: `release` (the default, what is shipped) or `dev` (the test command's:
# it reuses the debug build the Rust tests made).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PROFILE=${MHM_WHEEL_PROFILE:-release}
case "$PROFILE" in
    release) OUT=release ;;
    dev) OUT=debug ;;
    *) echo "python/build.sh: MHM_WHEEL_PROFILE must be release or dev, not $PROFILE" >&2; exit 2 ;;
esac
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip show -q maturin pytest >/dev/null 2>&1 \
    || "$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2" "pytest>=7"
cargo build --profile "$PROFILE" -p mhm-sidecar
mkdir -p python/mhm_log/bin
cp "target/$OUT/mhm-sidecar" python/mhm_log/bin/
rm -f target/wheels/mhm_log-*.whl
"$VENV/bin/maturin" build --quiet --profile "$PROFILE" -m python/Cargo.toml -o target/wheels
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    target/wheels/mhm_log-*.whl
