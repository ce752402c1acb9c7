"""A throwaway Debian 12 booted with systemd-nspawn: a real systemd (PID 1) to run units under.

    with nspawn.Container("hdb-systemd-test") as c:    # unpack the cached rootfs, boot (~3-15 s)
        c.write("/etc/hdb-bridge/password", "secret")  # files go straight into its root
        c.run("systemctl", "start", "hdb-bridge")      # commands run inside, through nsenter
    # powered off, its root removed, nspawn's leftovers on the host cleaned up

Shares the host's network namespace (no --private-network), so a server on 127.0.0.1 is reachable
from inside. The recipe is /work/shared/docs/systemd-and-containers.md; the root comes from
packaging/scripts/base-rootfs.sh (built once, cached). One container at a time per host: nspawn
names its cgroups payload/ and supervisor/ at the top of the hierarchy.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import hdb

BASE_ROOTFS_SCRIPT = hdb.REPO / "packaging" / "scripts" / "base-rootfs.sh"
LOCK_FILE = Path("/run/lock/hdb-bridge-nspawn.lock")
CGROUP_ROOTS = [Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup")]


def missing_tools() -> list[str]:
    return [t for t in ("systemd-nspawn", "nsenter", "debootstrap", "zstd") if shutil.which(t) is None]


def base_rootfs(timeout: float = 600) -> Path:
    """The cached minimal Debian 12 root (tar.zst), built on first use (~1-2.5 min)."""
    r = subprocess.run(["bash", str(BASE_ROOTFS_SCRIPT)], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"base-rootfs.sh failed ({r.returncode}): {r.stderr[-3000:]}")
    return Path(r.stdout.strip().splitlines()[-1])


class Container:
    def __init__(self, name: str, *, boot_timeout: float = 60) -> None:
        self.name = f"{name}-{os.getpid()}"
        self.boot_timeout = boot_timeout
        self.tmp: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.leader: int | None = None  # the container's PID 1 as seen from the host
        self._lock: int | None = None
        self.timings: dict[str, float] = {}

    @property
    def root(self) -> Path:
        assert self.tmp, "not started"
        return self.tmp / "root"

    @property
    def console_log(self) -> Path:
        assert self.tmp, "not started"
        return self.tmp / "console.log"

    def __enter__(self) -> "Container":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        tar = base_rootfs()
        LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o644)
        hdb.wait_for(lambda: self._try_lock(), 600, "the nspawn lock (another container test is running)", 0.5)
        t0 = time.monotonic()
        # Not /tmp: it may be a small tmpfs; the root is ~160 MiB.
        self.tmp = Path(tempfile.mkdtemp(prefix="hdb-nspawn-", dir="/var/tmp"))
        self.root.mkdir()
        subprocess.run(["tar", "--zstd", "--numeric-owner", "-xf", str(tar), "-C", str(self.root)], check=True,
                       timeout=300)
        self.timings["unpack"] = time.monotonic() - t0
        t0 = time.monotonic()
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with open(self.console_log, "wb") as console:
            # If this test dies, nspawn gets SIGTERM and powers the container off (SIGKILL would leave
            # the container's processes running).
            pdeathsig = [shutil.which("setpriv") or "setpriv", "--pdeathsig", "TERM", "--"]
            self.proc = subprocess.Popen(
                [*pdeathsig, "systemd-nspawn", "-D", str(self.root), "-M", self.name, "--register=no", "--keep-unit", "--boot",
                 "--console=pipe", "--capability=CAP_BPF,CAP_NET_ADMIN", "--system-call-filter=bpf"],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=env,
                start_new_session=True)
        self.leader = hdb.wait_for(self._find_leader, 30, "systemd-nspawn to start the container's init")
        hdb.wait_for(self._booted, self.boot_timeout, "the container's systemd to finish booting", 0.2)
        self.timings["boot"] = time.monotonic() - t0

    def _try_lock(self) -> bool:
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _find_leader(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"systemd-nspawn exited early:\n{hdb._tail(self.console_log)}")
        # nspawn first forks a helper that sets up the namespaces and exits; the container's PID 1 is
        # the child that runs systemd.
        for kid in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split():
            try:
                if Path(f"/proc/{kid}/comm").read_text().strip() == "systemd":
                    return int(kid)
            except FileNotFoundError:
                pass
        return None

    def _find_leader_quietly(self) -> int | None:
        try:
            return self._find_leader()
        except (RuntimeError, OSError):
            return None

    def _booted(self) -> bool:
        r = self.run("systemctl", "is-system-running", check=False, timeout=5)
        state = r.stdout.strip()
        if state in ("running", "degraded"):
            return True
        return False

    def stop(self, timeout: float = 30) -> None:
        """Powers the container off (SIGKILL to nspawn if it hangs), removes its root and nspawn's leftovers."""
        t0 = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            if self.leader:
                self.run("systemctl", "poweroff", check=False, timeout=10)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                # Killing nspawn alone leaves the container running: its PID 1 first (which ends
                # every process of the container's PID namespace), then nspawn.
                hdb.log(f"container {self.name} did not power off in {timeout}s; killing it")
                leader = self.leader or self._find_leader_quietly()
                if leader:
                    _kill(leader)
                _kill(self.proc.pid)
                self.proc.wait(10)
        self.timings["stop"] = time.monotonic() - t0
        self._clean_host()
        if self.tmp and os.environ.get("HDB_KEEP_ROOT") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    def _clean_host(self) -> None:
        # nspawn leaves its (empty) cgroups and /run/systemd/nspawn/propagate/NAME behind on a host whose
        # PID 1 is not systemd. rmdir only removes empty directories: nothing that is in use goes.
        for top in CGROUP_ROOTS:
            for name in ("payload", "supervisor"):
                d = top / name
                if d.is_dir():
                    for sub in sorted(d.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                        if sub.is_dir():
                            _rmdir(sub)
                    _rmdir(d)
        if self.tmp and self.root.exists():  # nspawn's lock on the root directory, if it was killed
            st = os.stat(self.root)
            (Path("/run/systemd/nspawn/locks") / f"inode-{st.st_dev}:{st.st_ino}").unlink(missing_ok=True)
        propagate = Path("/run/systemd/nspawn/propagate") / self.name
        if propagate.is_dir():
            shutil.rmtree(propagate, ignore_errors=True)
        for d in (Path("/run/systemd/nspawn/propagate"), Path("/run/systemd/nspawn/locks"),
                  Path("/run/systemd/nspawn")):
            _rmdir(d)

    # --- inside ---------------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Runs a command inside (all of the container's namespaces), bounded by `timeout` in there too."""
        assert self.leader, "not started"
        cmd = ["nsenter", "-t", str(self.leader), "-a", "timeout", "-k", "2", str(timeout), *argv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise RuntimeError(f"in {self.name}: {' '.join(argv)} -> {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def write(self, path: str, text: str, mode: int = 0o644) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chmod(target, mode)
        return target

    def copy_in(self, source: Path, path: str) -> Path:
        target = self.root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        return target


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _rmdir(d: Path) -> None:
    try:
        d.rmdir()
    except OSError:
        pass
