#!/usr/bin/env python3
"""The real hdb-bridge against a hostile SocketCluster (HarperDB 3 clustering) server, beside a healthy one:
invalid JSON, packets and transactions of the wrong shape, a publish on a channel nobody subscribed to,
handshake answers of the wrong type, huge strings and numbers, deep nesting, invalid UTF-8, binary frames,
a message over max_message_bytes, a frame trickled at 1 byte/s, an upgrade that never completes and a TLS
handshake that stalls. The servers are tests/lib/hdb3.py's FakeScServer (TLS, real sockets on 127.0.0.1).

After each case: the bridge is alive; the hostile server's other table still gets its records over the same
connection (or the next one, for the cases that must cost the connection); the healthy server's consumer
kept receiving in order; VmRSS is back near its baseline. At the end each kind of bad input shows in the
source's counters, was logged at most once per 10 s, and the password showed nowhere. Needs HDB_BRIDGE_BIN.
"""

from __future__ import annotations

import faulthandler
import json
import queue
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from neighbour import HealthyNeighbour  # noqa: E402
from hdb3 import FakeConnection, FakeScServer, publish_packet  # noqa: E402
from ws_fake import FakeWsServer, frame_header  # noqa: E402

BIN = hdb.bridge_binary()
PASSWORD = "Hostile3-S3cret-" + hdb.secret_token()
LIMIT = 1 << 20   # the hostile server's max_message_bytes
PING_MS = 3000    # the hostile server's pingTimeout: a trickled frame is dead after ~3 s
TEST_TIMEOUT = 300 * hdb.TIME_SCALE


def raw_publish(table: str, transaction_json: str) -> str:
    """A #publish whose transaction is given as JSON text (for what json.dumps cannot write)."""
    return ('{"event":"#publish","data":{"channel":"dev:' + table + '","data":{"id":"t","type":"HDB_TRANSACTION",'
            '"transaction":' + transaction_json + ',"__transacted":true}}}')


def txn_json(table: str, records: str, timestamp: str = "1795693388999") -> str:
    return ('{"operation":"insert","schema":"dev","table":"' + table + '","__origin":{"timestamp":' + timestamp
            + ',"user":"u","node_name":"fake"},"records":' + records + '}')


class HostileSc:
    """The hostile server's script: every connection logs in (its own way when a login is queued for it),
    then plays the cases the test queues, one after the other, and pings (#1) while it waits."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.logins: list[Callable[[FakeConnection], None]] = []
        self.plays: queue.Queue[Callable[[FakeConnection], None]] = queue.Queue()
        self.subscribed = threading.Event()

    def __call__(self, c: FakeConnection) -> None:
        first = not self.subscribed.is_set()
        (self.logins.pop(0) if self.logins else self.login)(c)
        if not first:
            # Both tables had lines on the first connection: every later one resumes them with catchup.
            c.answer_catchups(2)
        self.subscribed.set()
        while not c.closed and not self.stop.is_set():
            try:
                play = self.plays.get(timeout=0.5)
            except queue.Empty:
                c.send("#1")
                continue
            play(c)

    @staticmethod
    def login(c: FakeConnection) -> None:
        c.login(ping_timeout=PING_MS)
        c.accept_subscriptions(2)


class HostileHdb3(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb3-hostile-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.stop_feed = threading.Event()
        self.addCleanup(self.stop_feed.set)

    def server_dir(self, name: str) -> Path:
        d = self.tmp / name
        d.mkdir()
        return d

    def test_hostile_socketcluster_server_beside_a_healthy_one(self) -> None:
        def healthy_feed(c: FakeConnection) -> None:
            c.login()
            c.accept_subscriptions(1)
            n = 1
            while not c.closed and not self.stop_feed.is_set():
                c.send(publish_packet("good", "insert", time.time() * 1000, [{"id": n}]))
                n += 1
                self.stop_feed.wait(0.05)

        hostile = HostileSc(self.stop_feed)
        healthy = FakeScServer(self.server_dir("healthy"), healthy_feed)
        bad = FakeScServer(self.server_dir("bad"), hostile)
        stall_up = FakeScServer(self.server_dir("stall_up"), stall=True)  # TLS done, the upgrade never answered
        stall_tls = FakeWsServer(stall=True)  # takes the ClientHello, never answers it
        for s in (healthy, bad, stall_up, stall_tls):
            self.addCleanup(s.close)
        sock, bad_sock = self.tmp / "good.sock", self.tmp / "bad.sock"

        def server(url: str, cert: Path, **extra: Any) -> str:
            return json.dumps({"protocol": "harperdb3", "url": url, "username": "u", "password": PASSWORD,
                               "tls": {"ca_file": str(cert)}, **extra})

        config = "\n".join([
            "log: {level: info}",
            "servers:",
            f"  healthy: {server(healthy.url, healthy.cert)}",
            f"  bad: {server(bad.url, bad.cert, max_message_bytes=LIMIT, liveness_timeout='2s')}",
            f"  stall_up: {server(stall_up.url, stall_up.cert)}",
            f"  stall_tls: {server(stall_tls.url('wss'), healthy.cert)}",
            "tables:",
            "  - {server: healthy, schema: dev, table: good}",
            "  - {server: bad, schema: dev, table: bad}",
            "  - {server: bad, schema: dev, table: other}",
            "  - {server: stall_up, schema: dev, table: stall_up}",
            "  - {server: stall_tls, schema: dev, table: stall_tls}",
            "sinks:",
            f"  - {{name: good, type: unix, path: {sock}, tables: [dev.good]}}",
            f"  - {{name: bad, type: unix, path: {bad_sock}, tables: [dev.bad, dev.other]}}",
        ]) + "\n"
        bridge = hdb.Bridge(BIN, config)
        self.addCleanup(bridge.cleanup)
        consumer = hdb.UnixConsumer(sock, 10)
        self.addCleanup(consumer.close)
        bad_consumer = hdb.UnixConsumer(bad_sock, 10)
        self.addCleanup(bad_consumer.close)
        consumer.wait_lines(lambda e: e.get("table") == "good", 20, 15)
        self.assertTrue(hostile.subscribed.wait(15 * hdb.TIME_SCALE), "the bridge logs in to the hostile server")
        neighbour = HealthyNeighbour(self, bridge, consumer)

        def probe(name: str) -> None:
            """A record on the hostile server's other table must still come through."""
            key = f"probe {name}"
            hostile.plays.put(lambda c: c.send(publish_packet("other", "insert", time.time() * 1000, [{"id": key}])))
            bad_consumer.wait_lines(lambda e: e.get("id") == key, 1, 15)

        results: list[str] = []

        def scenario(name: str, play: Callable[[FakeConnection], None], expect: str | None = None,
                     resets: bool = False) -> None:
            """Plays `play` on the hostile connection. `expect` must then show in the log (None: the
            malformed-packet log allows one line per 10 s, so this one may be held back and only counted).
            resets: the case must cost the connection; the next one logs in again."""
            t0 = time.monotonic()
            mark = len(bridge.log())
            connections = len(bad.connections)
            done = threading.Event()
            conn: list[FakeConnection] = []

            def run(c: FakeConnection) -> None:
                conn.append(c)
                play(c)
                done.set()
            hostile.plays.put(run)
            self.assertTrue(done.wait(60 * hdb.TIME_SCALE), f"{name}: the hostile script ran")
            if expect:
                hdb.wait_for(lambda: expect in bridge.log()[mark:], 15,
                             f"{expect!r} in the log after {name}:\n{bridge.log()[mark:][-3000:]}")
            if resets:
                hdb.wait_for(lambda: conn[0].closed, 15, f"the connection to end after {name}")
                hdb.wait_for(lambda: "subscribed again" in bridge.log()[mark:], 30,
                             f"a new subscription after {name}:\n{bridge.log()[mark:][-3000:]}")
                self.assertGreater(len(bad.connections), connections)
            probe(name)
            if not resets:
                self.assertEqual(len(bad.connections), connections, f"{name} did not cost the connection")
            rss = neighbour.after(name)
            results.append(f"{name}: {time.monotonic() - t0:.1f} s, VmRSS {rss} KiB")

        scenario("warm-up", lambda c: c.send(publish_packet("bad", "insert", 1, [{"id": "warm"}])))
        time.sleep(1)
        neighbour.take_baseline()

        def invalid_json(c: FakeConnection) -> None:
            for text in ["{not json", '{"event":"#publish",', "]", "", "nul", '{"rid":1}{"rid":2}', '"unterminated',
                         "[1,", "#", "#3x"]:
                for _ in range(20):
                    c.send(text)
        scenario("invalid JSON", invalid_json, "malformed packet")
        self.assertLessEqual(bridge.log().count("malformed packet"), 2, "200 bad messages are logged once or twice")

        wrong_shapes: list[Any] = [
            [1, "two", None], {}, [], 42, None, True, {"event": 5}, {"event": "#publish"},
            {"event": "#publish", "data": "dev:bad"}, {"event": "#publish", "data": {"channel": 7, "data": {}}},
            {"event": "#publish", "data": {"channel": "dev:bad", "data": [1]}},
            {"event": "#publish", "data": {"channel": "dev:bad", "data": {"type": "HDB_TRANSACTION"}}},
            {"event": "#disconnect", "data": "soon"}, {"event": "#disconnect", "data": {"code": "x"}},
            {"event": "login", "data": "send login credentials"}, {"rid": "one"}, {"cid": -1, "event": 3},
        ]
        bad_txns = [
            {"operation": "insert", "schema": "dev", "table": "bad", "records": [{"id": 1}]},  # no __origin
            {"operation": "insert", "schema": "dev", "table": "bad", "__origin": {"timestamp": 1}},  # no records
            {"operation": "insert", "schema": "dev", "table": "bad", "__origin": {"timestamp": 1}, "records": {}},
            {"operation": "insert", "schema": "dev", "table": "bad", "__origin": {"timestamp": 1}, "records": [7]},
            {"operation": "insert", "schema": "dev", "table": "bad", "__origin": {"timestamp": 1},
             "records": [{"name": "no primary key"}]},
            {"operation": "delete", "schema": "dev", "table": "bad", "__origin": {"timestamp": 1}, "hash_values": "x"},
            {"operation": 9, "schema": "dev", "table": "bad", "__origin": {"timestamp": 1}, "records": [{"id": 2}]},
            {"operation": "insert", "schema": "dev", "table": "bad", "__origin": [], "records": [{"id": 3}]},
        ]

        def wrong_shape(c: FakeConnection) -> None:
            for value in wrong_shapes:
                c.send(value)
            for txn in bad_txns:
                c.send({"event": "#publish", "data": {"channel": "dev:bad", "data": {
                    "id": "t", "type": "HDB_TRANSACTION", "transaction": txn, "__transacted": True}}})
        scenario("wrong shapes", wrong_shape)

        def unknown_channel(c: FakeConnection) -> None:
            for table in ("nope", "stall_up", "bad:x"):
                c.send(publish_packet(table, "insert", 5, [{"id": "lost"}]))
            c.send({"rid": 4242})  # an ack for nothing we asked
            c.send({"event": "surprise", "data": {}})  # an event we do not know
        scenario("publish to an unknown channel", unknown_channel)

        def bad_handshake(c: FakeConnection) -> None:
            hs = c.recv_packet()
            c.send({"rid": hs["cid"], "data": "not an object"})  # handshake answers of the wrong type
            c.send({"rid": hs["cid"], "data": {"id": 5, "pingTimeout": "soon", "isAuthenticated": "no"}})
            c.send({"rid": hs["cid"], "data": {"id": "fake", "pingTimeout": PING_MS, "isAuthenticated": False}})
            c.send({"event": "login", "data": "send login credentials", "cid": 1})
            ack = c.recv_packet()
            assert ack.get("rid") == 1, ack
            c.send({"event": "#setAuthToken", "data": 17})
            c.accept_subscriptions(2)
        hostile.logins.append(bad_handshake)
        scenario("handshake answers of the wrong type", lambda c: c.drop(), resets=True)

        def huge(c: FakeConnection) -> None:
            # Real timestamps: after a reconnect, a transaction older than the catch-up is a duplicate.
            c.send(publish_packet("bad", "insert", time.time() * 1000,
                                  [{"id": "huge-string", "s": "x" * (LIMIT - 2000)}]))
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"huge-ts"}]', "1" + "7" * 300000)))
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"huge-exp"}]', "1e999999")))
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"big-int","n":' + "9" * 5000 + "}]")))
        scenario("huge strings and numbers", huge)
        bad_consumer.wait_lines(lambda e: e.get("id") == "huge-string", 1, 10)  # big but allowed: delivered

        def deep(c: FakeConnection) -> None:
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"deep","a":' + "[" * 100000 + "]" * 100000 + "}]")))
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"deep2","a":' + '{"a":' * 5000 + "1" + "}" * 5000
                                               + "}]")))
            c.send("[" * 200000 + "]" * 200000)
        scenario("deep nesting", deep)

        def utf8(c: FakeConnection) -> None:
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"utf8","n":"\xff\xfe"}]')).encode("latin-1"))
            c.send(raw_publish("bad", txn_json("bad", '[{"id":"surrogate","n":"\xed\xa0\x80"}]')).encode("latin-1"))
            c.send(b'{"event":"#publish","data":{"channel":"dev:\xc0\xaf","data":{}}}')
        scenario("invalid UTF-8", utf8)

        def binary(c: FakeConnection) -> None:
            for i in range(50):
                c.send_frame(0x2, bytes(range(256)) * (i + 1))
        scenario("binary frames", binary)

        def oversized(c: FakeConnection) -> None:
            c.send_raw(frame_header(0x1, 100 << 20))  # a 100 MiB message, sent until the bridge resets
            chunk = b"x" * 65536
            for _ in range(1600):
                if not c.send_raw(chunk):
                    break
        scenario("100 MiB message over max_message_bytes", oversized, "max_message_bytes", resets=True)

        def trickle(c: FakeConnection) -> None:
            # One byte per second of a frame and no #1 meanwhile (a ping cannot go inside a frame): after
            # the server's pingTimeout (3 s) the bridge must take the connection for dead.
            data = json.dumps(publish_packet("bad", "insert", time.time() * 1000, [{"id": "trickled"}])).encode()
            for b in frame_header(0x1, len(data)) + data:
                if c.closed or not c.send_raw(bytes([b])):
                    break
                time.sleep(1)
        scenario("frame trickled at 1 byte/s", trickle, "nothing received for", resets=True)

        # The stalled servers ran all along: each attempt must have been given up and retried.
        log = bridge.log()
        self.assertGreaterEqual(stall_up.accepted, 2, "a stalled upgrade is given up and retried\n" + log[-2000:])
        self.assertGreaterEqual(stall_tls.accepted, 2, "a stalled TLS handshake is given up and retried")
        self.assertIn("server 'stall_up':", log)
        self.assertIn("server 'stall_tls':", log)

        code = bridge.stop(timeout=10)
        self.assertEqual(code, 0, bridge.log()[-3000:])
        log = bridge.log()
        stats = {name: hdb.source_stats(log, f"server '{name}'") for name in ("bad", "healthy", "stall_up", "stall_tls")}
        bad_stats = stats["bad"]
        self.assertEqual(bad_stats["oversized"], 1, bad_stats)
        # 200 invalid + 17 + 8 wrong shapes + 2 bad handshake acks + 3 numbers + 3 deep + 3 UTF-8 + 50 binary
        # + 1 too big, at least.
        self.assertGreaterEqual(bad_stats["malformed"], 280, bad_stats)
        self.assertGreaterEqual(bad_stats["ignored"], 5, bad_stats)  # 3 channels, an ack, an event
        self.assertGreaterEqual(bad_stats["timeouts"], 1, bad_stats)  # the trickled frame
        self.assertGreaterEqual(bad_stats["connects"], 4, bad_stats)
        for name in ("stall_up", "stall_tls"):
            self.assertGreaterEqual(stats[name]["timeouts"], 1, stats[name])
            self.assertEqual(stats[name]["connects"], 0, stats[name])
        self.assertEqual((stats["healthy"]["malformed"], stats["healthy"]["drops"]), (0, 0), stats["healthy"])
        logged = [x for x in log.splitlines() if "server 'bad'" in x and "similar not logged" in x]
        self.assertLessEqual(len(logged), 1 + int((time.monotonic() - bridge.started) / 10),
                             "bad packets are logged at most once per 10 s, the rest only counted")
        self.assertNotIn("ERROR: AddressSanitizer", log)
        self.assertNotIn("runtime error:", log)
        self.assertNotIn(PASSWORD, log)
        self.assertFalse(any(PASSWORD in line for line in bridge.lines + consumer.lines + bad_consumer.lines))
        for s in (healthy, bad):
            self.assertEqual([repr(e) for e in s.errors], [])
        print("\n".join(["", *results, f"baseline VmRSS {neighbour.baseline} KiB (ASan: {neighbour.under_asan})"]),
              file=sys.stderr)
        print("\n".join(line for line in log.splitlines() if "messages," in line), file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
