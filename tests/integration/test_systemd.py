#!/usr/bin/env python3
"""The .deb on a clean Debian 12 booted with a real systemd (systemd-nspawn), against a real HarperDB 4.7.

The package is built with cpack from the tree under test, installed with dpkg -i into a fresh copy of
the cached minbase root (packaging/scripts/base-rootfs.sh), and hdb-bridge.service is run as shipped,
with the shipped config pointed at a HarperDB on the host's loopback through a TCP proxy (the container
shares the host's network). Proves: the package installs and creates its user and password file;
`systemctl start` is `active` only after READY=1 (the proxy refuses until the test lets it through);
the STATUS= text; sockets in /run/hdb-bridge with the configured mode and group, which a member of the
group can read and others cannot; the password arrives only through LoadCredential=; `systemctl stop`
is clean. Runs as root; ~1 min plus the one-time rootfs build (~1-2.5 min).

Then: the watchdog kills a stopped loop and systemd restarts it; `systemctl reload` applies a changed config
and refuses an invalid one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import debpkg  # noqa: E402
import hdb  # noqa: E402
import nspawn  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

UNIT = "hdb-bridge.service"
CONFIG = "/etc/hdb-bridge/hdb-bridge.yaml"
PASSWORD_FILE = "/etc/hdb-bridge/password"
SOCKET = "/run/hdb-bridge/animals.sock"


def binary_sends_watchdog(binary: str) -> bool:
    """Whether the daemon pings systemd's watchdog (the literal of its sd_notify message is in it)."""
    return b"WATCHDOG=1" in Path(binary).read_bytes()


@unittest.skipUnless(os.geteuid() == 0, "systemd-nspawn and dpkg -i need root")
class SystemdService(unittest.TestCase):
    """One container and one HarperDB for the class; the tests run in name order and share the service."""

    @classmethod
    def setUpClass(cls) -> None:
        missing = nspawn.missing_tools()
        if missing:
            raise RuntimeError(f"missing {missing}: packaging/scripts/deps.sh installs them")
        cls.tmp = Path(tempfile.mkdtemp(prefix="hdb-systemd-test-"))
        cls.timings: dict[str, float] = {}
        cls.hdb = None
        cls.proxy = None
        cls.box = None
        try:
            t0 = time.monotonic()
            cls.deb = debpkg.build_deb(debpkg.build_dir(), cls.tmp / "deb")
            cls.timings["cpack"] = time.monotonic() - t0
            cls.hdb = hdb.HarperDB4(password="hdb-admin-pw").start()
            cls.hdb.ensure_table("dev", "animals")
            cls.proxy = TcpProxy("127.0.0.1", cls.hdb.http_port)
            cls.box = nspawn.Container("hdb-systemd-test")
            cls.box.start()
            cls.timings.update(cls.box.timings)
            t0 = time.monotonic()
            cls.box.copy_in(cls.deb, "/var/tmp/hdb-bridge.deb")
            cls.install = cls.box.run("dpkg", "-i", "/var/tmp/hdb-bridge.deb", timeout=120, check=False)
            cls.timings["dpkg -i"] = time.monotonic() - t0
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.box:
            cls.box.stop()
            cls.timings["poweroff"] = cls.box.timings.get("stop", 0)
        if cls.proxy:
            cls.proxy.close()
        if cls.hdb:
            cls.hdb.stop()
        if cls.tmp:
            subprocess.run(["rm", "-rf", "--one-file-system", str(cls.tmp)], timeout=60)
        hdb.log("systemd test timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in cls.timings.items()))

    # --- helpers --------------------------------------------------------------------------------
    def show(self, *props: str) -> dict[str, str]:
        out = self.box.run("systemctl", "show", UNIT, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self) -> str:
        return self.box.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat", check=False).stdout

    def wait_state(self, state: str, timeout: float) -> dict[str, str]:
        def reached() -> dict[str, str] | None:
            s = self.show("ActiveState", "SubState", "StatusText", "Result")
            if s["ActiveState"] == "failed":
                raise AssertionError(f"{UNIT} failed: {s}\n{self.journal()}")
            return s if s["ActiveState"] == state else None
        return hdb.wait_for(reached, timeout, f"{UNIT} to be {state}", 0.1)

    def configure(self) -> None:
        """The shipped config, pointed at the proxy; the password only in the credential's source file."""
        # The file as the package installed it, kept from the first call: later calls find it edited.
        cls = type(self)
        if getattr(cls, "_shipped", None) is None:
            cls._shipped = (self.box.root / CONFIG.lstrip("/")).read_text()
        shipped = cls._shipped
        text, n = re.subn(r"url: ws://127\.0\.0\.1:9926", f"url: ws://127.0.0.1:{self.proxy.port}", shipped)
        self.assertEqual(n, 1, "the shipped config's url line moved")
        text, n = re.subn(r"username: admin", f"username: {self.hdb.username}", text)
        self.box.write(CONFIG, text)
        self.box.write(PASSWORD_FILE, f"{self.hdb.password}\n", 0o600)
        if not binary_sends_watchdog(str(self.box.root / "usr/bin/hdb-bridge")):
            # This daemon does not ping the watchdog yet: WatchdogSec= would kill it mid-test.
            self.box.write(f"/etc/systemd/system/{UNIT}.d/no-watchdog.conf", "[Service]\nWatchdogSec=0\n")
        self.box.run("systemctl", "daemon-reload")

    def start(self) -> None:
        """Starts the service (if not running) and waits for active; the proxy lets everything through."""
        if self.show("ActiveState")["ActiveState"] != "active":
            self.configure()
            self.proxy.restore()
            self.box.run("systemctl", "start", UNIT, timeout=60)

    def as_user(self, user: str, *argv: str, out: Path, timeout: float = 10) -> subprocess.Popen[bytes]:
        """Starts argv inside as `user`, stdout and stderr into the host file `out`."""
        assert self.box.leader
        with open(out, "wb") as f:
            return subprocess.Popen(["nsenter", "-t", str(self.box.leader), "-a", "timeout", str(timeout),
                                     "runuser", "-u", user, "--", *argv], stdout=f, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)

    # --- cases ----------------------------------------------------------------------------------
    def test_1_package_installs(self) -> None:
        self.assertEqual(self.install.returncode, 0, self.install.stdout + self.install.stderr)
        passwd = self.box.run("getent", "passwd", "hdb-bridge").stdout
        self.assertRegex(passwd, r"^hdb-bridge:x:\d+:\d+:.*:/var/lib/hdb-bridge:/usr/sbin/nologin")
        # The password file exists (so LoadCredential= works), empty, root's alone.
        st = os.stat(self.box.root / PASSWORD_FILE.lstrip("/"))
        self.assertEqual((st.st_size, st.st_mode & 0o777, st.st_uid), (0, 0o600, 0))
        self.assertEqual(self.box.run("systemctl", "is-enabled", UNIT, check=False).stdout.strip(), "disabled")
        # Until the admin writes the password, the shipped config says precisely what is missing.
        r = self.box.run("hdb-bridge", "--check-config", check=False)
        self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
        self.assertIn("servers.local.password_file: the file is empty", r.stderr)
        man = self.box.run("ls", "/usr/share/man/man8/hdb-bridge.8.gz", "/usr/share/man/man5/hdb-bridge.yaml.5.gz")
        self.assertEqual(len(man.stdout.split()), 2)

    def test_2_active_only_after_ready(self) -> None:
        self.configure()
        self.proxy.cut(refuse=True)  # HarperDB unreachable: the bridge keeps retrying, never READY
        t0 = time.monotonic()
        self.box.run("systemctl", "start", "--no-block", UNIT)
        connecting = hdb.wait_for(lambda: (lambda s: s if s["StatusText"] else None)(
            self.show("ActiveState", "StatusText", "MainPID")), 15, "a STATUS= line while connecting", 0.1)
        self.assertEqual(connecting["ActiveState"], "activating", connecting)
        self.assertNotEqual(connecting["MainPID"], "0")
        hdb.wait_for(lambda: self.proxy.accepted >= 2, 20, "the bridge to retry through the proxy")
        while time.monotonic() - t0 < 3:  # retrying, alive, and still not active
            self.assertEqual(self.show("ActiveState")["ActiveState"], "activating")
            time.sleep(0.2)
        refused_for = time.monotonic() - t0
        self.proxy.restore()
        active = self.wait_state("active", 40)
        self.assertEqual(active["SubState"], "running")
        self.assertTrue(active["StatusText"], "no STATUS= text once running")
        self.assertNotEqual(active["StatusText"], connecting["StatusText"])
        # systemd logged "Started" only after the bridge said it was ready.
        log = self.journal()
        ready, started = log.find("subscribed; ready"), log.find("Started hdb-bridge.service")
        self.assertTrue(0 <= ready < started, log)
        hdb.log(f"activating for {refused_for:.1f}s while refused; STATUS= {connecting['StatusText']!r} then "
                f"{active['StatusText']!r}")

    def test_3_sockets_mode_group_and_consumers(self) -> None:
        self.start()
        out = self.box.run("stat", "-c", "%F %a %U %G", "/run/hdb-bridge", SOCKET).stdout.splitlines()
        self.assertEqual(out, ["directory 750 hdb-bridge hdb-bridge", "socket 660 hdb-bridge hdb-bridge"])
        # A consumer joins the group; someone else cannot get in.
        self.box.run("useradd", "--no-create-home", "-G", "hdb-bridge", "alice")
        self.box.run("useradd", "--no-create-home", "bob")
        alice_out, bob_out = self.tmp / "alice.out", self.tmp / "bob.out"
        alice = self.as_user("alice", "hdb-bridge", "tail", SOCKET, out=alice_out, timeout=30)
        bob = self.as_user("bob", "hdb-bridge", "tail", SOCKET, out=bob_out, timeout=10)
        try:
            # Insert until alice's tail shows one (she may connect after the first insert).
            def seen() -> bool:
                self.hdb.insert("dev", "animals", [{"id": int(time.time() * 1000), "name": "via systemd"}])
                return hdb.wait_for(lambda: "via systemd" in alice_out.read_text(errors="replace"), 1,
                                    "alice's line") if alice.poll() is None else True
            hdb.wait_for(lambda: _swallow_timeout(seen), 20, "alice to read a change through the socket", 0)
        finally:
            _stop_inside(alice)
        self.assertIn("via systemd", alice_out.read_text(errors="replace"))
        bob.wait(15)
        self.assertNotEqual(bob.returncode, 0)
        self.assertIn("permission denied", bob_out.read_text(errors="replace"))

    def test_4_password_only_through_the_credential(self) -> None:
        self.start()
        pid = self.show("MainPID")["MainPID"]
        environ = self.box.run("cat", f"/proc/{pid}/environ").stdout
        creds = [kv for kv in environ.split("\0") if kv.startswith("CREDENTIALS_DIRECTORY=")]
        self.assertEqual(creds, [f"CREDENTIALS_DIRECTORY=/run/credentials/{UNIT}"])
        self.assertEqual(self.box.run("cat", f"/run/credentials/{UNIT}/password").stdout.strip(), self.hdb.password)
        # The service's user could not have read the source file itself: only the credential got it there.
        r = self.box.run("runuser", "-u", "hdb-bridge", "--", "cat", PASSWORD_FILE, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)
        # The service reads it; the config holds no password; nothing shows it.
        self.assertNotIn(self.hdb.password, (self.box.root / CONFIG.lstrip("/")).read_text())
        cmdline = self.box.run("cat", f"/proc/{pid}/cmdline").stdout.replace("\0", " ")
        self.assertNotIn(self.hdb.password, cmdline)
        self.assertNotIn(self.hdb.password, self.journal())
        # HarperDB accepted it: the bridge is subscribed (active) with that password and no other.
        self.assertEqual(self.show("ActiveState")["ActiveState"], "active")

    def test_5_stop_is_clean(self) -> None:
        self.start()
        t0 = time.monotonic()
        self.box.run("systemctl", "stop", UNIT, timeout=30)
        took = time.monotonic() - t0
        s = self.show("ActiveState", "Result", "ExecMainCode", "ExecMainStatus", "NRestarts")
        self.assertEqual((s["ActiveState"], s["Result"], s["ExecMainStatus"]), ("inactive", "success", "0"), s)
        self.assertLess(took, 10)
        self.assertFalse((self.box.root / "run/hdb-bridge").exists())  # RuntimeDirectory= removed
        r = self.box.run("test", "-e", "/run/hdb-bridge", check=False)
        self.assertNotEqual(r.returncode, 0, "/run/hdb-bridge outlived the service")
        state = self.box.run("ls", "/var/lib/hdb-bridge/").stdout.split()
        self.assertTrue(state, "no checkpoint in the StateDirectory")
        hdb.log(f"systemctl stop took {took:.2f}s")

    @unittest.skipUnless(binary_sends_watchdog(hdb.bridge_binary()), "this hdb-bridge does not send WATCHDOG=1")
    def test_6_watchdog_restarts_a_stopped_loop(self) -> None:
        # A loop that stops answering, made real with SIGSTOP: no WATCHDOG=1 comes, systemd aborts the
        # process (SIGABRT, then SIGKILL after TimeoutAbortSec) and Restart=on-failure starts a new one.
        self.configure()
        self.proxy.restore()
        dropin = f"/etc/systemd/system/{UNIT}.d/fast-watchdog.conf"
        self.box.write(dropin, "[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\n")
        self.addCleanup(lambda: (self.box.run("rm", "-f", dropin), self.box.run("systemctl", "daemon-reload")))
        self.box.run("systemctl", "daemon-reload")
        self.box.run("systemctl", "restart", UNIT, timeout=60)
        before = self.show("MainPID", "NRestarts")
        time.sleep(7)  # more than twice WatchdogSec: the pings keep it alive
        self.assertEqual(self.show("MainPID", "ActiveState")["MainPID"], before["MainPID"])
        self.box.run("kill", "-STOP", before["MainPID"])
        t0 = time.monotonic()
        def restarted() -> dict[str, str] | None:
            s = self.show("MainPID", "NRestarts", "ActiveState")
            return s if s["NRestarts"] != before["NRestarts"] and s["ActiveState"] == "active" else None
        after = hdb.wait_for(restarted, 40, "the watchdog to restart the service", 0.2)
        self.assertNotEqual(after["MainPID"], before["MainPID"])
        self.assertIn("Watchdog timeout", self.journal())
        hdb.log(f"watchdog: restarted and active {time.monotonic() - t0:.1f}s after SIGSTOP")


    def test_7_reload_applies_a_changed_config(self) -> None:
        # `systemctl reload` (ExecReload= sends SIGHUP): a sink added, the process and its subscription untouched.
        self.start()
        before = self.show("MainPID", "NRestarts")
        connects = self.journal().count("subscribed")
        path = self.box.root / CONFIG.lstrip("/")
        text = path.read_text()
        self.addCleanup(lambda: self.box.write(CONFIG, text))
        extra = "  - {name: extra, type: unix, path: /run/hdb-bridge/extra.sock, mode: \"0640\"}\n"
        self.box.write(CONFIG, text.replace("sinks:\n", "sinks:\n" + extra, 1))
        self.box.run("systemctl", "reload", UNIT, timeout=30)
        hdb.wait_for(lambda: "reload done" in self.journal(), 15, "the reload to be applied")
        self.assertIn("sinks added: extra", self.journal())
        after = self.show("MainPID", "NRestarts", "ActiveState")
        self.assertEqual((after["MainPID"], after["NRestarts"], after["ActiveState"]),
                         (before["MainPID"], before["NRestarts"], "active"))
        out = self.box.run("stat", "-c", "%F %a %U %G", "/run/hdb-bridge/extra.sock").stdout.strip()
        self.assertEqual(out, "socket 640 hdb-bridge hdb-bridge")
        self.assertEqual(self.journal().count("subscribed"), connects, "the subscription was not touched")
        # An invalid file is refused line by line; the service keeps running as it was.
        self.box.write(CONFIG, text.replace("sinks:\n", "sinks: [oops\n", 1))
        self.box.run("systemctl", "reload", UNIT, timeout=30)
        hdb.wait_for(lambda: "reload failed" in self.journal(), 15, "the invalid file to be refused")
        self.assertEqual(self.show("MainPID", "ActiveState"), {"MainPID": before["MainPID"], "ActiveState": "active"})


def _stop_inside(proc: subprocess.Popen[bytes]) -> None:
    """Ends a command started through nsenter: nsenter forks into the container's PID namespace, so
    its child (`timeout`, by PID) gets SIGTERM and passes it on; killing nsenter alone would leave an
    orphan that holds up the container's poweroff."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    try:
        for pid in children.read_text().split():
            os.kill(int(pid), signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        pass
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _swallow_timeout(fn) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(fn())
    except TimeoutError:
        return False


if __name__ == "__main__":
    unittest.main()
