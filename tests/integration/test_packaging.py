#!/usr/bin/env python3
"""The systemd unit and the .deb, checked without running them (test_systemd.py runs them):

- hdb-bridge.service: `systemd-analyze verify` prints nothing (it exits 0 even on typos, so any output
  fails) and `systemd-analyze security --offline=yes` scores 2.0 or lower;
- `cmake --install` lays out /usr/bin, /etc/hdb-bridge, /lib/systemd/system, sysusers, tmpfiles, man pages;
- the .deb from cpack: lintian reports no error (its warnings are printed), the config is a conffile,
  Depends come from shlibdeps, the maintainer scripts are there, and its default config passes
  --check-config once the credential exists. ~30 s, most of it lintian.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import debpkg  # noqa: E402
import hdb  # noqa: E402

SOURCE = Path(os.environ.get("HDB_BRIDGE_SOURCE_DIR", hdb.REPO))
UNIT = SOURCE / "hdb-bridge.service"
MAX_EXPOSURE = 2.0


def run(argv: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)


class Unit(unittest.TestCase):
    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="hdb-unit-test-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def verify(self, unit_text: str) -> str:
        """systemd-analyze verify's whole output for the unit in a root made of the host's units, /bin/kill
        and our binary at its ExecStart path."""
        root = self.tmp / "root"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree("/lib/systemd/system", root / "lib/systemd/system", symlinks=True)
        for source, target in (("/bin/kill", "bin/kill"), (hdb.bridge_binary(), "usr/bin/hdb-bridge")):
            (root / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, root / target)
        (root / "etc/systemd/system").mkdir(parents=True)
        (root / "etc/systemd/system/hdb-bridge.service").write_text(unit_text)
        r = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "hdb-bridge.service"])
        return (r.stdout + r.stderr).strip()

    def test_verify_prints_nothing(self) -> None:
        self.assertEqual(self.verify(UNIT.read_text()), "")

    def test_verify_would_see_a_typo(self) -> None:
        # The check above is only worth something if verify speaks up: a misspelt directive.
        broken = UNIT.read_text().replace("WatchdogSec=", "WatchdogSecs=")
        self.assertIn("WatchdogSecs", self.verify(broken))

    def test_security_score(self) -> None:
        r = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={int(MAX_EXPOSURE * 10)}",
                 str(UNIT)])
        m = re.search(r"Overall exposure level for hdb-bridge\.service: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout + r.stderr)
        score = float(m.group(1))
        hdb.log(f"systemd-analyze security: {score}")
        self.assertLessEqual(score, MAX_EXPOSURE, r.stdout)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_unit_essentials(self) -> None:
        # What the daemon and the docs rely on; a change here must be a deliberate one.
        text = UNIT.read_text()
        for line in ("Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID",
                     "RuntimeDirectory=hdb-bridge", "StateDirectory=hdb-bridge", "User=hdb-bridge",
                     "LoadCredential=password:/etc/hdb-bridge/password", "RestartPreventExitStatus=78"):
            self.assertIn(f"\n{line}\n", text)
        self.assertRegex(text, r"\nWatchdogSec=\d+s\n")


class Install(unittest.TestCase):
    EXPECTED = ["usr/bin/hdb-bridge", "etc/hdb-bridge/hdb-bridge.yaml", "lib/systemd/system/hdb-bridge.service",
                "usr/lib/sysusers.d/hdb-bridge.conf", "usr/lib/tmpfiles.d/hdb-bridge.conf",
                "usr/share/man/man8/hdb-bridge.8.gz", "usr/share/man/man5/hdb-bridge.yaml.5.gz",
                "usr/share/doc/hdb-bridge/copyright", "usr/share/doc/hdb-bridge/changelog.Debian.gz",
                "usr/share/doc/hdb-bridge/configuration.md.gz", "usr/share/doc/hdb-bridge/operations.md.gz"]

    def test_cmake_install_layout(self) -> None:
        with tempfile.TemporaryDirectory(prefix="hdb-install-") as tmp:
            r = run(["cmake", "--install", str(debpkg.build_dir()), "--prefix", "/usr"],
                    env={**os.environ, "DESTDIR": tmp})
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            for path in self.EXPECTED:
                self.assertTrue((Path(tmp) / path).is_file(), path)


@unittest.skipUnless(shutil.which("lintian") and shutil.which("cpack"), "needs lintian and cpack (deps.sh)")
class Deb(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(prefix="hdb-deb-test-"))
        try:
            cls.deb = debpkg.build_deb(debpkg.build_dir(), cls.tmp / "out")
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_lintian_has_no_errors(self) -> None:
        r = run(["lintian", "--no-cfg", "--display-info", str(self.deb)], timeout=300)
        hdb.log(f"lintian {self.deb.name} (exit {r.returncode}):\n{r.stdout}{r.stderr}".rstrip())
        errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [])
        self.assertNotIn("E:", r.stderr)

    def test_control(self) -> None:
        self.assertEqual(debpkg.field(self.deb, "Package"), "hdb-bridge")
        self.assertRegex(debpkg.field(self.deb, "Version"), r"^\d+\.\d+\.\d+-\d+$")
        depends = debpkg.field(self.deb, "Depends")
        # From dpkg-shlibdeps, with versions: the libraries the binary links against.
        for lib in ("libwebsockets17", "libyaml-cpp0.7", "libsimdjson14", "libc6"):
            self.assertRegex(depends, rf"(^|, ){re.escape(lib)} \(>= [^)]+\)", depends)
        self.assertRegex(depends, r"(^|, )libspdlog1\.10", depends)
        self.assertEqual(debpkg.control_file(self.deb, "conffiles").split(), ["/etc/hdb-bridge/hdb-bridge.yaml"])
        postinst = debpkg.control_file(self.deb, "postinst")
        self.assertIn("systemd-sysusers hdb-bridge.conf", postinst)
        self.assertIn("systemd-tmpfiles --create hdb-bridge.conf", postinst)
        files = debpkg.contents(self.deb)
        for path in Install.EXPECTED:
            self.assertIn("/" + path, files)
        self.assertEqual(files["/usr/bin/hdb-bridge"][:10], "-rwxr-xr-x")

    def test_shipped_config_passes_check_config(self) -> None:
        root = self.tmp / "extracted"
        debpkg.extract(self.deb, root)
        creds = self.tmp / "creds"
        creds.mkdir(exist_ok=True)
        (creds / "password").write_text("secret\n")
        r = run([str(root / "usr/bin/hdb-bridge"), "--check-config", "--config", str(root / "etc/hdb-bridge/hdb-bridge.yaml")],
                env={"PATH": "/usr/bin:/bin", "CREDENTIALS_DIRECTORY": str(creds)}, timeout=10)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        self.assertEqual(r.stdout.strip(), f"{root / 'etc/hdb-bridge/hdb-bridge.yaml'}: OK")


if __name__ == "__main__":
    unittest.main()
