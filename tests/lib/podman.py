"""Building and running the Dockerfile with buildah and podman, without Docker and without a registry.

    with podman.Engine() as engine:                      # state under a temp dir, image cache kept
        engine.ensure_base()                             # the cached Debian 12 root as debian:bookworm-slim
        engine.build(REPO, "hdb-bridge:test")            # buildah bud, layers cached between runs
        name = engine.run("hdb-bridge:test", "--read-only", ...)
    # containers and their volumes removed, podman's leftovers on the host cleaned up

The recipe is /work/shared/docs/systemd-and-containers.md section 3: runc (crun fails here), cgroupfs,
always --network host (the default network would add a bridge and iptables rules to the machine).
Images, build layers and the compiler cache (the Dockerfile's ccache mount) live in CACHE_DIR, so a repeat
skips the import and the apt layers and recompiles only changed sources; everything else (the container
database, run state, volumes, events) lives in a temp dir removed at the end.
One Engine at a time per host (a lock file): two would share the image store.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import nspawn

CACHE_DIR = Path(os.environ.get("HDB_BRIDGE_ROOTFS_CACHE", "/var/cache/hdb-bridge-test")) / "containers"
TOOLS = ("buildah", "podman", "runc", "zstd", "debootstrap")
# Root podman writes this whatever its config says; removed afterwards.
BLOB_INFO_CACHE = Path("/var/lib/containers/cache")
CGROUP_ROOTS = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup")]


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class Engine:
    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hdb-podman-"))
        self.env = dict(os.environ,
                        CONTAINERS_STORAGE_CONF=str(self.tmp / "storage.conf"),
                        CONTAINERS_CONF=str(self.tmp / "containers.conf"),
                        TMPDIR=str(self.tmp / "tmp"))
        self.containers: list[str] = []
        self.timings: dict[str, float] = {}
        self._lock: int | None = None

    # --- set-up and tear-down -------------------------------------------------------------------
    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, lock_timeout: float = 900) -> None:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(CACHE_DIR.parent / ".containers.lock", os.O_CREAT | os.O_RDWR, 0o644)
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError("another podman test holds the image store for too long")
                time.sleep(1)
        (self.tmp / "tmp").mkdir()
        (self.tmp / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{CACHE_DIR / "storage"}"\n'
            f'runroot = "{self.tmp / "run"}"\n')
        (self.tmp / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.tmp / "events.log"}"\n'
            f'static_dir = "{self.tmp / "libpod"}"\n'
            f'volume_path = "{self.tmp / "volumes"}"\n'
            f'tmp_dir = "{self.tmp / "libpod-tmp"}"\n')

    def close(self) -> None:
        for name in self.containers:
            self.podman("rm", "--force", "--volumes", "--time", "5", name, check=False, timeout=30)
        self.containers.clear()
        # Every layer a later build cannot use (earlier sources' compile layers): untagged, no children.
        self.podman("image", "prune", "--force", check=False, timeout=120)
        self._clean_host()
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.tmp)], timeout=60, check=False)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _clean_host(self) -> None:
        # cgroupfs: podman puts each container under libpod_parent/ and leaves the empty directories.
        for root in CGROUP_ROOTS:
            for d in sorted(root.glob("*/libpod_parent"), reverse=True) + [root / "libpod_parent"]:
                if d.is_dir():
                    subs = [p for p in d.rglob("*") if p.is_dir()]
                    for sub in sorted(subs, key=lambda p: len(p.parts), reverse=True):
                        _rmdir(sub)
                    _rmdir(d)
        shutil.rmtree(BLOB_INFO_CACHE, ignore_errors=True)
        _rmdir(BLOB_INFO_CACHE.parent)

    # --- commands -------------------------------------------------------------------------------
    def podman(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self._tool("podman", argv, check, timeout)

    def buildah(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self._tool("buildah", argv, check, timeout)

    def _tool(self, tool: str, argv: tuple[str, ...], check: bool,
              timeout: float) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([tool, *argv], env=self.env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(argv[:3])} ... failed ({r.returncode}):\n"
                               f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
        return r

    def ensure_base(self) -> str:
        """debian:bookworm-slim from the cached Debian 12 root; imported once per root (~8 s)."""
        t0 = time.monotonic()
        rootfs = nspawn.base_rootfs()
        cached = f"localhost/hdb-bridge-base:{rootfs.name.removesuffix('.tar.zst')}"
        if self.podman("image", "exists", cached, check=False).returncode != 0:
            tar = self.tmp / "base.tar"
            subprocess.run(f"zstd -dc '{rootfs}' > '{tar}'", shell=True, check=True, timeout=120)
            self.podman("import", "--change", 'CMD ["bash"]', str(tar), cached, timeout=300)
            tar.unlink()
        self.podman("tag", cached, "debian:bookworm-slim")
        self.timings["base image"] = time.monotonic() - t0
        return cached

    def build(self, context: Path, tag: str, *args: str, timeout: float = 1500) -> str:
        """buildah bud --layers; returns its output. The -dev packages stage is also tagged so that
        pruning leaves it in the cache."""
        # buildah keeps RUN --mount=type=cache directories (the compiler cache) under $TMPDIR.
        self.env["TMPDIR"] = str(CACHE_DIR / "build-tmp")
        Path(self.env["TMPDIR"]).mkdir(exist_ok=True)
        common = ["bud", "--isolation", "chroot", "--network", "host", "--pull=never", "--format", "docker",
                  "--layers", *args]
        t0 = time.monotonic()
        try:
            out = self.buildah(*common, "--target", "build-deps", "-t", "hdb-bridge-build-deps:cache",
                               str(context), timeout=timeout).stdout
            self.timings["build-deps stage"] = time.monotonic() - t0
            out += self.buildah(*common, "-t", tag, str(context), timeout=timeout).stdout
        finally:
            self.env["TMPDIR"] = str(self.tmp / "tmp")
        self.timings["build"] = time.monotonic() - t0
        return out

    def run(self, image: str, *options: str, args: tuple[str, ...] = ()) -> str:
        """podman run -d --network host; returns the container's name (removed in close())."""
        name = f"hdb-docker-test-{os.getpid()}-{len(self.containers)}"
        self.containers.append(name)
        self.podman("run", "--detach", "--name", name, "--network", "host", *options, image, *args, timeout=60)
        return name

    def inspect(self, name: str, fmt: str) -> str:
        return self.podman("inspect", "--format", fmt, name).stdout.strip()


def _rmdir(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass
