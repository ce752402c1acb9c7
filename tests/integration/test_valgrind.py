#!/usr/bin/env python3
"""The real hdb-bridge under `valgrind --leak-check=full`: a short run of the core path (subscribe, frames to
a Unix consumer, malformed and oversized frames, a reconnect, SIGTERM) against tests/lib/hdb4_fake.py, with
no memory error and no leak reported. Needs HDB_BRIDGE_BIN (a build without sanitizers) and valgrind;
skipped without valgrind. About 30-60 s.
"""

from __future__ import annotations

import faulthandler
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from hdb4_fake import FakeHdb4Server, Hdb4Conn, change, frame_header, stream_changes  # noqa: E402

BIN = hdb.bridge_binary()
VALGRIND = shutil.which("valgrind")


@unittest.skipUnless(VALGRIND, "valgrind is not installed")
class Valgrind(unittest.TestCase):
    def test_core_path_has_no_leaks_or_errors(self) -> None:
        faulthandler.dump_traceback_later(170, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        if "libasan" in Path(BIN).read_bytes()[:1 << 20].decode("latin-1") or "asan" in BIN:
            self.skipTest("valgrind cannot run an ASan build")
        tmp = Path(tempfile.mkdtemp(prefix="hdb-valgrind-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        stop = threading.Event()
        self.addCleanup(stop.set)
        vlog = tmp / "valgrind.log"
        wrapper = tmp / "hdb-bridge"
        wrapper.write_text(f"#!/bin/sh\nexec {VALGRIND} --leak-check=full --show-leak-kinds=definite,indirect,possible "
                           f"--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 "
                           f"--log-file={vlog} {BIN} \"$@\"\n")
        wrapper.chmod(0o755)

        def bad_then_good(c: Hdb4Conn) -> None:
            if len(server.connections) == 1:
                c.send_text("{not json")
                c.send_frame(0x2, b"\x00\x01")
                c.send_raw(frame_header(0x1, 10 << 20))  # over max_message_bytes: reset
                c.send_raw(b"x" * 2_000_000)
                c.wait_closed(20)
                return
            stream_changes(c, 1, 0.05, stop, table="animals")

        server = FakeHdb4Server(bad_then_good)
        self.addCleanup(server.close)
        sock = tmp / "animals.sock"
        config = (f"servers:\n  fake: {{protocol: harperdb4, url: '{server.url()}', username: u, password: p,"
                  f" max_message_bytes: 1MiB}}\n"
                  "tables: [{server: fake, database: dev, table: animals}]\n"
                  f"sinks: [{{name: s, type: unix, path: {sock}}}]\n")
        bridge = hdb.Bridge(str(wrapper), config)
        self.addCleanup(bridge.cleanup)
        consumer = hdb.UnixConsumer(sock, 60)
        self.addCleanup(consumer.close)
        consumer.wait_lines(lambda e: e.get("op") == "put", 20, 90)
        self.assertGreaterEqual(len(server.connections), 2, "the oversized message reset the connection")
        code = bridge.stop(timeout=60)
        report = vlog.read_text(errors="replace")
        summary = "\n".join(line for line in report.splitlines() if re.search(r"ERROR SUMMARY|lost:|in use at exit", line))
        print(f"\n{summary}", file=sys.stderr)
        self.assertEqual(code, 0, report[-4000:])
        self.assertIn("ERROR SUMMARY: 0 errors", report, report[-4000:])
        self.assertNotRegex(report, r"(definitely|indirectly|possibly) lost: [1-9]")


if __name__ == "__main__":
    unittest.main()
