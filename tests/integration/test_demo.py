#!/usr/bin/env python3
"""The README's first command, past its install and build steps: packaging/scripts/demo.py starts a fresh
HarperDB 4.7 on 127.0.0.1:9925/9926 with dev.animals, runs hdb-bridge on config/demo.yaml, inserts three
samples through the bridge's ingest socket. They must be answered ok and show on stdout, the Unix socket must be served, and --seconds ends it cleanly (exit 0). ~30 s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

DEMO = hdb.REPO / "packaging" / "scripts" / "demo.py"
SOCKET = "/run/hdb-bridge/animals.sock"


class Demo(unittest.TestCase):
    def test_samples_on_stdout_and_on_the_socket(self) -> None:
        proc = subprocess.Popen([sys.executable, str(DEMO), "--binary", hdb.bridge_binary(), "--seconds", "15"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        out, err = proc.communicate(timeout=150)
        self.assertEqual(proc.returncode, 0, err[-3000:])
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        self.assertEqual([e["id"] for e in lines], [1, 2, 3], out)
        self.assertEqual({e["table"] for e in lines}, {"animals"})
        self.assertIn(f"sink 'animals': listening on {SOCKET}", err)
        self.assertIn(f"socat - UNIX-CONNECT:{SOCKET}", err)
        answer = [line for line in err.splitlines() if "inserted the samples through" in line]
        self.assertEqual(len(answer), 1, err[-3000:])
        self.assertIn('"ref": "samples", "ok": true', answer[0])
        self.assertIn('"written": [1, 2, 3]', answer[0])
        self.assertIn("demo: HarperDB stopped", err)


if __name__ == "__main__":
    unittest.main()
