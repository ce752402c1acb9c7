#!/usr/bin/env python3
"""The ingest socket (issue 8, docs/ingest.md) against a real HarperDB 4.7: every line answered in line order,
malformed lines and refused tables/ops answered with an error and never forwarded, over-long lines skipped,
a client leaving with commands in flight, backpressure on a client that never reads its answers, allow_uids,
each op landing in HarperDB (read back through the operations API) and coming back on the feed, and a burst of
10,000 commands from 4 clients all answered in order.

One HarperDB per module; each case starts its own hdb-bridge. Every process is tracked by PID and cleaned up;
a per-case watchdog bounds the run. Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import json
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 240 * hdb.TIME_SCALE
NOBODY = 65534
HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    HDB = hdb.start_module_harperdb("dev", ["ing", "ops", "ro", "burst0", "burst1", "burst2", "burst3"])


def tearDownModule() -> None:
    HDB.stop()


def cmd(op: str, table: str, items: list[Any], ref: Any = None, database: str = "dev") -> bytes:
    body: dict[str, Any] = {"op": op, "database": database, "table": table,
                            ("ids" if op == "delete" else "records"): items}
    if ref is not None:
        body["ref"] = ref
    return json.dumps(body).encode() + b"\n"


def ingest_stats(log_text: str, sink: str) -> dict[str, int]:
    """The counters of the ingest sink's exit log line."""
    m = re.search(rf"sink '{sink}': (\d+) commands: (\d+) ok, (\d+) failed, (\d+) malformed, (\d+) refused, "
                  rf"(\d+) dropped \(client gone\), (\d+) in flight; (\d+) bytes of answers written; clients: "
                  rf"(\d+) accepted, (\d+) rejected", log_text)
    if not m:
        raise AssertionError(f"no counters for sink {sink} in the log:\n{log_text[-3000:]}")
    keys = ["commands", "ok", "failed", "malformed", "refused", "dropped", "in_flight", "written", "accepted",
            "rejected"]
    return dict(zip(keys, map(int, m.groups())))


def search(table: str, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    rows = HDB.op({"operation": "search_by_hash", "database": "dev", "table": table, "hash_values": ids,
                   "get_attributes": ["*"]})
    return {r["id"]: r for r in rows}


class Client:
    """One connection to an ingest socket: writes command lines, reads answer lines."""

    def __init__(self, path: Path, timeout: float = 180) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout * hdb.TIME_SCALE)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answers(self, n: int, timeout: float = 20) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout * hdb.TIME_SCALE
        while len(out) < n:
            while b"\n" in self.buf and len(out) < n:
                line, self.buf = self.buf.split(b"\n", 1)
                out.append(json.loads(line))
            if len(out) >= n:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(out)} of {n} answers within {timeout} s; last {out[-3:]}")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    raise AssertionError(f"EOF after {len(out)} of {n} answers; last {out[-3:]}")
                self.buf += chunk
        return out

    def close(self) -> None:
        self.sock.close()


class IngestCase(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-ingest-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.tmp.chmod(0o755)  # the socket's own mode decides who gets in
        self.path = self.tmp / "in.sock"

    def start_bridge(self, ingest: dict[str, Any] | None = None, extra_sinks: list[dict[str, Any]] = (),
                     tables: list[dict[str, Any]] | None = None) -> hdb.Bridge:
        tables = tables or [{"database": "dev", "table": "ing", "writable": True},
                            {"database": "dev", "table": "ops", "writable": True},
                            {"database": "dev", "table": "ro"}]
        sinks = [{"name": "in", "type": "ingest", "path": str(self.path), **(ingest or {})}, *extra_sinks]
        text = hdb.bridge_config(HDB, tables, sinks)
        # Writes go to the operations API of this HarperDB (its port is not the default 9925).
        text = text.replace("tables:\n", f"    operations_url: {json.dumps(HDB.ops_url)}\ntables:\n", 1)
        bridge = hdb.Bridge(BIN, text)
        self.addCleanup(bridge.cleanup)
        bridge.wait_ready(15)
        return bridge

    def client(self) -> Client:
        c = Client(self.path)
        self.addCleanup(c.close)
        return c

    def stop(self, bridge: hdb.Bridge) -> dict[str, int]:
        self.assertEqual(bridge.stop(signal.SIGTERM, 5), 0, bridge.log()[-3000:])
        return ingest_stats(bridge.log(), "in")


class SocketSide(IngestCase):
    def test_bad_lines_and_refusals_are_answered_in_order_and_never_forwarded(self) -> None:
        narrow = self.tmp / "narrow.sock"
        bridge = self.start_bridge({"ops": ["insert", "upsert", "update"]},
                                   [{"name": "narrow", "type": "ingest", "path": str(narrow), "tables": ["dev.ing"]}])
        c = self.client()
        c.send(b"".join([
            b"this is not json\n",
            cmd("insert", "ing", [{"id": 1, "n": "first"}], ref="a"),
            b"\n",  # blank: no answer, but it is line 3
            cmd("insert", "nosuch", [{"id": 1}], ref=3),
            cmd("insert", "ro", [{"id": 1}], ref="ro"),
            cmd("delete", "ing", [1], ref="del"),
            b'{"op":"insert","database":"dev","table":"ing","records":[{"id":2},7],"ref":"bad"}\n',
            cmd("insert", "ing", [{"id": 3}]).rstrip(b"\n") + b" " + cmd("insert", "ing", [{"id": 3}]),
            cmd("insert", "ing", [{"id": 4, "n": "fourth"}], ref="b"),
        ]))
        got = c.answers(8)
        self.assertEqual([a["line"] for a in got], [1, 2, 4, 5, 6, 7, 8, 9])
        self.assertEqual([a["ok"] for a in got], [False, True, False, False, False, False, False, True])
        self.assertNotIn("ref", got[0])
        self.assertTrue(got[0]["error"].startswith("not valid JSON"), got[0])
        self.assertEqual(got[1], {"line": 2, "ref": "a", "ok": True, "op": "insert", "database": "dev",
                                  "table": "ing", "count": 1, "written": [1], **({"skipped": []} if "skipped" in
                                                                                  got[1] else {})})
        self.assertEqual(got[2], {"line": 4, "ref": 3, "ok": False, "error": "table dev.nosuch is not in the config"})
        self.assertEqual(got[3]["error"], "table dev.ro is not writable (writable: true on the table allows it)")
        self.assertEqual(got[4], {"line": 6, "ref": "del", "ok": False,
                                  "error": "this socket does not allow delete (not in the ops: of sink 'in')"})
        self.assertEqual(got[5], {"line": 7, "ref": "bad", "ok": False,
                                  "error": "records[1] is a number; each record must be an object"})
        self.assertEqual(got[6]["error"], "text follows the command's closing brace (one command per line)")
        self.assertEqual(got[7]["ref"], "b")
        # Only the two good inserts reached HarperDB.
        self.assertEqual(sorted(search("ing", [1, 2, 3, 4])), [1, 4])
        self.assertEqual(search("ro", [1]), {})
        # The sink's tables: limits what it may write even to a writable table.
        c2 = Client(narrow)
        self.addCleanup(c2.close)
        c2.send(cmd("upsert", "ing", [{"id": 5}]) + cmd("delete", "ops", [5]))
        a, b = c2.answers(2)
        self.assertTrue(a["ok"], a)
        self.assertEqual(b["error"], "this socket may not write to dev.ops (not in the tables: of sink 'narrow')")
        stats = self.stop(bridge)
        self.assertEqual((stats["commands"], stats["ok"], stats["malformed"], stats["refused"]), (8, 2, 3, 3), stats)

    def test_an_over_long_line_is_answered_and_skipped_without_being_kept(self) -> None:
        bridge = self.start_bridge({"max_line_bytes": "1KiB"})
        c = self.client()
        big = cmd("insert", "ing", [{"id": 20, "pad": "x" * 5000}], ref="big")
        c.send(big + cmd("insert", "ing", [{"id": 21}], ref="after"))
        # A long line in pieces, with no newline for a while: answered before its end arrives.
        c.send(b'{"op":"insert","database":"dev","table":"ing","records":[{"id":22,"pad":"' + b"y" * 3000)
        a = c.answers(3)
        self.assertEqual([x["line"] for x in a], [1, 2, 3])
        self.assertEqual(a[0], {"line": 1, "ok": False,
                                "error": "line is longer than max_line_bytes (1024 bytes); skipped to the next newline"})
        self.assertTrue(a[1]["ok"], a[1])
        self.assertFalse(a[2]["ok"])
        c.send(b"y" * 200_000 + b'"}]}\n' + cmd("insert", "ing", [{"id": 23}], ref="next"))
        nxt = c.answers(1)[0]
        self.assertEqual((nxt["line"], nxt["ref"], nxt["ok"]), (4, "next", True))
        self.assertEqual(sorted(search("ing", [20, 21, 22, 23])), [21, 23])
        self.assertEqual(self.stop(bridge)["malformed"], 2)

    def test_a_client_leaving_with_commands_in_flight_does_not_hurt_the_bridge(self) -> None:
        bridge = self.start_bridge({"max_in_flight": 8})
        for _ in range(3):
            c = Client(self.path)
            c.send(b"".join(cmd("insert", "ops", [{"id": 1000 + i}]) for i in range(40)))
            c.close()
        c = self.client()
        c.send(cmd("upsert", "ops", [{"id": 999}], ref="alive"))
        self.assertEqual(c.answers(1)[0]["ref"], "alive")
        hdb.wait_for(lambda: "disconnected" in bridge.log(), 5, "the clients' departure to be logged")
        stats = self.stop(bridge)
        self.assertEqual(stats["in_flight"], 0, stats)
        self.assertEqual(stats["commands"], stats["ok"] + stats["failed"] + stats["dropped"], stats)
        self.assertGreater(stats["dropped"], 0, stats)

    def test_a_client_that_never_reads_is_paused_not_buffered(self) -> None:
        bridge = self.start_bridge({"queue_bytes": "16KiB"})
        rss0 = bridge.vmrss_kib()
        stalled = socket.socket(socket.AF_UNIX)
        self.addCleanup(stalled.close)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(str(self.path))
        stalled.setblocking(False)
        line = cmd("insert", "ro", [{"id": 1, "pad": "p" * 100}], ref="r")  # refused at once: no HarperDB load
        sent, last_progress, t0 = 0, time.monotonic(), time.monotonic()
        while time.monotonic() - last_progress < 1.0 and time.monotonic() - t0 < 20:
            try:
                sent += stalled.send(line * 64)
                last_progress = time.monotonic()
            except BlockingIOError:
                time.sleep(0.02)
        self.assertLess(time.monotonic() - t0, 20, "the bridge kept reading a client that reads nothing")
        rss = bridge.vmrss_kib() - rss0
        # The bridge still serves others meanwhile.
        other = self.client()
        other.send(cmd("insert", "ing", [{"id": 30}], ref="other"))
        self.assertTrue(other.answers(1)[0]["ok"])
        # Reading now gets every answer, in order, for every whole line sent.
        lines = sent // len(line)
        stalled.setblocking(True)
        reader = Client.__new__(Client)
        reader.sock, reader.buf = stalled, b""
        got = reader.answers(lines, timeout=20)
        self.assertEqual([a["line"] for a in got], list(range(1, lines + 1)))
        self.assertTrue(all(a["ref"] == "r" and not a["ok"] for a in got))
        # What it holds for the client: a read chunk, a partial line, queue_bytes of answers (ASan keeps freed
        # memory in quarantine, so it gets more room).
        self.assertLess(rss, (64 if bridge.under_asan() else 8) * 1024, "RSS growth while paused")
        hdb.log(f"stalled client: {sent} bytes ({lines} commands) accepted before the pause; RSS +{rss} KiB")

    def test_a_reload_changing_tables_and_ops_keeps_the_client(self) -> None:
        bridge = self.start_bridge({"tables": ["dev.ing"], "ops": ["insert"]})
        c = self.client()
        c.send(cmd("upsert", "ops", [{"id": 50}], ref="before"))
        self.assertEqual(c.answers(1)[0]["error"], "this socket may not write to dev.ops (not in the tables: of sink 'in')")
        text = bridge.config.read_text()
        bridge.config.write_text(text.replace('"tables": ["dev.ing"], "ops": ["insert"]',
                                              '"tables": ["dev.ing", "dev.ops"], "ops": ["insert", "upsert"]'))
        bridge.proc.send_signal(signal.SIGHUP)
        bridge.wait_log("sinks refiltered: in")
        c.send(cmd("upsert", "ops", [{"id": 50}], ref="after"))
        a = c.answers(1)[0]
        self.assertEqual((a["line"], a["ref"], a["ok"]), (2, "after", True))
        self.assertEqual(self.stop(bridge)["accepted"], 1)

    def test_allow_uids_keeps_others_out(self) -> None:
        bridge = self.start_bridge({"mode": "0666", "allow_uids": ["root"]})
        code = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
                "s.settimeout(5)\nprint(repr(s.recv(100)))\n")
        p = subprocess.run(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                            "--pdeathsig", "KILL", "--", sys.executable, "-c", code, str(self.path)],
                           capture_output=True, text=True, timeout=10 * hdb.TIME_SCALE)
        self.assertEqual(p.stdout.strip(), "b''", p.stderr)  # closed at once, without a word
        c = self.client()
        c.send(cmd("insert", "ing", [{"id": 40}]))
        self.assertTrue(c.answers(1)[0]["ok"])
        self.assertEqual(self.stop(bridge)["rejected"], 1)


class Writes(IngestCase):
    def test_each_op_lands_and_comes_back_on_the_feed(self) -> None:
        feed = self.tmp / "feed.sock"
        bridge = self.start_bridge(extra_sinks=[{"name": "feed", "type": "unix", "path": str(feed),
                                                 "tables": ["dev.ops"]}])
        watcher = hdb.UnixConsumer(feed)
        self.addCleanup(watcher.close)
        c = self.client()
        c.send(b"".join([
            cmd("insert", "ops", [{"id": 1, "n": "one"}, {"id": 2, "n": "two"}], ref=1),
            cmd("insert", "ops", [{"id": 1, "n": "again"}], ref=2),
            cmd("update", "ops", [{"id": 2, "n": "TWO"}], ref=3),
            cmd("upsert", "ops", [{"id": 2, "n": "2"}, {"id": 3, "n": "three"}], ref=4),
            cmd("delete", "ops", [1], ref=5),
        ]))
        a = c.answers(5)
        self.assertEqual([x["ref"] for x in a], [1, 2, 3, 4, 5])
        self.assertTrue(all(x["ok"] for x in a), a)
        self.assertEqual((a[0]["op"], a[0]["count"], a[0]["written"]), ("insert", 2, [1, 2]))
        self.assertEqual(a[1].get("skipped"), [1], a[1])  # HarperDB left the existing record alone
        self.assertEqual((a[4]["op"], a[4]["written"]), ("delete", [1]))
        rows = search("ops", [1, 2, 3])
        self.assertEqual({k: v["n"] for k, v in rows.items()}, {2: "2", 3: "three"})
        changes = watcher.wait_lines(lambda e: e.get("op") in ("put", "delete"), 5, 10)
        self.assertEqual([(e["op"], e["id"]) for e in changes][-2:], [("put", 3), ("delete", 1)])
        self.assertEqual({(e["op"], e["id"]) for e in changes}, {("put", 1), ("put", 2), ("put", 3), ("delete", 1)})
        self.stop(bridge)

    def test_the_documented_socat_loop(self) -> None:
        """docs/ingest.md's data-entry one-liner, as written there (but for the socket's path)."""
        self.start_bridge()
        script = ("while read -r name; do\n"
                  "  printf '{\"op\":\"insert\",\"database\":\"dev\",\"table\":\"ing\",\"records\":"
                  "[{\"name\":\"%s\"}]}\\n' \"$name\"\n"
                  f"done | socat -t 30 - UNIX-CONNECT:{self.path}\n")
        p = subprocess.run(["sh", "-c", script], input="Harper\nBear\nOwl\n", capture_output=True, text=True,
                           timeout=30 * hdb.TIME_SCALE)
        answers = [json.loads(x) for x in p.stdout.splitlines()]
        self.assertEqual([(a["line"], a["ok"], a["count"]) for a in answers], [(1, True, 1), (2, True, 1), (3, True, 1)],
                         p.stderr)
        hdb.log(f"socat loop answers: {answers}")
        rows = HDB.op({"operation": "sql", "sql": "SELECT name FROM dev.ing WHERE name IN ('Harper', 'Bear', 'Owl')"})
        self.assertEqual(sorted(r["name"] for r in rows), ["Bear", "Harper", "Owl"])

    def test_a_burst_of_10000_commands_from_4_clients_is_answered_in_order(self) -> None:
        # One table per client: HarperDB 4's writer sends at most 4 requests per table at once.
        bridge = self.start_bridge({"max_in_flight": 8}, tables=[{"database": "dev", "table": f"burst{k}",
                                                                  "writable": True} for k in range(4)])
        per = 2500 if not hdb.VALGRIND else 250  # under valgrind the bridge is ~20 times slower
        clients = [self.client() for _ in range(4)]
        results: dict[int, list[dict[str, Any]]] = {}
        errors: list[BaseException] = []

        def run(k: int) -> None:
            try:
                c = clients[k]
                body = b"".join(cmd("insert", f"burst{k}", [{"id": i}], ref=f"{k}-{i}") for i in range(per))
                sender = threading.Thread(target=c.send, args=(body,), daemon=True)
                sender.start()
                results[k] = c.answers(per, timeout=180)
                sender.join(5)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(200 * hdb.TIME_SCALE)
        elapsed = time.monotonic() - t0
        self.assertEqual(errors, [])
        for k in range(4):
            got = results[k]
            self.assertEqual([a["line"] for a in got], list(range(1, per + 1)))
            self.assertEqual([a["ref"] for a in got], [f"{k}-{i}" for i in range(per)])
            bad = [a for a in got if not a["ok"]]
            self.assertEqual(bad, [], bad[:3])
        for k in range(4):
            count = HDB.op({"operation": "sql", "sql": f"SELECT COUNT(*) AS n FROM dev.burst{k}"})[0]["n"]
            self.assertEqual(count, per)
        hdb.log(f"burst: {4 * per} commands from 4 clients answered in {elapsed:.1f} s "
                f"({4 * per / elapsed:.0f}/s)")
        stats = self.stop(bridge)
        self.assertEqual((stats["commands"], stats["ok"]), (4 * per, 4 * per))


if __name__ == "__main__":
    unittest.main()
