#!/usr/bin/env python3
"""The real hdb-bridge against a real HarperDB 3.3 (SocketCluster clustering): every operation arrives.

One HarperDB 3.3 per module (setUpModule; only one can run per host, hdb3.py serializes them with a lock).
The bridge connects from 127.0.0.2 (`bind_address:`): HarperDB 3 lets 127.0.0.1 in without a login, which
would hide every authentication bug. Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import json
import re
import signal
import sys
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
import hdb3  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 240 * hdb.TIME_SCALE  # seconds; a watchdog ends the run past it (the next run kills what it left: hdb3.py)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HDB: hdb3.HarperDB3


def setUpModule() -> None:
    global HDB
    HDB = hdb3.start_module_harperdb3("dev", ["animals", "dogs", "quiet"], keyed={"keyed": "animal_id"})



def tearDownModule() -> None:
    HDB.stop()


def config(tables: list[dict[str, Any]], *, user: str | None = None, password: str | None = None,
           tls: dict[str, Any] | None = None, bind: str | None = "127.0.0.2", log_level: str = "debug") -> str:
    """A hdb-bridge config for the module's HarperDB 3 (JSON flow maps are valid YAML)."""
    server: dict[str, Any] = {
        "protocol": "harperdb3",
        "url": HDB.cluster_url,
        "username": user or HDB.cluster_user,
        "password": HDB.cluster_password if password is None else password,
        "tls": {"ca_file": str(HDB.certificate)} if tls is None else tls,
    }
    if bind:
        server["bind_address"] = bind
    lines = [f"log: {{level: {log_level}}}", "servers:", f"  legacy: {json.dumps(server)}", "tables:",
             *(f"  - {json.dumps({'server': 'legacy', 'schema': 'dev', **t})}" for t in tables),
             "sinks:", "  - {name: out, type: stdout}"]
    return "\n".join(lines) + "\n"


def by_id(*ids: Any):  # type: ignore[no-untyped-def]
    return lambda e: e.get("id") in ids


class BridgeCase(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)

    def start_bridge(self, text: str, ready: bool = True) -> hdb.Bridge:
        bridge = hdb.Bridge(BIN, text)
        self.addCleanup(bridge.cleanup)
        if ready:
            bridge.wait_ready(20)
        return bridge

    def assertEnvelope(self, e: dict[str, Any], op: str, id: Any, table: str = "animals") -> None:
        """The envelope contract for HarperDB 3 lines."""
        self.assertNotIn("__invalid__", e, "line is not a JSON object")
        self.assertEqual(e.get("v"), 1, e)
        self.assertEqual(e.get("server"), "legacy", e)
        self.assertEqual(e.get("database"), "dev", e)
        self.assertEqual(e.get("table"), table, e)
        self.assertEqual(e.get("op"), op, e)
        self.assertEqual(e.get("id"), id, e)
        self.assertIs(type(e.get("id")), type(id), e)
        self.assertIsInstance(e.get("ts"), (int, float), e)
        self.assertIsInstance(e.get("cursor"), str, e)
        self.assertRegex(e["cursor"], r"^\d+(\.\d+)?$", e)
        self.assertEqual(float(e["cursor"]), e["ts"], "the cursor is the transaction's __origin.timestamp")
        self.assertRegex(e.get("txn", ""), UUID, e)
        if op == "delete":
            self.assertNotIn("record", e)
        else:
            self.assertIsInstance(e.get("record"), dict, e)


class LiveChanges(BridgeCase):
    """Every operation on two tables of one server, through one bridge (one connection)."""

    bridge: hdb.Bridge

    @classmethod
    def setUpClass(cls) -> None:
        cls.bridge = hdb.Bridge(BIN, config([{"table": "animals"}, {"table": "dogs"}]))
        try:
            cls.ready_after = cls.bridge.wait_ready(20)
        except BaseException:
            cls.bridge.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.bridge.cleanup()

    def wait(self, pred, n: int, since: int) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        return self.bridge.wait_lines(pred, n, 10, since=since)

    def test_insert(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "animals", [{"id": 101, "name": "Harper", "type": "dog"}])
        [e] = self.wait(by_id(101), 1, m)
        self.assertEnvelope(e, "insert", 101)
        self.assertEqual(e["record"]["name"], "Harper")
        self.assertEqual(e["record"]["id"], 101)
        self.assertIn("__createdtime__", e["record"])

    def test_string_id(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "animals", [{"id": "cat-7", "name": "Tom"}])
        [e] = self.wait(by_id("cat-7"), 1, m)
        self.assertEnvelope(e, "insert", "cat-7")

    def test_update_sends_the_changed_fields(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "animals", [{"id": 102, "name": "Penny", "type": "cat", "age": 2}])
        HDB.update("dev", "animals", [{"id": 102, "age": 3}])
        ins, upd = self.wait(by_id(102), 2, m)
        self.assertEnvelope(ins, "insert", 102)
        self.assertEnvelope(upd, "update", 102)
        self.assertEqual(upd["record"]["age"], 3)
        self.assertNotIn("name", upd["record"], "HarperDB 3 publishes only the changed fields (and the key)")
        self.assertGreater(upd["ts"], ins["ts"])
        self.assertNotEqual(upd["txn"], ins["txn"])

    def test_upsert_new_and_existing(self) -> None:
        m = self.bridge.mark()
        HDB.upsert("dev", "animals", [{"id": 103, "name": "Rex", "type": "dog"}])
        HDB.upsert("dev", "animals", [{"id": 103, "name": "Rex II"}])
        lines = self.wait(by_id(103), 2, m)
        for e in lines:
            self.assertEnvelope(e, "upsert", 103)
        self.assertEqual([e["record"]["name"] for e in lines], ["Rex", "Rex II"])
        self.assertNotIn("type", lines[1]["record"], "HarperDB 3 publishes the fields given, not the merged record")
        self.assertLess(float(lines[0]["cursor"]), float(lines[1]["cursor"]))

    def test_delete_has_no_record(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "animals", [{"id": 104, "name": "Goner"}, {"id": 105, "name": "Goner too"}])
        HDB.delete("dev", "animals", [104, 105])
        lines = self.wait(lambda e: e.get("id") in (104, 105) and e.get("op") == "delete", 2, m)
        self.assertEqual(sorted(e["id"] for e in lines), [104, 105])
        for e in lines:
            self.assertEnvelope(e, "delete", e["id"])
        self.assertEqual(lines[0]["txn"], lines[1]["txn"], "one delete operation, one transaction")

    def test_three_record_insert_is_one_transaction(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "animals", [{"id": i, "name": f"n{i}"} for i in (201, 202, 203)])
        lines = self.wait(by_id(201, 202, 203), 3, m)
        self.assertEqual([e["id"] for e in lines], [201, 202, 203])
        for e in lines:
            self.assertEnvelope(e, "insert", e["id"])
        self.assertEqual(len({e["ts"] for e in lines}), 1, "one transaction, one ts")
        self.assertEqual(len({e["txn"] for e in lines}), 1, "one transaction, one txn")
        self.assertEqual(len({e["cursor"] for e in lines}), 1)

    def test_sql_statements(self) -> None:
        m = self.bridge.mark()
        HDB.sql("INSERT INTO dev.animals (id, name, type) VALUES (301, 'Sql', 'dog')")
        HDB.sql("UPDATE dev.animals SET name = 'Sequel' WHERE id = 301")
        HDB.sql("DELETE FROM dev.animals WHERE id = 301")
        ins, upd, gone = self.wait(by_id(301), 3, m)
        self.assertEnvelope(ins, "insert", 301)
        self.assertEqual(ins["record"]["name"], "Sql")
        self.assertEnvelope(upd, "update", 301)
        self.assertEqual(upd["record"]["name"], "Sequel")
        self.assertEnvelope(gone, "delete", 301)

    def test_two_tables_on_one_connection(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "dogs", [{"id": 401, "name": "Fido"}])
        HDB.insert("dev", "animals", [{"id": 402, "name": "Cat"}])
        dog, animal = self.wait(by_id(401, 402), 2, m)
        self.assertEnvelope(dog, "insert", 401, table="dogs")
        self.assertEnvelope(animal, "insert", 402, table="animals")
        log = self.bridge.log()
        self.assertEqual(log.count("connecting to wss://"), 1, f"one connection for both tables:\n{log}")
        self.assertIn("subscribed to dev:animals, dev:dogs as user 'cluster_user'", log)

    def test_unsubscribed_table_is_not_sent(self) -> None:
        m = self.bridge.mark()
        HDB.insert("dev", "quiet", [{"id": 501, "name": "nobody listens"}])
        HDB.insert("dev", "animals", [{"id": 502, "name": "marker"}])
        self.wait(by_id(502), 1, m)
        self.assertEqual([e["id"] for e in self.bridge.envelopes(m)], [502])

    def test_only_envelopes_on_stdout(self) -> None:
        for e in self.bridge.envelopes():
            self.assertNotIn("__invalid__", e)
            self.assertEqual(e.get("v"), 1)


class PrimaryKey(BridgeCase):
    def test_primary_key_option(self) -> None:
        bridge = self.start_bridge(config([{"table": "keyed", "primary_key": "animal_id"}]))
        HDB.insert("dev", "keyed", [{"animal_id": 7, "name": "Keyed"}])
        HDB.delete("dev", "keyed", [7])
        ins, gone = bridge.wait_lines(lambda e: True, 2, 10)
        self.assertEnvelope(ins, "insert", 7, table="keyed")
        self.assertEqual(ins["record"]["animal_id"], 7)
        self.assertEnvelope(gone, "delete", 7, table="keyed")

    def test_missing_key_is_reported_not_fatal(self) -> None:
        bridge = self.start_bridge(config([{"table": "keyed"}]))  # default primary_key: id
        HDB.insert("dev", "keyed", [{"animal_id": 8, "name": "No id"}])
        bridge.wait_log("without its primary key 'id'", 10)
        self.assertTrue(bridge.alive())
        self.assertEqual(bridge.envelopes(), [])


class BadCredentials(BridgeCase):
    def check_refused(self, user: str, password: str) -> None:
        bridge = self.start_bridge(config([{"table": "animals"}], user=user, password=password), ready=False)
        bridge.wait_log("authentication failed", 10)
        HDB.insert("dev", "animals", [{"id": f"unseen-{user}", "name": "secret"}])
        time.sleep(7)
        log = bridge.log()
        self.assertTrue(bridge.alive(), f"keeps running after an auth failure:\n{log}")
        errors = [line for line in log.splitlines() if line.split(" ")[2:3] == ["error"]]
        self.assertEqual(len(errors), 1, f"one clear error, repeats only at debug level:\n{log}")
        self.assertIn("server 'legacy'", errors[0])
        self.assertIn(f"authentication failed as user '{user}'", errors[0])
        attempts = log.count("connecting to wss://")
        self.assertGreaterEqual(attempts, 2, f"retries:\n{log}")
        self.assertLessEqual(attempts, 3, f"backs off (5 s and more) instead of a tight loop:\n{log}")
        self.assertNotIn(password, log, "the password never appears in the log")
        self.assertFalse(bridge.notified("READY=1"), "not ready while a table is unsubscribed")
        self.assertEqual(bridge.envelopes(), [], "no data without a login")
        self.assertEqual(bridge.stop(signal.SIGTERM, 2), 0)

    def test_wrong_password(self) -> None:
        self.check_refused(HDB.cluster_user, "not-the-password-3a9c")

    def test_unknown_user(self) -> None:
        self.check_refused("nobody-here", "whatever-5b1d")


class Tls(BridgeCase):
    def test_default_verification_refuses_the_self_signed_certificate(self) -> None:
        bridge = self.start_bridge(config([{"table": "animals"}], tls={}), ready=False)
        log = bridge.wait_log("TLS handshake", 10)
        self.assertIn("tls: {ca_file: ...}", log)
        self.assertFalse(bridge.notified("READY=1"))

    def test_verify_false_warns_and_works(self) -> None:
        bridge = self.start_bridge(config([{"table": "animals"}], tls={"verify": False}))
        self.assertIn("TLS certificate verification is off", bridge.log())
        m = bridge.mark()
        HDB.insert("dev", "animals", [{"id": 601, "name": "Insecure"}])
        [e] = bridge.wait_lines(by_id(601), 1, 10, since=m)
        self.assertEnvelope(e, "insert", 601)


class Lifecycle(BridgeCase):
    def test_sigterm_says_goodbye_and_exits_0(self) -> None:
        bridge = self.start_bridge(config([{"table": "animals"}]))
        t0 = time.monotonic()
        code = bridge.stop(signal.SIGTERM, timeout=2)
        self.assertEqual(code, 0, bridge.log())
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertTrue(bridge.notified("STOPPING=1"))

    def test_harperdb_restart_mid_stream(self) -> None:
        bridge = self.start_bridge(config([{"table": "animals"}, {"table": "dogs"}]))
        HDB.insert("dev", "animals", [{"id": 701, "name": "before"}])
        [before] = bridge.wait_lines(by_id(701), 1, 10)
        m_log = len(bridge.log())
        HDB.restart()
        print(f"\nHarperDB 3.3 restart (stop, run, until a write is published again): {HDB.timings['restart']:.1f} s",
              file=sys.stderr)
        t0 = time.monotonic()
        log = bridge.wait_log("subscribed again", 60)[m_log:]
        print(f"bridge subscribed again {time.monotonic() - t0:.1f} s after that", file=sys.stderr)
        self.assertIn("subscribed again to dev:animals, dev:dogs", log)
        self.assertNotIn("authentication failed", log)
        self.assertGreaterEqual(log.count("handshake done"), 1, "a new handshake and login")
        # Each table catches up from its checkpoint: animals from 701's transaction (found again: no gap).
        bridge.wait_log("channel 'dev:dogs' caught up", 10)
        bridge.wait_log("channel 'dev:animals' caught up", 10)
        self.assertRegex(bridge.log(), r"channel 'dev:animals' caught up: 0 transaction\(s\) delivered, [1-9]\d* "
                                        r"already delivered")
        self.assertEqual([e for e in bridge.envelopes() if e.get("op") == "gap"], [])
        self.assertEqual([e for e in bridge.envelopes() if e.get("id") == 701], [before], "701 came once")
        m = bridge.mark()
        HDB.insert("dev", "dogs", [{"id": 702, "name": "after"}])
        HDB.insert("dev", "animals", [{"id": 703, "name": "after"}])
        # Two channels: HarperDB 3 does not order publishes across them, so look each one up by its id.
        [dog] = bridge.wait_lines(by_id(702), 1, 10, since=m)
        [animal] = bridge.wait_lines(by_id(703), 1, 10, since=m)
        self.assertEnvelope(dog, "insert", 702, table="dogs")
        self.assertEnvelope(animal, "insert", 703)
        time.sleep(0.5)
        self.assertEqual(len(bridge.wait_lines(by_id(702, 703), 2, 1, since=m)), 2, "each came once")
        self.assertTrue(bridge.alive())


if __name__ == "__main__":
    unittest.main()
