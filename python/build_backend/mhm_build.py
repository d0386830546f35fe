"""The mhm_log build backend: maturin's, with the ``mhm-sidecar`` binary built first and
bundled into the wheel (``mhm_log/bin/``), so that every way pip installs the package gives
both the handler and the command: a wheel, ``pip install ./python`` (a checkout or a git URL)
and an sdist. maturin alone builds one Rust artifact per wheel (the extension); the sidecar
is a second one (maturin issue #368).

The binary is built with cargo from the workspace this ``python/`` folder belongs to (the
repository, or the sdist, which carries the sidecar's sources: the extension crate depends on
``mhm-sidecar`` for that reason only), in the profile ``MHM_WHEEL_PROFILE`` names
(``release``, the default, or ``dev``). ``MHM_SIDECAR_PREBUILT=1`` skips it when
``mhm_log/bin/`` already holds a binary (for a caller that put one there itself).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import maturin

# Everything maturin offers, unchanged but for building the wheel.
build_sdist = maturin.build_sdist
get_requires_for_build_sdist = maturin.get_requires_for_build_sdist
get_requires_for_build_wheel = maturin.get_requires_for_build_wheel
get_requires_for_build_editable = maturin.get_requires_for_build_editable
prepare_metadata_for_build_wheel = maturin.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = maturin.prepare_metadata_for_build_editable

PYTHON_DIR = Path(__file__).resolve().parent.parent
EXE = "mhm-sidecar.exe" if os.name == "nt" else "mhm-sidecar"


def _workspace() -> Path:
    for candidate in (PYTHON_DIR.parent, PYTHON_DIR):
        if (candidate / "sidecar" / "Cargo.toml").is_file():
            return candidate
    raise RuntimeError(
        f"mhm_log: the mhm-sidecar sources (sidecar/Cargo.toml) are not beside {PYTHON_DIR}; "
        "build from the repository or from the sdist")


def _bundle_sidecar() -> None:
    bin_dir = PYTHON_DIR / "mhm_log" / "bin"
    if os.environ.get("MHM_SIDECAR_PREBUILT") == "1" and (bin_dir / EXE).is_file():
        return
    workspace = _workspace()
    profile = os.environ.get("MHM_WHEEL_PROFILE", "release")
    manifest = str(workspace / "Cargo.toml")
    subprocess.run(["cargo", "build", "--profile", profile, "-p", "mhm-sidecar",
                    "--manifest-path", manifest], check=True)
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps",
                           "--manifest-path", manifest],
                          check=True, capture_output=True, text=True)
    target = Path(json.loads(meta.stdout)["target_directory"])
    built = target / ("debug" if profile == "dev" else profile) / EXE
    bin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, bin_dir / EXE)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _bundle_sidecar()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _bundle_sidecar()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
