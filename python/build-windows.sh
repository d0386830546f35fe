#!/usr/bin/env bash
# Builds the Windows wheel (win_amd64, stable ABI 3.10+) on this Linux machine: the
# extension and mhm-sidecar.exe cross-built with mingw-w64 (x86_64-pc-windows-gnu), into
# target/wheels-windows/. Needs the Rust target and x86_64-w64-mingw32-gcc (which
# scripts/windows/test.sh installs) and maturin (in $VENV, default .venv).
#
# The wheel is built and its shape checked (scripts/windows/test.sh: the .pyd exports
# PyInit__native and links python3.dll only; the bundled mhm-sidecar.exe runs under Wine),
# but no Windows Python runs it here: none can be installed on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
TARGET=x86_64-pc-windows-gnu
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "maturin>=1.5,<2"
cargo build --release --target "$TARGET" -p mhm-sidecar
# The wheel bundles what is in mhm_log/bin: only the Windows binary, for this build.
STASH="$(mktemp -d)"
trap 'rm -rf python/mhm_log/bin; [ -d "$STASH/bin" ] && mv "$STASH/bin" python/mhm_log/bin; rm -rf "$STASH"' EXIT
[ -d python/mhm_log/bin ] && mv python/mhm_log/bin "$STASH/bin"
mkdir -p python/mhm_log/bin
cp "target/$TARGET/release/mhm-sidecar.exe" python/mhm_log/bin/
rm -rf target/wheels-windows
"$VENV/bin/maturin" build --quiet --release --target "$TARGET" -m python/Cargo.toml \
    -o target/wheels-windows
ls target/wheels-windows/mhm_log-*-win_amd64.whl
