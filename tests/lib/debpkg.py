"""The .deb of a build tree, made with cpack into a temp dir (~10 s), and what is in it.

    deb = debpkg.build_deb(Path(os.environ["HDB_BRIDGE_BUILD_DIR"]), tmp)
    debpkg.field(deb, "Depends")
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import hdb

REPO = hdb.REPO


def build_dir() -> Path:
    """The build tree whose binary the tests run (HDB_BRIDGE_BUILD_DIR, else the one around HDB_BRIDGE_BIN)."""
    if os.environ.get("HDB_BRIDGE_BUILD_DIR"):
        return Path(os.environ["HDB_BRIDGE_BUILD_DIR"])
    return Path(hdb.bridge_binary()).resolve().parents[1]


def build_deb(build: Path, out: Path, timeout: float = 240) -> Path:
    """Runs cpack on `build` (already built) and returns the .deb it wrote under `out`."""
    config = build / "CPackConfig.cmake"
    if not config.exists():
        raise RuntimeError(f"{config} is missing: configure and build {build} first")
    r = subprocess.run(["cpack", "-G", "DEB", "--config", str(config), "-B", str(out)],
                       capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"cpack failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    debs = sorted(out.glob("*.deb"))
    if len(debs) != 1:
        raise RuntimeError(f"cpack wrote {len(debs)} .deb files in {out}: {debs}")
    shutil.rmtree(out / "_CPack_Packages", ignore_errors=True)
    return debs[0]


def field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def control_file(deb: Path, name: str) -> str:
    """A file of the control archive (conffiles, postinst ...), or "" when there is none."""
    ctrl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True, timeout=30)
    r = subprocess.run(["tar", "-xOf", "-", f"./{name}"], input=ctrl.stdout, capture_output=True, timeout=30)
    return r.stdout.decode() if r.returncode == 0 else ""


def contents(deb: Path) -> dict[str, str]:
    """Path (without the leading '.') -> the mode string dpkg-deb -c prints."""
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    files: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        path = parts[5].lstrip(".")
        files[path.rstrip("/") or "/"] = parts[0]
    return files


def extract(deb: Path, into: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True, timeout=60)
