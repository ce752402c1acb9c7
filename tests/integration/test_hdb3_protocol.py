#!/usr/bin/env python3
"""The real hdb-bridge against a scripted SocketCluster server: what HarperDB 3 does rarely, on demand.

A real HarperDB 3.3 (test_hdb3_feed.py) cannot be told to go silent, to close with 4001 or 4005, to batch
packets or to send garbage. tests/lib/hdb3.py's FakeScServer can: it speaks TLS with its own self-signed
certificate (as HarperDB 3 does) on 127.0.0.1 and plays one script per connection. Needs HDB_BRIDGE_BIN.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from hdb3 import FakeConnection, FakeScServer, publish_packet as publish  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 60 * hdb.TIME_SCALE
PASSWORD = "fake-secret-8d2e"


def serve_forever(c: FakeConnection) -> None:
    """Keeps the connection open (answering nothing) until the client leaves."""
    while c.recv(30) is not None:
        pass


class Protocol(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb3-proto-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def server(self, *scripts: Callable[[FakeConnection], None]) -> FakeScServer:
        """A server whose n-th connection runs scripts[n] (the last one for every later connection)."""
        def script(c: FakeConnection) -> None:
            n = len(fake.connections) - 1
            scripts[min(n, len(scripts) - 1)](c)
        fake = FakeScServer(self.tmp, script)
        self.addCleanup(fake.close)
        return fake

    def bridge(self, fake: FakeScServer, tables: tuple[str, ...] = ("animals",), ready: bool = True,
               **extra: Any) -> hdb.Bridge:
        server = {"protocol": "harperdb3", "url": fake.url, "username": "u", "password": PASSWORD,
                  "tls": {"ca_file": str(fake.cert)}, **extra}
        text = "\n".join(["log: {level: debug}", "servers:", f"  fake: {json.dumps(server)}", "tables:",
                          *(f"  - {{server: fake, schema: dev, table: {t}}}" for t in tables),
                          "sinks:", "  - {name: out, type: stdout}"]) + "\n"
        bridge = hdb.Bridge(BIN, text)
        self.addCleanup(bridge.cleanup)
        if ready:
            bridge.wait_ready(10)
        return bridge

    def assertNoServerErrors(self, fake: FakeScServer) -> None:
        self.assertEqual([repr(e) for e in fake.errors], [], "the fake server's scripts ran as planned")

    def levels(self, log: str, level: str) -> list[str]:
        return [line for line in log.splitlines() if line.split(" ")[2:3] == [level]]

    def test_batches_heartbeats_and_malformed_packets(self) -> None:
        creds: dict[str, Any] = {}
        pong: list[Any] = []

        def script(c: FakeConnection) -> None:
            creds.update(c.login())
            self.assertEqual(sorted(c.accept_subscriptions(2)), ["dev:animals", "dev:dogs"])
            c.send("#1")
            pong.append(c.recv_packet())
            c.send([publish("animals", "insert", 10.5, [{"id": 1, "n": "a"}, {"id": "two", "n": "b"}]),
                    publish("dogs", "delete", 11.25, hash_values=[5])])
            c.send({"event": "#publish", "data": {"channel": "dev:animals", "data": {
                "type": "HDB_TRANSACTION", "id": "t", "transaction": {
                    "operation": "insert", "__origin": {"timestamp": "late"}, "records": []}}}})
            c.send("{not json")  # logged at most once per 10 s with the one above: held back
            c.send([{"rid": 99}, 42, {"event": "someday", "data": {}}])
            c.send(publish("animals", "upsert", 12, [{"id": 3, "n": "c"}]))
            serve_forever(c)

        fake = self.server(script)
        bridge = self.bridge(fake, ("animals", "dogs"))
        lines = bridge.wait_lines(lambda e: True, 4, 10)
        self.assertEqual([(e["table"], e["op"], e["id"]) for e in lines],
                         [("animals", "insert", 1), ("animals", "insert", "two"), ("dogs", "delete", 5),
                          ("animals", "upsert", 3)])
        self.assertEqual([e["cursor"] for e in lines], ["10.5", "10.5", "11.25", "12"])
        self.assertEqual(pong, ["#2"], "the client answers #1 with #2")
        self.assertEqual(creds, {"username": "u", "password": PASSWORD}, "the login ack carries the credentials")
        log = bridge.wait_log("dropped a transaction", 5)
        self.assertIn("__origin.timestamp", log)
        self.assertNotIn(PASSWORD, log)
        self.assertTrue(bridge.alive())
        self.assertEqual(len(fake.connections), 1, "bad input does not cost the connection")
        self.assertNoServerErrors(fake)

    def test_silence_past_the_ping_timeout_means_a_dead_connection(self) -> None:
        def silent(c: FakeConnection) -> None:
            c.login(ping_timeout=1500)  # the handshake ack tells the client how long silence may last
            c.accept_subscriptions(1)
            serve_forever(c)

        fake = self.server(silent)
        # The larger of the server's pingTimeout and liveness_timeout (default 30 s) applies.
        bridge = self.bridge(fake, liveness_timeout="2s")
        t0 = time.monotonic()
        log = bridge.wait_log("nothing received for", 6)
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.5, log)
        self.assertLess(elapsed, 5.0, log)
        hdb.wait_for(lambda: len(fake.connections) >= 2, 10, "a new connection after the timeout")
        bridge.wait_log("subscribed again", 10)
        self.assertNoServerErrors(fake)

    def test_every_close_code_is_reported_and_retried(self) -> None:
        def close_4001(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            c.send({"event": "#disconnect", "data": {"code": 4001, "data": "no pong"}})
            c.close(4001, "")

        def close_4005(c: FakeConnection) -> None:
            c.recv_packet()  # the handshake, answered too late
            c.send({"event": "#disconnect", "data": {"code": 4005}})
            c.close(4005)

        def crash(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            c.drop()

        def good(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            c.send(publish("animals", "insert", 99, [{"id": "after"}]))
            serve_forever(c)

        fake = self.server(close_4001, close_4005, crash, good)
        bridge = self.bridge(fake)
        [e] = bridge.wait_lines(lambda e: e.get("id") == "after", 1, 20)
        log = bridge.log()
        self.assertIn("close 4001 (the server heard nothing from us within its ping timeout): no pong", log)
        self.assertIn("close 4005 (the server got no #handshake in time)", log)
        self.assertIn("connection lost without a close frame (1006)", log)
        self.assertIn("subscribed again", log)
        self.assertEqual(self.levels(log, "error"), [], "drops are warnings, not errors")
        self.assertEqual(len(fake.connections), 4)
        gaps = [e for e in bridge.envelopes() if e.get("op") == "gap"]
        self.assertEqual([(g["reason"], g.get("cursor")) for g in gaps], [("no_resume", None)] * 2,
                         "each re-subscription after the first says changes may be missing")
        self.assertNoServerErrors(fake)

    def test_close_1000_before_the_token_is_a_refused_login(self) -> None:
        def refuse(c: FakeConnection) -> None:
            hs = c.recv_packet()
            c.send({"event": "login", "data": "send login credentials", "cid": 1})
            c.send({"rid": hs["cid"], "data": {"id": "x", "pingTimeout": 60000, "isAuthenticated": False}})
            c.recv_packet()  # the credentials
            c.send({"event": "#disconnect", "data": {"code": 1000}})
            c.close(1000)

        fake = self.server(refuse)
        bridge = self.bridge(fake, ready=False)
        bridge.wait_log("authentication failed", 5)
        time.sleep(3)
        [error] = self.levels(bridge.log(), "error")
        self.assertIn(f"server 'fake': authentication failed as user 'u' at {fake.url}", error)
        self.assertEqual(len(fake.connections), 1, "a refused login waits 5 s or more before the next try")
        self.assertFalse(bridge.notified("READY=1"))
        self.assertNoServerErrors(fake)

    def test_refused_subscription(self) -> None:
        def refuse(c: FakeConnection) -> None:
            c.login()
            p = c.recv_packet()
            c.send({"rid": p["cid"], "error": "not allowed here"})
            serve_forever(c)

        fake = self.server(refuse)
        bridge = self.bridge(fake, ready=False)
        log = bridge.wait_log("refused the subscription", 5)
        self.assertIn("refused the subscription to channel 'dev:animals': \"not allowed here\"", log)
        self.assertFalse(bridge.notified("READY=1"))
        self.assertNoServerErrors(fake)

    def test_a_host_name_is_resolved_off_the_loop(self) -> None:
        def good(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            c.send(publish("animals", "insert", 5, [{"id": "named"}]))
            serve_forever(c)

        fake = self.server(good)
        # The certificate names 127.0.0.1 only: a name needs verify: false (or a certificate for it).
        bridge = self.bridge(fake, url=fake.url.replace("127.0.0.1", "localhost"), tls={"verify": False})
        [e] = bridge.wait_lines(lambda e: e.get("id") == "named", 1, 10)
        self.assertEqual(e["op"], "insert")
        self.assertRegex(bridge.log(), r"connecting to wss://localhost:\d+/socketcluster/ \((127\.0\.0\.1|::1)\)")
        self.assertNoServerErrors(fake)

    def test_sigterm_says_goodbye_the_socketcluster_way(self) -> None:
        def stay(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            serve_forever(c)

        fake = self.server(stay)
        bridge = self.bridge(fake)
        self.assertEqual(bridge.stop(signal.SIGTERM, 2), 0, bridge.log())
        conn = fake.connections[0]
        hdb.wait_for(lambda: conn.closed, 5, "the connection to end")
        bye = [json.loads(m) for m in conn.received if m.startswith("{") and "#disconnect" in m]
        self.assertEqual(bye, [{"event": "#disconnect", "data": {"code": 1001, "data": "bridge stopping"}}])
        self.assertNoServerErrors(fake)


if __name__ == "__main__":
    unittest.main()
