"""Checks the shape of the Windows wheel built on Linux (no Windows Python runs here):
it is tagged cp310-abi3-win_amd64; its extension is a PE DLL exporting PyInit__native and
importing python3.dll (the stable ABI), no versioned python3X.dll; it bundles
mhm-sidecar.exe, and that binary runs (under Wine) and answers --version; its
console script points at mhm_log._sidecar:main. Exits 1 naming every problem."""

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


def pe_imports_exports(data: bytes) -> tuple[set[str], set[str]]:
    """The DLL names a PE file imports and the names it exports (PE32+ only)."""
    pe = int.from_bytes(data[0x3C:0x40], "little")
    assert data[pe:pe + 4] == b"PE\0\0", "not a PE file"
    nsec = int.from_bytes(data[pe + 6:pe + 8], "little")
    opt = pe + 24
    assert int.from_bytes(data[opt:opt + 2], "little") == 0x20B, "not PE32+"
    dirs = opt + 112
    export_rva = int.from_bytes(data[dirs:dirs + 4], "little")
    import_rva = int.from_bytes(data[dirs + 8:dirs + 12], "little")
    sections = []
    sec = opt + int.from_bytes(data[pe + 20:pe + 22], "little")
    for i in range(nsec):
        s = sec + 40 * i
        vsize, va, rsize, raw = (int.from_bytes(data[s + o:s + o + 4], "little")
                                 for o in (8, 12, 16, 20))
        sections.append((va, max(vsize, rsize), raw))

    def off(rva: int) -> int:
        for va, size, raw in sections:
            if va <= rva < va + size:
                return raw + rva - va
        raise ValueError(f"rva {rva:#x} in no section")

    def cstr(rva: int) -> str:
        o = off(rva)
        return data[o:data.index(b"\0", o)].decode()

    imports = set()
    o = off(import_rva)
    while True:
        name_rva = int.from_bytes(data[o + 12:o + 16], "little")
        if name_rva == 0:
            break
        imports.add(cstr(name_rva).lower())
        o += 20
    exports = set()
    if export_rva:
        e = off(export_rva)
        count = int.from_bytes(data[e + 24:e + 28], "little")
        names = off(int.from_bytes(data[e + 32:e + 36], "little"))
        for i in range(count):
            exports.add(cstr(int.from_bytes(data[names + 4 * i:names + 4 * i + 4], "little")))
    return imports, exports


def main() -> int:
    wheel, wine = Path(sys.argv[1]), sys.argv[2]
    problems = []
    if not re.search(r"-cp310-abi3-win_amd64\.whl$", wheel.name):
        problems.append(f"{wheel.name}: not tagged cp310-abi3-win_amd64")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        pyd = [n for n in names if n.endswith(".pyd")]
        if pyd != ["mhm_log/_native.pyd"]:
            problems.append(f"extension modules {pyd}, expected mhm_log/_native.pyd")
        else:
            imports, exports = pe_imports_exports(z.read(pyd[0]))
            if "PyInit__native" not in exports:
                problems.append(f"{pyd[0]} does not export PyInit__native")
            if "python3.dll" not in imports:
                problems.append(f"{pyd[0]} does not import python3.dll: {sorted(imports)}")
            versioned = [i for i in imports if re.fullmatch(r"python3\d+\.dll", i)]
            if versioned:
                problems.append(f"{pyd[0]} imports {versioned}: not the stable ABI")
        if "mhm_log/bin/mhm-sidecar.exe" not in names:
            problems.append("mhm_log/bin/mhm-sidecar.exe is not bundled")
        if any(n.startswith("mhm_log/bin/") and not n.endswith(".exe") for n in names):
            problems.append("a non-Windows binary is bundled in mhm_log/bin")
        entry = next((n for n in names if n.endswith("entry_points.txt")), None)
        scripts = z.read(entry).decode().replace(" ", "") if entry else ""
        if "mhm-sidecar=mhm_log._sidecar:main" not in scripts:
            problems.append("no mhm-sidecar console script")
        if "mhm_log/bin/mhm-sidecar.exe" in names:
            with tempfile.TemporaryDirectory() as d:
                exe = Path(d) / "mhm-sidecar.exe"
                exe.write_bytes(z.read("mhm_log/bin/mhm-sidecar.exe"))
                out = subprocess.run([wine, str(exe), "--version"], capture_output=True,
                                     text=True, timeout=120)
                if out.returncode != 0 or "mhm-sidecar" not in out.stdout:
                    problems.append(f"the bundled mhm-sidecar.exe --version: {out.returncode} "
                                    f"{out.stdout!r} {out.stderr[-500:]!r}")
    for p in problems:
        print(f"windows wheel: {p}", file=sys.stderr)
    if not problems:
        print(f"windows wheel: {wheel.name}: shape checked (extension, stable ABI, "
              "mhm-sidecar.exe runs)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
