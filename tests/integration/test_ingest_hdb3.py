#!/usr/bin/env python3
"""Writing to a real HarperDB 3.3 through an ingest socket (issue 8; docs/harperdb3.md, "Writing").

Each command becomes a `#publish` on the clustering connection and is answered once HarperDB publishes the
transaction back: each operation lands (read back through the operations API), comes back on the feed, errors
are answered per line, 10,000 commands from 4 clients are answered in order, and writes pending when the server
goes away are answered at once. One HarperDB 3.3 per module (hdb3.py's host lock); the bridge connects from
127.0.0.2 so HarperDB's authentication is real. Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import json
import shutil
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
import hdb3  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 180 * hdb.TIME_SCALE
HDB: hdb3.HarperDB3
SOCKETS: Path  # the ingest sockets
BRIDGE: hdb.Bridge
WRITE_TIMEOUT = 10  # the server's write_timeout below (also the default)
NOT_CONFIRMED = "not confirmed within 10 s (write_timeout); HarperDB 3 may or may not have applied it"


def setUpModule() -> None:
    global HDB, BRIDGE, SOCKETS
    HDB = hdb3.start_module_harperdb3("dev", ["animals", "readonly"], keyed={"keyed": "animal_id"})
    SOCKETS = Path(tempfile.mkdtemp(prefix="ingest-hdb3-"))
    try:
        server = {"protocol": "harperdb3", "url": HDB.cluster_url, "username": HDB.cluster_user,
                  "password": HDB.cluster_password, "tls": {"ca_file": str(HDB.certificate)},
                  "bind_address": "127.0.0.2", "write_timeout": f"{WRITE_TIMEOUT}s"}
        tables = [{"table": "animals", "writable": True},
                  {"table": "keyed", "primary_key": "animal_id", "writable": True},
                  {"table": "readonly"}]
        text = "\n".join([
            "log: {level: info}", "servers:", f"  legacy: {json.dumps(server)}", "tables:",
            *(f"  - {json.dumps({'server': 'legacy', 'schema': 'dev', **t})}" for t in tables),
            "sinks:", "  - {name: out, type: stdout}",
            f"  - {{name: in, type: ingest, path: {SOCKETS / 'in.sock'}}}",
            f"  - {{name: burst, type: ingest, path: {SOCKETS / 'burst.sock'}, max_in_flight: 32}}"]) + "\n"
        BRIDGE = hdb.Bridge(BIN, text)
        BRIDGE.wait_ready(30)
    except BaseException:
        print(HDB.describe_failure(), file=sys.stderr)
        HDB.stop()
        shutil.rmtree(SOCKETS, ignore_errors=True)
        raise


def tearDownModule() -> None:
    try:
        BRIDGE.cleanup()
    finally:
        HDB.stop()
        shutil.rmtree(SOCKETS, ignore_errors=True)


class IngestClient(hdb.UnixConsumer):
    """A program writing command lines to an ingest socket and collecting the answers."""

    def __init__(self, name: str) -> None:
        super().__init__(SOCKETS / name)

    def send(self, *commands: Any) -> None:
        data = "".join((c if isinstance(c, str) else json.dumps(c)) + "\n" for c in commands)
        self.sock.sendall(data.encode())

    def answers(self, n: int, timeout: float) -> list[dict[str, Any]]:
        return self.wait_lines(lambda a: True, n, timeout)


def cmd(op: str, items: list[Any], table: str = "animals", **extra: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"op": op, "database": "dev", "table": table, **extra}
    c["ids" if op == "delete" else "records"] = items
    return c


def read_back(table: str, ids: list[Any]) -> dict[Any, dict[str, Any]]:
    key = "animal_id" if table == "keyed" else "id"
    found = HDB.op({"operation": "search_by_hash", "schema": "dev", "table": table, "hash_values": ids,
                    "get_attributes": ["*"]})
    return {r[key]: r for r in found}


class IngestHdb3(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)

    def client(self, name: str = "in.sock") -> IngestClient:
        c = IngestClient(name)
        self.addCleanup(c.sock.close)
        return c

    def test_1_each_op_lands_and_comes_back_on_the_feed(self) -> None:
        c = self.client()
        m = BRIDGE.mark()
        c.send(cmd("insert", [{"id": "w1", "name": "harper", "n": 1}, {"id": "w2", "name": "penny"}], ref="a"),
               cmd("update", [{"id": "w1", "n": 2}], ref=2),
               cmd("upsert", [{"id": "w2", "name": "penny2"}, {"id": "w3", "name": "new"}]),
               cmd("delete", ["w3"]),
               {"op": "insert", "schema": "dev", "table": "keyed", "records": [{"animal_id": 5, "x": 1}]},
               cmd("insert", [{"name": "nokey"}]))
        answers = c.answers(6, 20)
        for i, a in enumerate(answers, 1):
            self.assertEqual(a.get("line"), i, a)
            self.assertIs(a.get("ok"), True, a)
            self.assertIsInstance(a.get("confirmed_at"), float, a)
            self.assertRegex(a.get("txn", ""), r"^[0-9a-f-]{36}$", a)
        self.assertEqual(answers[0]["ref"], "a")
        self.assertEqual(answers[1]["ref"], 2)
        self.assertNotIn("ref", answers[2])
        self.assertEqual([a["op"] for a in answers], ["insert", "update", "upsert", "delete", "insert", "insert"])
        self.assertEqual([a.get("count") for a in answers], [2, 1, 2, 1, 1, 1])
        self.assertEqual([a["written"] for a in answers[:5]], [["w1", "w2"], ["w1"], ["w2", "w3"], ["w3"], [5]])
        self.assertEqual(answers[4]["table"], "keyed")
        [made_up] = answers[5]["written"]  # HarperDB 3 gave the keyless record an id
        self.assertRegex(made_up, r"^[0-9a-f-]{36}$")
        self.assertEqual([a["skipped"] for a in answers], [[]] * 6)

        # Read back through the operations API.
        rows = read_back("animals", ["w1", "w2", "w3", made_up])
        self.assertEqual(rows["w1"]["n"], 2)
        self.assertEqual(rows["w1"]["name"], "harper")
        self.assertEqual(rows["w2"]["name"], "penny2")
        self.assertNotIn("w3", rows)
        self.assertEqual(rows[made_up]["name"], "nokey")
        self.assertEqual(read_back("keyed", [5])[5]["x"], 1)

        # Each write came back on the feed, its cursor the answer's confirmed_at.
        lines = BRIDGE.wait_lines(lambda e: e.get("table") in ("animals", "keyed"), 8, 10, since=m)
        got = [(e["op"], e["id"], float(e["cursor"])) for e in lines]
        want = [("insert", "w1", answers[0]["confirmed_at"]), ("insert", "w2", answers[0]["confirmed_at"]),
                ("update", "w1", answers[1]["confirmed_at"]), ("upsert", "w2", answers[2]["confirmed_at"]),
                ("upsert", "w3", answers[2]["confirmed_at"]), ("delete", "w3", answers[3]["confirmed_at"]),
                ("insert", 5, answers[4]["confirmed_at"]), ("insert", made_up, answers[5]["confirmed_at"])]
        self.assertEqual(sorted(got, key=str), sorted(want, key=str))

    def test_2_errors_are_answered_per_line(self) -> None:
        c = self.client()
        c.send(cmd("insert", [{"id": "e1"}]),
               cmd("insert", [{"id": "x"}], table="nope"),
               cmd("insert", [{"id": "x"}], table="readonly"),
               "this is not json",
               cmd("insert", [{"id": "e1", "v": "again"}, {"id": "e2"}]),
               cmd("update", [{"id": "missing-e"}], ref="slow"),
               cmd("delete", ["e1", "e2", "missing-e"]))
        t0 = time.monotonic()
        first = c.answers(5, 10)
        self.assertEqual([a["line"] for a in first], [1, 2, 3, 4, 5])
        self.assertEqual([a["ok"] for a in first], [True, False, False, False, True], first)
        self.assertIn("dev.nope", first[1]["error"])
        self.assertIn("not writable", first[2]["error"])
        self.assertTrue(first[3]["error"], first[3])
        # An insert of an existing id: HarperDB 3 skips it and publishes only the new record.
        self.assertEqual(first[4]["written"], ["e2"])
        self.assertEqual(first[4]["skipped"], ["e1"])
        self.assertIsNone(read_back("animals", ["e1"])["e1"].get("v"))  # 3.3 lists every attribute, null if unset
        # An update of a missing id changes nothing and is never published: it times out.
        answers = c.answers(7, WRITE_TIMEOUT + 10)
        waited = time.monotonic() - t0
        self.assertEqual(answers[5], {"line": 6, "ref": "slow", "ok": False, "error": answers[5]["error"]})
        self.assertTrue(answers[5]["error"].startswith(NOT_CONFIRMED), answers[5])
        self.assertGreater(waited, WRITE_TIMEOUT - 1)
        self.assertIs(answers[6]["ok"], True, answers[6])
        self.assertEqual(answers[6]["written"], ["e1", "e2"])
        self.assertEqual(answers[6]["skipped"], ["missing-e"])
        self.assertEqual(read_back("animals", ["e1", "e2"]), {})

    def test_3_burst_of_10000_from_4_clients(self) -> None:
        n, per = 4, 2500 if not hdb.VALGRIND else 250  # under valgrind the bridge is ~20 times slower
        clients = [self.client("burst.sock") for _ in range(n)]
        m = BRIDGE.mark()
        t0 = time.monotonic()

        def write(k: int) -> None:
            clients[k].send(*(cmd("insert", [{"id": f"b{k}-{i}", "n": i}], ref=i) for i in range(per)))

        writers = [threading.Thread(target=write, args=(k,), daemon=True) for k in range(n)]
        for w in writers:
            w.start()
        for k, c in enumerate(clients):
            answers = c.answers(per, 120)
            self.assertEqual([a["line"] for a in answers], list(range(1, per + 1)))
            self.assertEqual([a.get("ref") for a in answers], list(range(per)))
            bad = [a for a in answers if a.get("ok") is not True or a.get("written") != [f"b{k}-{a['ref']}"]]
            self.assertEqual(bad[:3], [], f"client {k}: {len(bad)} unexpected answers")
        elapsed = time.monotonic() - t0
        for w in writers:
            w.join(10)
        lines = BRIDGE.wait_lines(lambda e: str(e.get("id", "")).startswith("b"), n * per, 30, since=m)
        self.assertEqual(len({e["id"] for e in lines}), n * per)
        [row] = HDB.sql("select count(*) as n from dev.animals where id like 'b%'")
        self.assertEqual(row["n"], n * per)
        print(f"\n{n * per} commands from {n} clients answered in {elapsed:.1f} s ({n * per / elapsed:.0f}/s)",
              file=sys.stderr)

    def test_4_bridge_stops_with_writes_pending(self) -> None:
        """SIGTERM with writes waiting for their echo: each is answered before the bridge exits."""
        text = BRIDGE.config.read_text().replace(str(SOCKETS / "burst.sock"), str(SOCKETS / "stop.sock"))
        text = text.replace(f"path: {SOCKETS / 'in.sock'}", f"path: {SOCKETS / 'in2.sock'}")
        bridge = hdb.Bridge(BIN, text)
        self.addCleanup(bridge.cleanup)
        bridge.wait_ready(30)
        c = self.client("stop.sock")
        total = 300
        c.send(*(cmd("insert", [{"id": f"stop-{i}"}], ref=i) for i in range(total)))
        c.answers(20, 20)
        code = bridge.stop()
        log = bridge.log()
        self.assertEqual(code, 0, log[log.find("ERROR: AddressSanitizer"):][:6000] if "AddressSanitizer" in log
                         else log[-3000:])
        c.wait_eof(10)
        answers = c.envelopes()
        self.assertEqual([a["ref"] for a in answers], list(range(len(answers))))
        errors = [a["error"] for a in answers if not a["ok"]]
        waiting = [e for e in errors if e.startswith("the bridge stopped") and "may or may not have been applied" in e]
        refused = [e for e in errors if e.endswith("is not connected; nothing was written")]
        self.assertEqual(len(waiting) + len(refused), len(errors), set(errors))
        self.assertTrue(waiting, "writes were waiting for their echo when the bridge stopped")
        # Whatever was answered ok is in HarperDB.
        confirmed = [f"stop-{a['ref']}" for a in answers if a["ok"]]
        self.assertEqual(sorted(read_back("animals", confirmed)), sorted(confirmed))
        print(f"\nbridge stopped: {len(answers) - len(errors)} confirmed, {len(waiting)} maybe applied, "
              f"{len(refused)} refused, {total - len(answers)} not answered (not read yet)", file=sys.stderr)

    def test_9_server_goes_away_with_writes_pending(self) -> None:
        """Last: HarperDB 3 is killed (tearDownModule cleans up)."""
        c = self.client("burst.sock")
        total = 300
        c.send(*(cmd("insert", [{"id": f"gone-{i}"}], ref=i) for i in range(total)))
        c.answers(20, 20)  # writes are flowing, up to 32 waiting for their echo
        HDB.kill9()
        t0 = time.monotonic()
        answers = c.answers(total, 20)
        took = time.monotonic() - t0
        self.assertEqual([a["ref"] for a in answers], list(range(total)))
        errors = [a["error"] for a in answers if not a["ok"]]
        lost = [e for e in errors if "lost" in e and "may or may not have been applied" in e]
        unconnected = [e for e in errors if e.endswith("is not connected; nothing was written")]
        self.assertEqual(len(lost) + len(unconnected), len(errors), set(errors))
        self.assertTrue(lost, "some writes were waiting for their echo when the connection dropped")
        self.assertTrue(unconnected, "later writes were refused while disconnected")
        self.assertLess(took, WRITE_TIMEOUT, "answered when the connection dropped, not at the timeout")
        self.assertTrue(BRIDGE.alive())
        print(f"\nserver killed: {total - len(errors)} confirmed, {len(lost)} lost in flight, "
              f"{len(unconnected)} refused", file=sys.stderr)


if __name__ == "__main__":
    unittest.main()
