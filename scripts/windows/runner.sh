#!/usr/bin/env bash
# The runner cargo starts each Windows test binary with (CARGO_TARGET_..._RUNNER): Wine,
# and once more when Wine could not start the binary at all. Wine's server sometimes drops
# a new process's connection under load ("wine client error: ... Connection reset by
# peer"): the binary then exits before printing a byte, so before any test ran. A binary
# that printed anything has run, and its result stands, whatever it is.
set -uo pipefail
WINE="${MHM_WINE:?scripts/windows/test.sh sets MHM_WINE}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
for try in 1 2 3; do
    "$WINE" "$@" | tee "$out"
    rc="${PIPESTATUS[0]}"
    if [ "$rc" -eq 0 ] || [ -s "$out" ]; then
        exit "$rc"
    fi
    echo "windows: $(basename "$1") exited $rc before printing anything (try $try of 3);" \
        "Wine could not start it, starting it again" >&2
    sleep 2
done
exit "$rc"
