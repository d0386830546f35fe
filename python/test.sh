#!/usr/bin/env bash
# The Python side of the test command: build and install the wheel, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
bash python/build.sh
# Run from the tests folder so `import mhm_log` finds the installed wheel, not the sources.
cd python/tests
"../../$VENV/bin/python" -m pytest -q -p no:cacheprovider .
