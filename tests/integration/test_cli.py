#!/usr/bin/env python3
"""hdb-bridge's command line: --version, --help, --check-config (exit 0 / 78 with FILE:LINE:COL lines)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
SOURCE = Path(os.environ.get("HDB_BRIDGE_SOURCE_DIR", hdb.REPO))
EX_CONFIG = 78

# Every error in this file; (lines it may be reported on, word that "key.path: reason" must contain).
BAD_CONFIG = """\
log: {level: loud}
servers:
  local:
    protocol: harperdb4
    url: ws://127.0.0.1:9926
    username: admin
    colour: blue
tables:
  - {server: local, database: dev, table: animals, snapshot: maybe}
  - {server: elsewhere, database: dev, table: plants}
sinks:
  - {name: a, type: unix, path: /tmp/hdb-cli-test.sock, tables: [dev.nope]}
  - {name: b, type: unix, path: /tmp/hdb-cli-test.sock}
"""
BAD_CONFIG_ERRORS = [((1,), "level"), ((7,), "colour"), ((9,), "snapshot"), ((10,), "elsewhere"),
                     ((12,), "dev.nope"), ((12, 13), "path")]
ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<key>[^:\s]+): (?P<reason>.+)$")


def run(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return hdb.run_bridge(list(args), binary=BIN, timeout=timeout)


class Cli(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if not os.access(BIN, os.X_OK):
            raise RuntimeError(f"hdb-bridge binary not found at {BIN} (set HDB_BRIDGE_BIN or build build/)")

    def setUp(self) -> None:
        tmp = tempfile.TemporaryDirectory(prefix="hdb-cli-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def write(self, text: str, name: str = "c.yaml") -> str:
        path = self.tmp / name
        path.write_text(text)
        return str(path)

    def test_version(self) -> None:
        r = run("--version")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^hdb-bridge \d+\.\d+\.\d+")

    def test_help(self) -> None:
        r = run("--help")
        self.assertEqual(r.returncode, 0, r.stderr)
        for word in ("Usage", "--config", "--check-config", "--version"):
            self.assertIn(word, r.stdout)

    def test_unknown_argument_fails_with_usage(self) -> None:
        r = run("--no-such-flag")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--no-such-flag", r.stderr)

    def test_check_config_accepts_the_demo_config(self) -> None:
        demo = SOURCE / "config" / "demo.yaml"
        r = run("--check-config", "--config", str(demo))
        self.assertEqual(r.returncode, 0, f"{demo}:\n{r.stdout}{r.stderr}")

    def test_check_config_reports_every_error_with_position(self) -> None:
        path = self.write(BAD_CONFIG)
        r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout + r.stderr)
        errors = [m for m in map(ERROR_LINE.match, r.stderr.splitlines()) if m]
        self.assertTrue(errors, f"no FILE:LINE:COL: key.path: reason lines in:\n{r.stderr}")
        for m in errors:
            self.assertEqual(m["file"], path)
        for lines, word in BAD_CONFIG_ERRORS:
            hits = [m for m in errors if int(m["line"]) in lines and word in m["key"] + ": " + m["reason"]]
            self.assertTrue(hits, f"no error on line {lines} about {word!r} in:\n{r.stderr}")
        self.assertTrue([m for m in errors if "password" in m["key"] + m["reason"]],
                        f"missing password not reported:\n{r.stderr}")

    def test_bad_config_stops_the_daemon_too(self) -> None:
        r = run("--config", self.write(BAD_CONFIG))
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)

    def test_password_never_in_errors(self) -> None:
        secret = "hunter2-do-not-print"
        path = self.write(BAD_CONFIG.replace("    username: admin\n",
                                             f"    username: admin\n    password: {secret}\n"))
        r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertNotIn(secret, r.stdout + r.stderr)

    def test_missing_file(self) -> None:
        path = str(self.tmp / "nope.yaml")
        r = run("--check-config", "--config", path)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        self.assertIn(path, r.stderr)


if __name__ == "__main__":
    unittest.main()
