"""The ``mhm-sidecar`` command installed with the wheel: runs the bundled binary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def binary() -> Path:
    name = "mhm-sidecar.exe" if os.name == "nt" else "mhm-sidecar"
    return Path(__file__).resolve().parent / "bin" / name


def main() -> None:
    exe = binary()
    if not exe.is_file():
        sys.stderr.write(
            f"error: {exe} is missing: this mhm_log was installed without the mhm-sidecar "
            "binary (build the wheel with scripts/test.sh or python/build.sh)\n")
        sys.exit(2)
    args = [str(exe), *sys.argv[1:]]
    if os.name == "nt":
        sys.exit(subprocess.call(args))
    os.execv(str(exe), args)
