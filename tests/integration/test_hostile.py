#!/usr/bin/env python3
"""The real hdb-bridge against a hostile HarperDB 4 WebSocket server (tests/lib/hdb4_fake.py), beside a
healthy one: invalid JSON, valid JSON of the wrong shape, huge strings and numbers, deep nesting, invalid
UTF-8, binary frames, a message over max_message_bytes, a trickled frame, an upgrade that never completes
and a TLS handshake that stalls. After each: the bridge is alive, logged it (rate-limited), the healthy
table's Unix consumer kept receiving in order, and VmRSS is back near its baseline. Every bridge runs with
a distinctive password that must never show in its output or /proc/PID/cmdline. Needs HDB_BRIDGE_BIN.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from neighbour import HealthyNeighbour  # noqa: E402
from hdb4_fake import FakeHdb4Server, Hdb4Conn, change, frame_header, stream_changes  # noqa: E402

BIN = hdb.bridge_binary()
PASSWORD = "Hostile-S3cret-" + hdb.secret_token()
LIMIT = 1 << 20  # the hostile server's max_message_bytes: the "too big" case stays cheap under ASan
TEST_TIMEOUT = 240 * hdb.TIME_SCALE


class Hostile(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-hostile-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.stop_feed = threading.Event()
        self.addCleanup(self.stop_feed.set)

    def test_hostile_server_beside_a_healthy_one(self) -> None:
        scripts: list[Callable[[Hdb4Conn], None]] = []
        ready = threading.Event()

        def hostile(conn: Hdb4Conn) -> None:
            """Connection n plays scenario n, then waits for the test to move on."""
            ready.set()
            while not scripts and not conn.closed.is_set():
                time.sleep(0.05)
            if scripts:
                scripts.pop(0)(conn)

        healthy = FakeHdb4Server(lambda c: stream_changes(c, 1, 0.05, self.stop_feed))
        bad = FakeHdb4Server(hostile)
        stall_ws = FakeHdb4Server(upgrade=False)   # answers nothing after the request
        stall_tls = FakeHdb4Server(upgrade=False)  # takes the ClientHello, never answers it
        for s in (healthy, bad, stall_ws, stall_tls):
            self.addCleanup(s.close)
        sock, bad_sock = self.tmp / "good.sock", self.tmp / "bad.sock"

        def server(url: str, extra: str = "") -> str:
            return (f"{{protocol: harperdb4, url: '{url}', username: admin, password: '{PASSWORD}',"
                    f" tls: {{verify: false}}{extra}}}")

        config = "\n".join([
            "log: {level: info}",
            "servers:",
            f"  healthy: {server(healthy.url())}",
            f"  bad: {server(bad.url(), f', max_message_bytes: {LIMIT}, liveness_timeout: 4s')}",
            f"  stall_ws: {server(stall_ws.url())}",
            f"  stall_tls: {server(stall_tls.url('wss'))}",
            "tables:",
            "  - {server: healthy, database: dev, table: good}",
            "  - {server: bad, database: dev, table: bad}",
            "  - {server: stall_ws, database: dev, table: stall_ws}",
            "  - {server: stall_tls, database: dev, table: stall_tls}",
            "sinks:",
            f"  - {{name: good, type: unix, path: {sock}, tables: [dev.good]}}",
            f"  - {{name: bad, type: unix, path: {bad_sock}, tables: [dev.bad]}}",
        ]) + "\n"
        bridge = hdb.Bridge(BIN, config)
        self.addCleanup(bridge.cleanup)
        consumer = hdb.UnixConsumer(sock, 10)
        self.addCleanup(consumer.close)
        bad_consumer = hdb.UnixConsumer(bad_sock, 10)
        self.addCleanup(bad_consumer.close)
        consumer.wait_lines(lambda e: e.get("table") == "good", 20, 10)
        self.assertTrue(ready.wait(10 * hdb.TIME_SCALE), "the bridge connects to the hostile server")
        neighbour = HealthyNeighbour(self, bridge, consumer)

        def scenario(name: str, play: Callable[[Hdb4Conn], None], expect: str | None,
                     then_drop: bool = True) -> None:
            """Plays `play` on the hostile connection; `expect` must then appear in the log (None: the
            malformed-frame log is rate-limited to one line per 10 s, so this one may be held back and only
            counted; the counts are checked at the end)."""
            t0 = time.monotonic()
            mark = len(bridge.log())
            done = threading.Event()

            def run(conn: Hdb4Conn) -> None:
                play(conn)
                done.set()
                if then_drop:
                    time.sleep(0.3)
                    conn.drop()
            scripts.append(run)  # played by the open connection, or by the next one the bridge makes
            self.assertTrue(done.wait(60 * hdb.TIME_SCALE), f"{name}: the hostile script ran")
            if expect:
                hdb.wait_for(lambda: expect in bridge.log()[mark:], 15,
                             f"{expect!r} in the log after {name}:\n{bridge.log()[mark:][-3000:]}")
            rss = neighbour.after(name)
            results.append(f"{name}: {time.monotonic() - t0:.1f} s, VmRSS {rss} KiB")

        results: list[str] = []
        # Warm-up: one ordinary change through the hostile server, then the baseline.
        scenario("warm-up", lambda c: c.send_json(change(1)), "subscribed")
        time.sleep(1)
        neighbour.take_baseline()

        def invalid_json(c: Hdb4Conn) -> None:
            for text in ["{not json", "{\"id\":1,", "]", "", "nul", "{\"id\":1}{\"id\":2}", "\"unterminated"]:
                for _ in range(30):
                    c.send_text(text)
        scenario("invalid JSON", invalid_json, "dropped a malformed frame")
        malformed_lines = bridge.log().count("dropped a malformed frame")
        self.assertLessEqual(malformed_lines, 2, "210 bad frames in a burst are logged at most once or twice")

        def wrong_shape(c: Hdb4Conn) -> None:
            for value in [[1, 2], "text", 42, None, {}, {"type": "put"}, {"id": {}, "localTime": 1, "version": 1,
                          "type": "put", "value": {}}, {"id": 1, "localTime": "x", "version": 1, "type": "put",
                          "value": {}}, {"id": 1, "localTime": 1, "version": 1, "type": "teleport"},
                          {"id": 1, "localTime": 1, "version": 1, "type": "put", "value": [1]}]:
                c.send_json(value)
        scenario("wrong shape", wrong_shape, None)

        def huge(c: Hdb4Conn) -> None:
            big = "x" * (LIMIT - 1000)
            c.send_json({**change(10), "id": "huge-string", "value": {"s": big}})
            c.send_text('{"id":"huge-number","localTime":1' + "7" * 300000 + ',"version":1,"type":"put","value":{}}')
            c.send_text('{"id":"huge-exp","localTime":1e999999,"version":1,"type":"put","value":{}}')
            c.send_text('{"id":"big-int","localTime":1795693388999,"version":1,"type":"put","value":{"n":'
                        + "9" * 5000 + "}}")
        scenario("huge strings and numbers", huge, None)
        bad_consumer.wait_lines(lambda e: e.get("id") == "huge-string", 1, 10)  # big but allowed: delivered

        def deep(c: Hdb4Conn) -> None:
            c.send_text('{"id":"deep","localTime":1,"version":1,"type":"put","value":{"a":' + "[" * 100000
                        + "]" * 100000 + "}}")
            c.send_text('{"id":"deep2","localTime":1,"version":1,"type":"put","value":' + '{"a":' * 5000
                        + "1" + "}" * 5000 + "}")
        scenario("deep nesting", deep, None)

        def utf8(c: Hdb4Conn) -> None:
            c.send_text(b'{"id":"utf8","localTime":1795693389999,"version":1,"type":"put","value":{"n":"\xff\xfe\xc0"}}')
            c.send_text(b'{"id":"\xed\xa0\x80","localTime":1795693389999,"version":1,"type":"put","value":{}}')
        scenario("invalid UTF-8", utf8, None)

        def binary(c: Hdb4Conn) -> None:
            for i in range(50):
                c.send_frame(0x2, bytes(range(256)) * (i + 1))
        scenario("binary frames", binary, None)

        def oversized(c: Hdb4Conn) -> None:
            # A 100 MiB text frame, sent until the bridge resets the connection.
            c.send_raw(frame_header(0x1, 100 << 20))
            chunk = b"x" * 65536
            for _ in range(1600):
                if not c.send_raw(chunk):
                    break
            self.assertTrue(c.wait_closed(10 * hdb.TIME_SCALE), "the bridge resets a connection whose message is too big")
        scenario("100 MiB message over max_message_bytes", oversized, "max_message_bytes", then_drop=False)

        def trickle(c: Hdb4Conn) -> None:
            # One byte per second of a frame, answering no ping meanwhile (a server cannot put a
            # pong inside a frame): the bridge's liveness_timeout (4 s here) must end it.
            payload = json.dumps(change(99)).encode()
            data = frame_header(0x1, len(payload)) + payload
            for b in data:
                if c.closed.is_set() or not c.send_raw(bytes([b])):
                    break
                time.sleep(1)
        scenario("frame trickled at 1 byte/s", trickle, "liveness_timeout")

        def auth(c: Hdb4Conn) -> None:
            c.close(3000, "AccessViolation: Must login")
        scenario("refused credentials", auth, "authentication failed as user 'admin'")

        # The stalled servers ran all along: each connection attempt must have timed out and been retried.
        log = bridge.log()
        self.assertGreaterEqual(stall_ws.accepted, 2, "a stalled upgrade is given up and retried\n" + log[-2000:])
        self.assertGreaterEqual(stall_tls.accepted, 2, "a stalled TLS handshake is given up and retried")
        self.assertIn("dev.stall_ws on server 'stall_ws'", log)
        self.assertIn("dev.stall_tls on server 'stall_tls'", log)

        code = bridge.stop()  # checks /proc/PID/cmdline and the output for the password (hdb.Bridge)
        self.assertEqual(code, 0, bridge.log()[-3000:])
        log = bridge.log()
        [stats] = [line for line in log.splitlines() if "dev.bad on server 'bad':" in line and "messages," in line]
        malformed = int(stats.split("dropped: ")[1].split(" malformed")[0])
        self.assertIn("(1 over max_message_bytes)", stats)
        for name in ("stall_ws", "stall_tls"):
            counts = hdb.source_stats(log, f"dev.{name} on server '{name}'")
            self.assertEqual(counts["connects"], 0, counts)
            self.assertGreaterEqual(counts["timeouts"], 1, counts)  # a stalled upgrade or TLS handshake
        self.assertGreaterEqual(hdb.source_stats(log, "dev.bad on server 'bad'")["timeouts"], 1)  # the trickle
        # 210 invalid + 10 wrong shapes + 3 bad numbers + 2 deep + 2 UTF-8 + 50 binary + 1 too big, at least.
        self.assertGreaterEqual(malformed, 270, stats)
        logged = [x for x in log.splitlines() if "dev.bad" in x and "similar not logged" in x]
        self.assertLessEqual(len(logged), 1 + int((time.monotonic() - bridge.started) / 10),
                             "bad frames are logged at most once per 10 s, the rest only counted")
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        # The password went out only in the Authorization header: never in any output.
        self.assertNotIn(PASSWORD, log)
        self.assertFalse(any(PASSWORD in line for line in bridge.lines + consumer.lines + bad_consumer.lines))
        for s in (healthy, bad):
            self.assertEqual([repr(e) for e in s.errors], [])
        print("\n".join(["", *results, f"baseline VmRSS {neighbour.baseline} KiB (ASan: {neighbour.under_asan})"]),
              file=sys.stderr)
        print("\n".join(line for line in log.splitlines() if "messages," in line), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
